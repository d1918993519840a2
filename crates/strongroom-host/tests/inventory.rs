//! The shared inventory over a store (the CLI's `inventory` tests cover the
//! audit-file side through the same code).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use strongroom::clock::{ManualClock, Timestamp};
use strongroom::secrets::MetadataPatch;
use strongroom_host::inventory::{InventoryFilter, collect};
use strongroom_host::storage::HostStorage;

#[tokio::test]
async fn filters_by_owner_tags_and_overdue_rotation() {
    let storage = HostStorage::memory();
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let door = common::door(&storage, &clock).await;
    let s = door.secrets();
    for (path, owner, tag) in [
        ("prod/a", "payments", "pci"),
        ("prod/b", "payments", "internal"),
        ("prod/c", "search", "pci"),
        ("dev/d", "payments", "pci"),
    ] {
        s.put(path, b"v", None).await.unwrap();
        let mut patch = MetadataPatch::new().owner(owner);
        patch.tags = Some([tag.to_owned()].into());
        if path == "prod/a" {
            patch.rotation_interval = Some(Some(Duration::from_secs(3600)));
        }
        s.update_metadata(path, patch).await.unwrap();
    }
    let paths = |v: &[strongroom_host::inventory::InventoryEntry]| {
        v.iter()
            .map(|e| e.metadata.path.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let all = collect(&door, "prod/", None, &InventoryFilter::default())
        .await
        .unwrap();
    assert_eq!(paths(&all), ["prod/a", "prod/b", "prod/c"]);
    assert!(all.iter().all(|e| e.last_read.is_none()));
    let filter = InventoryFilter {
        owner: Some("payments".into()),
        tags: ["pci".to_owned()].into(),
        ..InventoryFilter::default()
    };
    assert_eq!(
        paths(&collect(&door, "", None, &filter).await.unwrap()),
        ["dev/d", "prod/a"]
    );
    let overdue = InventoryFilter {
        overdue: true,
        ..InventoryFilter::default()
    };
    assert!(collect(&door, "", None, &overdue).await.unwrap().is_empty());
    clock.advance(Duration::from_secs(3601));
    let due = collect(&door, "", None, &overdue).await.unwrap();
    assert_eq!(paths(&due), ["prod/a"]);
    assert!(due[0].rotation_overdue);
}
