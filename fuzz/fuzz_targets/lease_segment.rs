//! Decodes arbitrary bytes as a lease expiry-index segment
//! (`lease-due/<bucket>/<shard>`, the plaintext inside its barrier
//! envelope). Must never panic. The time filter keeps exactly the entries in
//! its window; adding the decoded entries to an empty segment rebuilds the
//! same set; re-adding a present entry changes nothing; removing every
//! entry empties the segment.
//!
//! Input: 17 bytes of window (a flag, `from` and `until` in ms), then the
//! segment value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom::clock::Timestamp;
use strongroom::fuzzing::{lease_segment_add, lease_segment_remove, parse_lease_segment};
use strongroom::lease::LeaseId;

fn ms(b: &[u8]) -> Timestamp {
    Timestamp::from_millis(u64::from_be_bytes(b.try_into().unwrap()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        let _ = parse_lease_segment(data, None, Timestamp::MAX);
        return;
    }
    let from = (data[0] & 1 == 1).then(|| ms(&data[1..9]));
    let until = ms(&data[9..17]);
    let value = &data[17..];

    let all = parse_lease_segment(value, None, Timestamp::MAX);
    let window = parse_lease_segment(value, from, until);
    let (Ok(all), Ok(window)) = (all, window) else {
        assert!(lease_segment_add(Some(value.to_vec()), until, LeaseId::from_u128(0)).is_err());
        return;
    };
    let expected: Vec<_> = all
        .iter()
        .filter(|(t, _)| *t <= until && from.is_none_or(|f| *t > f))
        .copied()
        .collect();
    assert_eq!(window, expected);

    let mut set = all.clone();
    set.sort();
    set.dedup();
    let mut rebuilt = None;
    for &(t, id) in &all {
        rebuilt = Some(lease_segment_add(rebuilt, t, id).unwrap());
    }
    match rebuilt {
        None => assert!(all.is_empty()),
        Some(v) => {
            let mut back = parse_lease_segment(&v, None, Timestamp::MAX).unwrap();
            back.sort();
            assert_eq!(back, set);
        }
    }
    for &(t, id) in all.iter().take(4) {
        assert_eq!(
            lease_segment_add(Some(value.to_vec()), t, id).unwrap(),
            value
        );
    }
    let mut left = Some(value.to_vec());
    for (n, &(t, id)) in all.iter().enumerate() {
        left = lease_segment_remove(left, t, id).unwrap();
        let remaining = left.as_deref().map_or(0, |v| {
            parse_lease_segment(v, None, Timestamp::MAX).unwrap().len()
        });
        assert_eq!(remaining, all.len() - n - 1);
    }
    if !all.is_empty() {
        assert_eq!(left, None);
    }
});
