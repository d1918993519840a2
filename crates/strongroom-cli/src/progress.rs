//! A progress line for long work (rewrap): done of total, rate and time
//! left, redrawn in place on stderr, and only when stderr is a terminal (a
//! log or a pipe gets nothing).

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

/// A progress line; silent unless stderr is a terminal.
pub(crate) struct Progress {
    label: &'static str,
    started: Instant,
    shown: bool,
    enabled: bool,
}

impl Progress {
    /// A line for `label`, shown only if stderr is a terminal.
    pub(crate) fn on_terminal(label: &'static str) -> Self {
        Self {
            label,
            started: Instant::now(),
            shown: false,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Redraws the line: `done` of `total` units, the rate since the start
    /// and, when some work is done, the time left at that rate.
    pub(crate) fn update(&mut self, done: u64, total: u64, unit: &str) {
        if !self.enabled {
            return;
        }
        let line = line(
            self.label,
            done,
            total,
            unit,
            self.started.elapsed().as_secs_f64(),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.shown = true;
    }

    /// Ends the line (a newline after it, if one was drawn).
    pub(crate) fn finish(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The text of a progress line.
fn line(label: &str, done: u64, total: u64, unit: &str, secs: f64) -> String {
    let secs = secs.max(1e-3);
    let rate = done as f64 / secs;
    let left = total.saturating_sub(done);
    let eta = if done == 0 || rate <= 0.0 {
        "ETA --".to_owned()
    } else {
        format!("ETA {:.0} s", left as f64 / rate)
    };
    format!("{label}: {done}/{total} {unit} ({rate:.0}/s, {eta})")
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn the_line_shows_rate_and_time_left() {
        assert_eq!(
            line("rewrap", 500, 2000, "records", 2.0),
            "rewrap: 500/2000 records (250/s, ETA 6 s)"
        );
        assert_eq!(
            line("rewrap", 0, 10, "records", 0.0),
            "rewrap: 0/10 records (0/s, ETA --)"
        );
    }
}
