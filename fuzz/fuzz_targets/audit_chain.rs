//! Writes a chain of arbitrary events through `AuditLog`, checks that it
//! verifies, then applies one arbitrary edit to its lines (change, insert or
//! delete bytes, drop, duplicate, swap or truncate lines) and checks that
//! verification against the saved head then fails, unless the lines are
//! unchanged.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use strongroom::SecretBytes;
use strongroom::audit::{AuditEvent, AuditLog, MemorySink, Operation, Outcome, verify};
use strongroom::clock::{ManualClock, Timestamp};

const OPERATIONS: [Operation; 17] = [
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

fn tamper(u: &mut Unstructured<'_>, lines: &mut Vec<String>) -> Result<()> {
    let n = lines.len();
    let i = u.choose_index(n)?;
    match u.int_in_range(0..=6)? {
        0 => {
            let mut bytes = lines[i].clone().into_bytes();
            let j = u.choose_index(bytes.len())?;
            bytes[j] = u8::arbitrary(u)?;
            if let Ok(s) = String::from_utf8(bytes) {
                lines[i] = s;
            }
        }
        1 => {
            let j = u.choose_index(lines[i].len() + 1)?;
            if lines[i].is_char_boundary(j) {
                lines[i].insert_str(j, <&str>::arbitrary(u)?);
            }
        }
        2 => {
            let j = u.choose_index(lines[i].len())?;
            if lines[i].is_char_boundary(j) {
                lines[i].remove(j);
            }
        }
        3 => {
            lines.remove(i);
        }
        4 => {
            let line = lines[i].clone();
            lines.insert(u.choose_index(n + 1)?, line);
        }
        5 => lines.swap(i, u.choose_index(n)?),
        _ => lines.truncate(i),
    }
    Ok(())
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

    let mut edited = lines.clone();
    tamper(u, &mut edited)?;
    if edited != lines {
        assert!(
            verify(&edited, &key, None, Some(&head)).is_err(),
            "edit not detected:\n{lines:#?}\n{edited:#?}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
