//! Parses arbitrary bytes as the saved audit head (`sys/audit-head`, JSON)
//! and as a checkpoint (`SEQ:MAC` text, and JSON). Must never panic; what
//! parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::audit::Checkpoint;
use strongroom::fuzzing::parse_audit_head;

fuzz_target!(|data: &[u8]| {
    if let Ok(encoded) = parse_audit_head(data) {
        assert_eq!(parse_audit_head(&encoded).unwrap(), encoded);
    }
    if let Ok(cp) = serde_json::from_slice::<Checkpoint>(data) {
        let json = serde_json::to_vec(&cp).unwrap();
        assert_eq!(serde_json::from_slice::<Checkpoint>(&json).unwrap(), cp);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cp) = text.parse::<Checkpoint>() {
        assert!(cp.is_canonical());
        let shown = cp.to_string();
        assert_eq!(shown.parse::<Checkpoint>().unwrap(), cp);
        // Only leading zeros of the sequence number may differ.
        let (seq, mac) = text.split_once(':').unwrap();
        assert_eq!(
            seq.trim_start_matches('0').parse::<u64>().unwrap_or(0),
            cp.seq
        );
        assert_eq!(mac, cp.mac);
    }
});
