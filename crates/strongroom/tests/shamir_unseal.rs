//! Unsealing a store from Shamir shares: any K of N unseal, bad share sets
//! fail with typed errors and leave the store unchanged.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use strongroom::dangerous::Door;
use strongroom::seal::SealContext;
use strongroom::shamir::{ShamirError, ShamirProtector, Share};
use strongroom::storage::MemoryStorage;
use strongroom::{Error, Options, ProtectorErrorKind, SecretString, Strongroom};

const SECRET: &[u8] = b"s3cr3t-db-password";

/// A store initialised under a 3-of-5 split, holding one sealed record; the
/// shares come back in text form, as their holders would keep them.
async fn store() -> (MemoryStorage, Vec<SecretString>) {
    let mem = MemoryStorage::new();
    let (protector, shares) = ShamirProtector::generate(3, 5).unwrap();
    let sr = Strongroom::init(Arc::new(mem.clone()), &protector, Options::default())
        .await
        .unwrap()
        .dangerous_traced("test")
        .await
        .unwrap();
    sr.put_sealed("s/app/db", SECRET, &SealContext::new("app/db", 1))
        .await
        .unwrap();
    (mem, shares.iter().map(Share::to_text).collect())
}

fn parse(texts: &[&SecretString]) -> strongroom::Result<Vec<Share>> {
    Share::parse_all(&texts.iter().map(|t| t.expose_secret()).collect::<Vec<_>>())
}

async fn unseal(mem: &MemoryStorage, shares: &[Share]) -> strongroom::Result<Door> {
    let protector = ShamirProtector::from_shares(shares)?;
    Strongroom::unseal(Arc::new(mem.clone()), &protector, Options::default())
        .await?
        .dangerous_traced("test")
        .await
}

#[tokio::test]
async fn any_three_of_five_shares_unseal() {
    let (mem, texts) = store().await;
    for picked in [[0, 1, 2], [4, 2, 0], [1, 3, 4], [3, 4, 0]] {
        let shares = parse(&picked.map(|i| &texts[i])).unwrap();
        let sr = unseal(&mem, &shares).await.unwrap();
        let got = sr
            .get_sealed("s/app/db", &SealContext::new("app/db", 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), SECRET);
    }
}

#[tokio::test]
async fn bad_share_sets_fail_with_typed_errors_and_change_nothing() {
    let (mem, texts) = store().await;
    let before = mem.snapshot().await;

    // two shares: too few, and the error says how many are needed
    let e = unseal(&mem, &parse(&[&texts[0], &texts[1]]).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shamir(ShamirError::TooFewShares {
                needed: 3,
                given: 2
            })
        ),
        "{e:?}"
    );

    // the same share twice
    let e = unseal(&mem, &parse(&[&texts[0], &texts[1], &texts[0]]).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Shamir(ShamirError::DuplicateShare { x: 1, .. })),
        "{e:?}"
    );

    // a share from another split
    let (_, other) = ShamirProtector::generate(3, 5).unwrap();
    let other_text = other[2].to_text();
    let e = unseal(&mem, &parse(&[&texts[0], &texts[1], &other_text]).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shamir(ShamirError::DifferentSplits { index: 2, .. })
        ),
        "{e:?}"
    );

    // three shares of another split entirely: they combine, but do not unwrap
    let e = unseal(&mem, &other[..3]).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protector {
                protector: "shamir",
                kind: ProtectorErrorKind::UnwrapFailed,
                ..
            }
        ),
        "{e:?}"
    );

    // a mistyped share is named by its position
    let mut typo = texts[1].expose_secret().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'A' { 'B' } else { 'A' });
    let typo = SecretString::from(typo);
    let e = parse(&[&texts[0], &typo, &texts[2]]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Shamir(ShamirError::CorruptShare { index: Some(1), .. })
        ),
        "{e:?}"
    );

    assert_eq!(
        mem.snapshot().await,
        before,
        "failed unseals changed the store"
    );
    // and the right shares still work
    unseal(&mem, &parse(&[&texts[2], &texts[3], &texts[4]]).unwrap())
        .await
        .unwrap();
}
