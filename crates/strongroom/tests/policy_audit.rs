//! The policy check -> audit append -> operation flow through the public
//! API, as the principal-bound store handle will run it.

use std::sync::Arc;

use strongroom::audit::{
    AuditEvent, AuditLog, FsyncPolicy, Inventory, JsonlFileSink, MemorySink, Operation, Outcome,
    verify, verify_jsonl_file,
};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::path::SecretPath;
use strongroom::policy::{Capability, PolicyError, PolicyRegistry};
use strongroom::{Error, SecretBytes};

const CANARY: &str = "canary-e1d2c3b4-do-not-log";

/// What a handle does for one request: check, audit, then act. Returns the
/// value only if the policy allowed it and the audit record was accepted.
async fn read(
    log: &AuditLog,
    who: &strongroom::policy::Principal,
    raw_path: &str,
    request_id: &str,
    stored: &str,
) -> Result<String, Error> {
    let event = AuditEvent::new(who.name(), Operation::Read, request_id).with_path(raw_path);
    let path = match SecretPath::parse(raw_path) {
        Ok(p) => p,
        Err(e) => {
            log.append(event.with_outcome(Outcome::Error {
                kind: "invalid_path".into(),
            }))
            .await?;
            return Err(e);
        }
    };
    if let Err(denied) = who.authorize(Capability::Read, &path) {
        log.append(event.with_outcome(Outcome::Denied)).await?;
        return Err(denied.into());
    }
    log.append(
        event
            .with_version(1)
            .with_field("value", log.hmac(stored.as_bytes())),
    )
    .await?;
    Ok(stored.to_owned())
}

#[tokio::test]
async fn checked_and_audited_reads() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("payment-svc.toml");
    std::fs::write(
        &policy_file,
        r#"name = "payment-svc"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["read", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]
"#,
    )
    .unwrap();
    let mut registry = PolicyRegistry::new();
    assert_eq!(
        registry.load_toml_file(&policy_file).unwrap(),
        "payment-svc"
    );
    let svc = registry.principal("payment-svc", &["payment-svc"]).unwrap();

    let key = SecretBytes::random(32).unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let file = Arc::new(JsonlFileSink::open(&audit_path, FsyncPolicy::EveryRecord).unwrap());
    let mem = Arc::new(MemorySink::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let log = AuditLog::new(key.clone(), vec![file, mem.clone()], clock).unwrap();

    let mut errors = Vec::new();
    assert_eq!(
        read(&log, &svc, "prod/payment-svc/postgres", "r1", CANARY)
            .await
            .unwrap(),
        CANARY
    );
    // Denied by the deny rule, by default deny, and bypass attempts.
    for (i, path) in [
        "prod/payment-svc/admin/root",
        "prod/billing/postgres",
        "prod/payment-svc/../billing/postgres",
        "Prod/payment-svc/postgres",
        "prod/payment-svc/postgres ",
        "prod/payment-svc/%2e%2e/billing",
        "prod/payment-svc/p\u{043e}stgres",
    ]
    .into_iter()
    .enumerate()
    {
        let err = read(&log, &svc, path, &format!("d{i}"), CANARY)
            .await
            .unwrap_err();
        errors.push(err.to_string());
        match (i, &err) {
            (0 | 1, Error::Policy(PolicyError::Denied { capability, .. })) => {
                assert_eq!(*capability, Capability::Read)
            }
            (2.., Error::InvalidPath { .. }) => {}
            _ => panic!("{path}: {err:?}"),
        }
    }

    // Nothing anywhere holds the canary; the HMAC lets an auditor find it.
    let file_text = std::fs::read_to_string(&audit_path).unwrap();
    let needle = log.hmac(CANARY.as_bytes());
    assert!(!file_text.contains(CANARY));
    assert!(!mem.lines().join("\n").contains(CANARY));
    assert!(errors.iter().all(|e| !e.contains(CANARY)), "{errors:?}");
    assert_eq!(file_text.matches(needle.as_str()).count(), 1);

    // Both copies verify against the head.
    let head = log.head().await;
    assert_eq!(head.seq, 8);
    verify_jsonl_file(&audit_path, &key, None, Some(&head)).unwrap();
    verify(mem.lines(), &key, None, Some(&head)).unwrap();

    let records = mem.records().unwrap();
    let outcomes: Vec<&Outcome> = records.iter().map(|r| &r.event.outcome).collect();
    assert_eq!(outcomes[0], &Outcome::Allowed);
    assert_eq!(outcomes[1], &Outcome::Denied);
    assert_eq!(outcomes[2], &Outcome::Denied);
    assert!(
        outcomes[3..]
            .iter()
            .all(|o| matches!(o, Outcome::Error { kind } if kind == "invalid_path"))
    );
    let inv = Inventory::from_records(&records);
    let readers = inv.readers("prod/payment-svc/postgres");
    assert_eq!(readers.len(), 1);
    assert_eq!(readers[0].principal, "payment-svc");
    assert_eq!(inv.touched_by("payment-svc").len(), 8);
}

// ----- verifying a file against the store's saved head -----

mod against_the_saved_head {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use strongroom::audit::{
        AuditError, AuditFileCheck, ChainBreak, Checkpoint, FsyncPolicy, JsonlFileSink,
        MAX_RECORD_LINE_BYTES, VerifyReport,
    };
    use strongroom::clock::{ManualClock, Timestamp};
    use strongroom::dangerous::Door;
    use strongroom::policy::{Capability, Policy, Principal, Rule};
    use strongroom::protector::SoftwareProtector;
    use strongroom::storage::{DynStorage, MemoryStorage};
    use strongroom::{Error, Options, SecretBytes, Strongroom};

    /// A store whose root handle audited `puts` writes and as many reads
    /// to a JSON-lines file (so the store has a saved head).
    async fn audited(dir: &Path, puts: usize) -> (Door, PathBuf, Vec<String>, Checkpoint) {
        let storage: DynStorage = Arc::new(MemoryStorage::new());
        let protector = SoftwareProtector::from_key(SecretBytes::new(vec![42; 32])).unwrap();
        let options = Options {
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
            ..Options::default()
        };
        let sr = Strongroom::init(storage, &protector, options)
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        let file = dir.join("audit.jsonl");
        let sink = Arc::new(JsonlFileSink::open(&file, FsyncPolicy::OsBuffered).unwrap());
        let log = Arc::new(sr.open_audit_log(vec![sink], Some(&file)).await.unwrap());
        let root = Principal::new(
            "root",
            [&Policy::new(
                "root",
                vec![Rule::allow("*", Capability::ALL.iter().copied()).unwrap()],
            )],
        );
        let h = sr.as_principal(root, log);
        for i in 0..puts {
            h.put(&format!("prod/s{i}"), b"v", None).await.unwrap();
            h.read(&format!("prod/s{i}")).await.unwrap();
        }
        let head = sr.saved_audit_head().await.unwrap().unwrap();
        let lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len() as u64, head.seq);
        (sr, file, lines, head)
    }

    fn write(file: &Path, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(file, text).unwrap();
    }

    #[track_caller]
    fn broken(r: strongroom::Result<VerifyReport>) -> (u64, ChainBreak, String) {
        match r {
            Err(Error::Audit(e @ AuditError::ChainBroken { .. })) => {
                let msg = e.to_string();
                let AuditError::ChainBroken { seq, reason } = e else {
                    unreachable!()
                };
                (seq, reason, msg)
            }
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    /// The MAC field of a line, upper-cased (the same MAC, another spelling).
    fn upper_mac(line: &str) -> String {
        let (before, mac) = line.rsplit_once("\"mac\":\"").unwrap();
        format!("{before}\"mac\":\"{}", mac.to_ascii_uppercase())
    }

    #[tokio::test]
    async fn a_complete_log_passes_and_reaches_the_saved_head() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 4).await;
        let r = sr
            .verify_audit_file(&file, &AuditFileCheck::new())
            .await
            .unwrap();
        assert_eq!(r.records, lines.len() as u64);
        assert_eq!(r.head, head);
        assert_eq!(r.saved_head, Some(head.clone()));
        // An explicit checkpoint still works: the head itself, an earlier
        // record's, and a start after an earlier checkpoint.
        let earlier: Checkpoint = format!(
            "3:{}",
            strongroom::audit::AuditRecord::from_json_line(&lines[2])
                .unwrap()
                .mac
        )
        .parse()
        .unwrap();
        for check in [
            AuditFileCheck::new().with_checkpoint(head.clone()),
            AuditFileCheck::new().with_checkpoint(earlier.clone()),
        ] {
            assert_eq!(
                sr.verify_audit_file(&file, &check).await.unwrap().records,
                head.seq
            );
        }
        let r = sr
            .verify_audit_file(&file, &AuditFileCheck::new().with_from(earlier))
            .await
            .unwrap();
        assert_eq!((r.records, r.first_seq), (head.seq - 3, Some(4)));
    }

    #[tokio::test]
    async fn truncating_the_last_records_is_detected_with_the_missing_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 3).await;
        let n = lines.len();
        for cut in 1..n {
            write(&file, &lines[..n - cut]);
            let (seq, reason, msg) =
                broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
            let last = (n - cut) as u64;
            assert_eq!(seq, last + 1, "cut {cut}");
            assert_eq!(
                reason,
                ChainBreak::Truncated {
                    last,
                    checkpoint: head.seq
                }
            );
            assert!(
                msg.contains(&format!("ends at seq {last}"))
                    && msg.contains(&format!("saved head is at seq {}", head.seq)),
                "{msg}"
            );
        }
    }

    #[tokio::test]
    async fn an_emptied_file_fails_when_a_head_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, _, head) = audited(dir.path(), 2).await;
        std::fs::write(&file, b"").unwrap();
        let (seq, reason, msg) = broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
        assert_eq!(seq, 1);
        assert_eq!(
            reason,
            ChainBreak::Truncated {
                last: 0,
                checkpoint: head.seq
            }
        );
        assert!(msg.contains("the log is empty"), "{msg}");
        // A deleted file is an I/O error, not a pass.
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(
            sr.verify_audit_file(&file, &AuditFileCheck::new()).await,
            Err(Error::Audit(AuditError::Io { .. }))
        ));
    }

    #[tokio::test]
    async fn another_spelling_of_a_mac_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 3).await;
        let n = lines.len();
        // The last record (no successor's prev to betray it) and a middle one.
        for i in [n - 1, 2] {
            let mut l = lines.clone();
            l[i] = upper_mac(&l[i]);
            assert_ne!(l[i], lines[i]);
            write(&file, &l);
            let (seq, reason, _) =
                broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
            assert_eq!((seq, reason), (i as u64 + 1, ChainBreak::BadMac));
        }
        // Upper-cased prev.
        let mut l = lines.clone();
        let (before, rest) = l[3].split_once("\"prev\":\"").unwrap();
        let (prev, after) = rest.split_at(64);
        l[3] = format!("{before}\"prev\":\"{}{after}", prev.to_ascii_uppercase());
        write(&file, &l);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
        assert_eq!(seq, 4);
        assert!(
            matches!(reason, ChainBreak::PrevMismatch | ChainBreak::BadMac),
            "{reason:?}"
        );
        // A checkpoint spelt in upper case is refused as text and never
        // matches.
        write(&file, &lines);
        let upper = Checkpoint {
            seq: head.seq,
            mac: head.mac.to_ascii_uppercase(),
        };
        assert!(
            format!("{}:{}", upper.seq, upper.mac)
                .parse::<Checkpoint>()
                .is_err()
        );
        let (seq, reason, _) = broken(
            sr.verify_audit_file(&file, &AuditFileCheck::new().with_checkpoint(upper))
                .await,
        );
        assert_eq!((seq, reason), (head.seq, ChainBreak::CheckpointMismatch));
    }

    #[tokio::test]
    async fn reordering_editing_deleting_and_reformatting_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 3).await;
        let check = AuditFileCheck::new();

        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        write(&file, &swapped);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!(
            (seq, reason),
            (
                3,
                ChainBreak::UnexpectedSeq {
                    expected: 3,
                    found: 4
                }
            )
        );

        let mut edited = lines.clone();
        let i = edited.iter().position(|l| l.contains("prod/s2")).unwrap();
        edited[i] = edited[i].replace("prod/s2", "prod/s9");
        write(&file, &edited);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!((seq, reason), (i as u64 + 1, ChainBreak::BadMac));

        let mut deleted = lines.clone();
        deleted.remove(1);
        write(&file, &deleted);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!(
            (seq, reason),
            (
                2,
                ChainBreak::UnexpectedSeq {
                    expected: 2,
                    found: 3
                }
            )
        );

        // The last record replaced by an older one: the head's MAC differs.
        let mut replaced = lines.clone();
        let last = replaced.len() - 1;
        replaced[last] = lines[last - 1].clone();
        write(&file, &replaced);
        assert!(matches!(
            broken(sr.verify_audit_file(&file, &check).await).1,
            ChainBreak::UnexpectedSeq { .. }
        ));

        // Not byte for byte what the writer wrote: CRLF, a blank line.
        let crlf: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        std::fs::write(&file, crlf).unwrap();
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!(seq, 1);
        assert!(matches!(reason, ChainBreak::Malformed(_)), "{reason:?}");
        let mut blank = lines.clone();
        blank.insert(2, String::new());
        write(&file, &blank);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!(seq, 3);
        assert!(matches!(reason, ChainBreak::Malformed(_)), "{reason:?}");

        // A line longer than the limit is refused without reading it whole.
        let mut long = lines[..2].to_vec();
        long.push("x".repeat(MAX_RECORD_LINE_BYTES * 3));
        write(&file, &long);
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &check).await);
        assert_eq!(seq, 3);
        assert_eq!(
            reason,
            ChainBreak::LineTooLong {
                line: 3,
                limit: MAX_RECORD_LINE_BYTES
            }
        );

        // Restored, it passes again.
        write(&file, &lines);
        assert_eq!(
            sr.verify_audit_file(&file, &check).await.unwrap().head,
            head
        );
        // A last line missing only its newline is still a whole record.
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.trim_end_matches('\n')).unwrap();
        assert_eq!(
            sr.verify_audit_file(&file, &check).await.unwrap().records,
            head.seq
        );
    }

    #[tokio::test]
    async fn a_given_checkpoint_adds_to_the_saved_head() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 2).await;
        // A checkpoint past the file (kept elsewhere, the log went on).
        let beyond = Checkpoint {
            seq: head.seq + 2,
            mac: "ab".repeat(32),
        };
        let (seq, reason, _) = broken(
            sr.verify_audit_file(&file, &AuditFileCheck::new().with_checkpoint(beyond))
                .await,
        );
        assert_eq!(
            (seq, reason),
            (
                head.seq + 1,
                ChainBreak::Truncated {
                    last: head.seq,
                    checkpoint: head.seq + 2
                }
            )
        );
        // A checkpoint whose MAC is not the record's.
        let wrong = Checkpoint {
            seq: 2,
            mac: "ab".repeat(32),
        };
        let (seq, reason, _) = broken(
            sr.verify_audit_file(&file, &AuditFileCheck::new().with_checkpoint(wrong))
                .await,
        );
        assert_eq!((seq, reason), (2, ChainBreak::CheckpointMismatch));
        // The saved head is checked even when a checkpoint is given: a
        // file cut before the head fails although it reaches the checkpoint.
        write(&file, &lines[..2]);
        let at_two: Checkpoint = format!(
            "2:{}",
            strongroom::audit::AuditRecord::from_json_line(&lines[1])
                .unwrap()
                .mac
        )
        .parse()
        .unwrap();
        let (_, reason, _) = broken(
            sr.verify_audit_file(&file, &AuditFileCheck::new().with_checkpoint(at_two))
                .await,
        );
        assert!(matches!(reason, ChainBreak::Truncated { last: 2, .. }));
    }

    #[tokio::test]
    async fn a_store_without_a_saved_head_accepts_a_complete_chain() {
        let dir = tempfile::tempdir().unwrap();
        let protector = SoftwareProtector::from_key(SecretBytes::new(vec![7; 32])).unwrap();
        let sr = Strongroom::init(
            Arc::new(MemoryStorage::new()),
            &protector,
            Options::default(),
        )
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
        assert_eq!(sr.saved_audit_head().await.unwrap(), None);
        let file = dir.path().join("empty.jsonl");
        std::fs::write(&file, b"").unwrap();
        let r = sr
            .verify_audit_file(&file, &AuditFileCheck::new())
            .await
            .unwrap();
        assert_eq!((r.records, r.saved_head), (0, None));
    }

    /// A 2 MiB line (no newline, as an endless source would give) is
    /// refused by the file verifier and by `open_audit_log` reading a
    /// previous file, with the typed error; a normal log still passes.
    #[tokio::test]
    async fn an_over_long_line_is_refused_by_both_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (sr, file, lines, head) = audited(dir.path(), 2).await;
        let n = lines.len() as u64;
        // The normal log verifies and a log resumes from it.
        assert_eq!(
            strongroom::audit::verify_jsonl_file(
                &file,
                &sr.audit_key().unwrap(),
                None,
                Some(&head)
            )
            .unwrap()
            .head,
            head
        );
        let sink = Arc::new(
            JsonlFileSink::open(dir.path().join("next.jsonl"), FsyncPolicy::OsBuffered).unwrap(),
        );
        assert_eq!(
            sr.open_audit_log(vec![sink.clone()], Some(&file))
                .await
                .unwrap()
                .head()
                .await,
            head
        );

        let mut text = std::fs::read(&file).unwrap();
        text.resize(text.len() + 2 * 1024 * 1024, b'x');
        std::fs::write(&file, &text).unwrap();
        let expected = ChainBreak::LineTooLong {
            line: n + 1,
            limit: MAX_RECORD_LINE_BYTES,
        };
        let e = strongroom::audit::verify_jsonl_file(
            &file,
            &sr.audit_key().unwrap(),
            None,
            Some(&head),
        )
        .unwrap_err();
        assert_eq!(
            e,
            AuditError::ChainBroken {
                seq: n + 1,
                reason: expected.clone()
            }
        );
        assert!(e.to_string().contains("longer than 1048576 bytes"), "{e}");
        let (seq, reason, _) = broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
        assert_eq!((seq, reason), (n + 1, expected.clone()));
        match sr.open_audit_log(vec![sink.clone()], Some(&file)).await {
            Err(Error::Audit(AuditError::ChainBroken { seq, reason })) => {
                assert_eq!((seq, reason), (n + 1, expected));
            }
            other => panic!("expected a line too long, got {other:?}"),
        }
        // The same line as the file's first, ended by a newline.
        std::fs::write(
            &file,
            [vec![b'{'; 2 * 1024 * 1024], b"\n".to_vec()].concat(),
        )
        .unwrap();
        assert!(matches!(
            sr.open_audit_log(vec![sink], Some(&file)).await,
            Err(Error::Audit(AuditError::ChainBroken {
                seq: 1,
                reason: ChainBreak::LineTooLong { line: 1, .. }
            }))
        ));
        // A line of exactly the limit is read (and is not a record).
        std::fs::write(&file, vec![b'{'; MAX_RECORD_LINE_BYTES]).unwrap();
        let (_, reason, _) = broken(sr.verify_audit_file(&file, &AuditFileCheck::new()).await);
        assert!(matches!(reason, ChainBreak::Malformed(_)), "{reason:?}");
    }
}

/// A policy file is read through a bounded reader: an oversized one is
/// refused without being read whole.
#[test]
fn an_oversized_policy_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let text = line.repeat((strongroom::policy::MAX_POLICY_FILE_LEN as usize / line.len()) + 2);
    std::fs::write(&path, text).unwrap();
    let e = strongroom::policy::Policy::from_toml_file(&path).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}
