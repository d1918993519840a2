//! Every public operation of a handle runs in a span named after it whose
//! `request_id` is the one its audit records carry; no argument is recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strongroom::audit::MemorySink;
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::MemoryStorage;
use strongroom::{Options, SecretBytes, Strongroom};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span's name and every field recorded on it.
type SpanLog = (String, Vec<(String, String)>);

/// Spans by id: their name and every field recorded on them.
#[derive(Default)]
struct Spans {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, SpanLog>>,
    metadata: Mutex<HashMap<u64, &'static Metadata<'static>>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

struct Collect(Arc<Spans>);

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        self.0
            .spans
            .lock()
            .unwrap()
            .insert(id, (attrs.metadata().name().to_owned(), fields));
        self.0.metadata.lock().unwrap().insert(id, attrs.metadata());
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some((_, fields)) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(pos) = s.iter().rposition(|&id| id == span.into_u64()) {
                s.remove(pos);
            }
        });
    }
    fn current_span(&self) -> tracing_core::span::Current {
        match STACK.with(|s| s.borrow().last().copied()) {
            Some(id) => match self.0.metadata.lock().unwrap().get(&id) {
                Some(meta) => tracing_core::span::Current::new(Id::from_u64(id), meta),
                None => tracing_core::span::Current::none(),
            },
            None => tracing_core::span::Current::none(),
        }
    }
}

#[test]
fn spans_carry_the_audit_request_id() {
    let spans = Arc::new(Spans::default());
    let sink = Arc::new(MemorySink::new());
    let sink2 = sink.clone();
    tracing::subscriber::with_default(Collect(spans.clone()), || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let key = SoftwareProtector::from_key(SecretBytes::new(vec![4; 32])).unwrap();
                let sr = Strongroom::init(Arc::new(MemoryStorage::new()), &key, Options::default())
                    .await
                    .unwrap();
                let audit = Arc::new(sr.open_audit_log(vec![sink2], None).await.unwrap());
                let policy = Policy::from_toml_str(
                    r#"
                    name = "app"
                    [[path]]
                    pattern = "app/*"
                    capabilities = ["read", "create"]
                    [[path]]
                    pattern = "sys/keyring"
                    capabilities = ["read"]
                    "#,
                )
                .unwrap();
                let app = sr.as_principal(Principal::new("svc-a", [&policy]), audit);
                app.put("app/secret-name", b"hunter2-value", None)
                    .await
                    .unwrap();
                app.read("app/secret-name").await.unwrap();
                app.key_admin().keys().await.unwrap();
            });
    });

    let spans = spans.spans.lock().unwrap();
    let records = sink.records().unwrap();
    for (name, op) in [
        ("Handle::put", "write"),
        ("Handle::read", "read"),
        ("KeyAdmin::keys", "read_metadata"),
    ] {
        let (_, fields) = spans
            .values()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no span {name}"));
        let get = |k: &str| {
            fields
                .iter()
                .rev()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("principal").as_deref(), Some("svc-a"), "{name}");
        let id = get("request_id").unwrap_or_else(|| panic!("{name}: no request id"));
        let rec = records
            .iter()
            .find(|r| r.event.request_id == id)
            .unwrap_or_else(|| panic!("{name}: no audit record with {id}"));
        assert_eq!(rec.event.operation.as_str(), op);
    }
    // no argument is recorded: no path, no value
    for (_, fields) in spans.values() {
        for (_, v) in fields {
            assert!(!v.contains("secret-name") && !v.contains("hunter2"), "{v}");
        }
    }
}
