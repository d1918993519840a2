//! Clocks (the system clock, or a manual one tests move) and the
//! milliseconds JavaScript gives for times and durations.

use std::sync::Arc;

use napi_derive::napi;

use crate::{invalid, ms, to_js};

/// A clock: the system clock, or a manual one tests move.
#[napi]
pub struct NativeClock {
    pub(crate) clock: Arc<dyn strongroom::clock::Clock>,
    pub(crate) manual: Option<strongroom::clock::ManualClock>,
}

/// Milliseconds from JavaScript ([`strongroom_host::time::ms_from_f64`]).
pub(crate) fn millis(what: &str, v: f64) -> napi::Result<u64> {
    strongroom_host::time::ms_from_f64(what, v).map_err(to_js)
}

/// A duration from JavaScript milliseconds
/// ([`strongroom_host::time::duration_from_f64`]).
pub(crate) fn duration_ms(what: &str, v: f64) -> napi::Result<std::time::Duration> {
    strongroom_host::time::duration_from_f64(what, v).map_err(to_js)
}

#[napi]
impl NativeClock {
    /// The system clock.
    #[napi(factory)]
    pub fn system() -> Self {
        Self {
            clock: Arc::new(strongroom::clock::SystemClock),
            manual: None,
        }
    }

    /// A manual clock starting at `start_ms` (ms since the epoch).
    #[napi(factory)]
    pub fn manual(start_ms: f64) -> napi::Result<Self> {
        let m = strongroom::clock::ManualClock::new(strongroom::clock::Timestamp::from_millis(
            millis("startMs", start_ms)?,
        ));
        Ok(Self {
            clock: Arc::new(m.clone()),
            manual: Some(m),
        })
    }

    /// The current time (ms since the epoch).
    #[napi]
    pub fn now(&self) -> f64 {
        ms(self.clock.now())
    }

    /// Moves a manual clock forward by `by_ms`.
    #[napi]
    pub fn advance(&self, by_ms: f64) -> napi::Result<()> {
        let by = duration_ms("ms", by_ms)?;
        match &self.manual {
            Some(m) => {
                m.advance(by);
                Ok(())
            }
            None => Err(invalid("only a manual clock can be advanced")),
        }
    }
}
