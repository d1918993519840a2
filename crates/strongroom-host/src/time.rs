//! Milliseconds: the one unit of time the bindings hand to host languages.

use std::time::Duration;

use strongroom::clock::Timestamp;

/// The largest integer every host language represents exactly (2^53 - 1,
/// JavaScript's `Number.MAX_SAFE_INTEGER`).
pub const MAX_EXACT_MS: u64 = (1 << 53) - 1;

/// A timestamp as milliseconds since the Unix epoch.
#[must_use]
pub fn timestamp_ms(t: Timestamp) -> u64 {
    t.as_millis()
}

/// A duration as whole milliseconds (saturating).
#[must_use]
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds given by a host as a float (JavaScript numbers): a
/// non-negative integer no larger than [`MAX_EXACT_MS`].
///
/// # Errors
///
/// [`strongroom::Error::InvalidArgument`] naming `what` otherwise.
pub fn ms_from_f64(what: &str, v: f64) -> strongroom::Result<u64> {
    #[allow(clippy::cast_precision_loss)] // MAX_EXACT_MS is exact in f64
    let max = MAX_EXACT_MS as f64;
    if v.fract() == 0.0 && (0.0..=max).contains(&v) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above
        Ok(v as u64)
    } else {
        Err(strongroom::Error::InvalidArgument(format!(
            "{what} must be a non-negative integer number of milliseconds, got {v}"
        )))
    }
}

/// A duration from a host's milliseconds (see [`ms_from_f64`]).
///
/// # Errors
///
/// As for [`ms_from_f64`].
pub fn duration_from_f64(what: &str, v: f64) -> strongroom::Result<Duration> {
    ms_from_f64(what, v).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_milliseconds_are_checked() {
        assert_eq!(ms_from_f64("t", 1500.0).ok(), Some(1500));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e300] {
            let err = ms_from_f64("ttl", bad).err();
            assert!(
                matches!(&err, Some(strongroom::Error::InvalidArgument(m)) if m.starts_with("ttl ")),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(duration_ms(Duration::from_micros(2500)), 2);
    }
}
