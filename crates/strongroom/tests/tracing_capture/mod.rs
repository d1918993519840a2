//! A `tracing` subscriber that captures every event's fields as text, for
//! tests that check what reaches tracing output.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

/// Captures every `tracing` event's fields as text.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<String>>);

/// Keeps a [`Capture`] installed; see [`Capture::install`].
pub struct Installed {
    _default: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

impl Capture {
    /// Makes this capture the thread's subscriber until the returned value
    /// drops.
    ///
    /// `tracing` caches each callsite's interest for the whole process,
    /// decided when the callsite is first reached. While one dispatcher is
    /// registered it asks only the subscriber of the thread that got there
    /// first, so a test on another thread with no subscriber would cache
    /// "never" and this capture would miss the event (the runner runs tests
    /// on several threads). A second registered dispatcher makes every
    /// callsite ask all of them; the rebuild covers callsites reached before.
    pub fn install(&self) -> Installed {
        let default = tracing::subscriber::set_default(self.clone());
        let second = tracing::Dispatch::new(self.clone());
        tracing::callsite::rebuild_interest_cache();
        Installed {
            _default: default,
            _second: second,
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

struct Visitor<'a>(&'a mut String);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?}\n", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = self.0.lock().unwrap();
        event.record(&mut Visitor(&mut s));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
