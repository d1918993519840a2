//! What the host layer's tests share: a new store on a clock the test
//! moves.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strongroom::clock::ManualClock;
use strongroom::dangerous::Door;
use strongroom::protector::SoftwareProtector;
use strongroom::{Options, SecretBytes, Strongroom};
use strongroom_host::storage::HostStorage;

/// A new store in `storage` under a fixed software key, timed by `clock`.
pub(crate) async fn door(storage: &HostStorage, clock: &ManualClock) -> Door {
    let protector = SoftwareProtector::from_key(SecretBytes::new(vec![5; 32])).unwrap();
    Strongroom::init(
        storage.storage().clone(),
        &protector,
        Options {
            clock: Arc::new(clock.clone()),
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .dangerous_traced("test")
    .await
    .unwrap()
}
