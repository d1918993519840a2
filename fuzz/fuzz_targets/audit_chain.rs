//! Writes a chain of arbitrary events through `AuditLog`, checks that it
//! verifies (in memory and as a JSON-lines file), then applies one
//! arbitrary edit to the file (change, insert or delete bytes; drop,
//! duplicate or swap lines; cut it short) and checks that
//! `verify_jsonl_file` against the saved head then fails, unless the file
//! is unchanged or only lost its final newline (which the reader accepts).
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use strongroom::SecretBytes;
use strongroom::audit::{
    AuditEvent, AuditLog, MemorySink, Operation, Outcome, verify, verify_jsonl_file,
};
use strongroom::clock::{ManualClock, Timestamp};

const OPERATIONS: [Operation; 24] = [
    Operation::Read,
    Operation::ReadMetadata,
    Operation::Write,
    Operation::WriteMetadata,
    Operation::List,
    Operation::Delete,
    Operation::Undelete,
    Operation::Destroy,
    Operation::Rotate,
    Operation::LeaseIssue,
    Operation::LeaseRenew,
    Operation::LeaseRevoke,
    Operation::KeyringRotate,
    Operation::Rewrap,
    Operation::Unseal,
    Operation::Seal,
    Operation::PolicyChange,
    Operation::LeaseRevokePrefix,
    Operation::LeaseRevokeForce,
    Operation::KeyPromote,
    Operation::KeyRetire,
    Operation::KeyDestroy,
    Operation::RootKeyRotate,
    Operation::AuditRead,
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

fn event(u: &mut Unstructured<'_>, log: &AuditLog) -> Result<AuditEvent> {
    let op = OPERATIONS[u.choose_index(OPERATIONS.len())?];
    let mut e = AuditEvent::new(String::arbitrary(u)?, op, String::arbitrary(u)?);
    if bool::arbitrary(u)? {
        e = e.with_path(String::arbitrary(u)?);
    }
    if bool::arbitrary(u)? {
        e = e.with_version(u64::arbitrary(u)?);
    }
    if bool::arbitrary(u)? {
        e = e.with_lease_id(String::arbitrary(u)?);
    }
    e = e.with_outcome(match u.int_in_range(0..=2)? {
        0 => Outcome::Allowed,
        1 => Outcome::Denied,
        _ => Outcome::Error {
            kind: String::arbitrary(u)?,
        },
    });
    for _ in 0..u.int_in_range(0..=2)? {
        let value = <&[u8]>::arbitrary(u)?;
        e = e.with_field(String::arbitrary(u)?, log.hmac(value));
    }
    Ok(e)
}

/// A file of this process's own, on tmpfs where there is one.
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!(
            "strongroom-fuzz-audit-{}.jsonl",
            std::process::id()
        ))
    })
}

fn tamper(u: &mut Unstructured<'_>, file: &[u8]) -> Result<Vec<u8>> {
    let mut out = file.to_vec();
    let mut lines: Vec<&[u8]> = file
        .strip_suffix(b"\n")
        .unwrap_or(file)
        .split(|&b| b == b'\n')
        .collect();
    let n = lines.len();
    match u.int_in_range(0..=6)? {
        0 => {
            let j = u.choose_index(out.len())?;
            out[j] = u8::arbitrary(u)?;
        }
        1 => {
            let j = u.choose_index(out.len() + 1)?;
            let bytes = <&[u8]>::arbitrary(u)?;
            out.splice(j..j, bytes.iter().copied());
        }
        2 => {
            let j = u.choose_index(out.len())?;
            let k = u.int_in_range(1..=out.len() - j)?;
            out.drain(j..j + k);
        }
        3 => {
            lines.remove(u.choose_index(n)?);
            out = lines.join(&b'\n');
            out.push(b'\n');
        }
        4 => {
            let line = lines[u.choose_index(n)?];
            lines.insert(u.choose_index(n + 1)?, line);
            out = lines.join(&b'\n');
            out.push(b'\n');
        }
        5 => {
            lines.swap(u.choose_index(n)?, u.choose_index(n)?);
            out = lines.join(&b'\n');
            out.push(b'\n');
        }
        _ => out.truncate(u.choose_index(out.len())?),
    }
    Ok(out)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let key = SecretBytes::new(vec![0x42; 32]);
    let sink = Arc::new(MemorySink::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(u64::arbitrary(u)?)));
    let log = AuditLog::new(key.clone(), vec![sink.clone()], clock).unwrap();
    let mut events = Vec::new();
    for _ in 0..u.int_in_range(1..=5)? {
        events.push(event(u, &log)?);
    }
    let head = runtime().block_on(async {
        for e in events {
            log.append(e).await.unwrap();
        }
        log.head().await
    });
    let lines = sink.lines();
    let report = verify(&lines, &key, None, Some(&head)).unwrap();
    assert_eq!(report.records, lines.len() as u64);
    assert_eq!(report.head, head);
    // Resuming after a record's checkpoint verifies the rest.
    let records = sink.records().unwrap();
    let mid = records[u.choose_index(records.len())?].checkpoint();
    verify(&lines, &key, Some(&mid), Some(&head)).unwrap();
    assert!(verify(&lines, &SecretBytes::new(vec![0x43; 32]), None, None).is_err());

    let mut written = lines.join("\n").into_bytes();
    written.push(b'\n');
    std::fs::write(file(), &written).unwrap();
    verify_jsonl_file(file(), &key, None, Some(&head)).unwrap();

    let edited = tamper(u, &written)?;
    if edited != written && edited != written[..written.len() - 1] {
        std::fs::write(file(), &edited).unwrap();
        assert!(
            verify_jsonl_file(file(), &key, None, Some(&head)).is_err(),
            "edit not detected:\n{}\n{}",
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&edited)
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
