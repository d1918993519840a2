//! Parses arbitrary lines as audit records, as `verify` reads a JSON-lines
//! file. Must never panic. A record that parses, written as its one line,
//! parses to the same record; only that exact line passes the canonical-form
//! check; no line verifies under a key that did not write it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::SecretBytes;
use strongroom::audit::{AuditRecord, ChainItem, Checkpoint, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').take(8).collect();
    for line in &lines {
        let Ok(r) = AuditRecord::from_json_line(line) else {
            assert!(line.into_record().is_err());
            continue;
        };
        let canonical = r.to_json_line().unwrap();
        let again = AuditRecord::from_json_line(&canonical).unwrap();
        assert_eq!(again, r);
        assert_eq!(again.to_json_line().unwrap(), canonical);
        assert_eq!(canonical.as_str().into_record().unwrap(), r);
        assert_eq!(line.into_record().is_ok(), *line == canonical);
        let cp = r.checkpoint();
        if cp.is_canonical() {
            assert_eq!(cp.to_string().parse::<Checkpoint>().unwrap(), cp);
        } else {
            assert!(cp.to_string().parse::<Checkpoint>().is_err());
        }
    }
    let key = SecretBytes::new(vec![7; 32]);
    let result = verify(lines.iter().copied(), &key, None, None);
    if lines.iter().any(|l| !l.is_empty()) {
        assert!(result.is_err(), "unkeyed input verified: {text:?}");
    }
});
