//! A private PostgreSQL cluster for test harnesses written in other languages
//! (the Python and Node binding suites).
//!
//! Starts a cluster as [`TestPostgres::start`] does, prints its superuser URL
//! as one line on standard output, then waits until standard input is closed
//! (the harness exits or closes the pipe) and stops the cluster. A harness
//! that is killed closes the pipe too; a cluster left behind by a killed
//! `strongroom-testpg` is swept by the next cluster started on the machine.

use std::io::{Read, Write};
use std::process::ExitCode;

use strongroom_testpg::TestPostgres;

fn main() -> ExitCode {
    let pg = match TestPostgres::start() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("strongroom-testpg: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", pg.superuser_url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    // Block until the harness closes our standard input.
    let mut sink = [0_u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    drop(pg);
    ExitCode::SUCCESS
}
