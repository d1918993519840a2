//! How a batch runs inside its transaction: the key locks, the
//! preconditions and the writes, one statement each.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Postgres, Transaction};
use strongroom::storage::BatchOp;
use strongroom::{Error, Result, StorageErrorKind};

use super::{CHANNEL, LOCK_CLASS};
use crate::errors::pg;

/// The advisory lock key for a storage key: 32 bits of its SHA-256. Two keys
/// sharing a lock only serialise their writers; they never conflict.
pub(super) fn lock_id(key: &str) -> i32 {
    let digest = sha256_prefix(key.as_bytes());
    i32::from_be_bytes(digest)
}

/// The first `N` bytes of the SHA-256 of `bytes`.
pub(super) fn sha256_prefix<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// Takes the batch's key locks in one statement, in ascending order (as
/// every writer takes them, so two batches never wait for each other in a
/// cycle: PostgreSQL evaluates the volatile lock function in the select
/// list after the sort); sends `notice` (if any) from the same statement,
/// which saves the round trip a statement of its own would cost. A notice
/// is transactional wherever it is sent: delivered on commit only.
pub(super) async fn lock_keys(
    tx: &mut Transaction<'static, Postgres>,
    ops: &[BatchOp],
    notice: Option<String>,
) -> Result<()> {
    let ids: Vec<i32> = ops
        .iter()
        .map(|op| lock_id(op.key()))
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect();
    let query = match notice {
        Some(payload) => sqlx::query(
            "SELECT pg_advisory_xact_lock($1, t.id), \
             CASE WHEN t.n = 1 THEN pg_notify($3, $4) END \
             FROM unnest($2::int4[]) WITH ORDINALITY AS t(id, n) ORDER BY t.n",
        )
        .bind(LOCK_CLASS)
        .bind(ids)
        .bind(CHANNEL)
        .bind(payload),
        None => sqlx::query(
            "SELECT pg_advisory_xact_lock($1, t.id) \
             FROM unnest($2::int4[]) WITH ORDINALITY AS t(id, n) ORDER BY t.n",
        )
        .bind(LOCK_CLASS)
        .bind(ids),
    };
    query
        .execute(&mut **tx)
        .await
        .map_err(|e| pg("cannot lock keys", e))?;
    Ok(())
}

/// The first precondition of `ops` that the table does not meet, checked
/// with one statement (`None`: all hold, or there are none).
pub(super) async fn failed_precondition(
    tx: &mut Transaction<'static, Postgres>,
    ops: &[BatchOp],
) -> Result<Option<String>> {
    let expects: Vec<(&String, &Option<Vec<u8>>)> = ops
        .iter()
        .filter_map(|op| match op {
            BatchOp::Expect { key, value } => Some((key, value)),
            _ => None,
        })
        .collect();
    if expects.is_empty() {
        return Ok(None);
    }
    let keys: Vec<Vec<u8>> = expects.iter().map(|(k, _)| k.as_bytes().to_vec()).collect();
    // One row per precondition, in their order (the key is the primary
    // key, so the join matches at most one row).
    let current: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT s.value FROM unnest($1::bytea[]) WITH ORDINALITY AS k(key, n) \
         LEFT JOIN strongroom_kv s ON s.key = k.key ORDER BY k.n",
    )
    .bind(keys)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| pg("write failed", e))?;
    if current.len() != expects.len() {
        return Err(Error::storage(
            "postgres",
            StorageErrorKind::Corrupt,
            "a precondition check returned the wrong number of rows",
        ));
    }
    Ok(expects
        .into_iter()
        .zip(current)
        .find(|((_, want), got)| got != *want)
        .map(|((key, _), _)| key.clone()))
}

/// Applies the puts and deletes of `ops` with at most two statements: the
/// last operation on each key decides its final state, as when they are
/// applied one by one.
pub(super) async fn apply_writes(
    tx: &mut Transaction<'static, Postgres>,
    ops: Vec<BatchOp>,
) -> Result<()> {
    let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for op in ops {
        match op {
            BatchOp::Put { key, value } => {
                last.insert(key, Some(value));
            }
            BatchOp::Delete { key } => {
                last.insert(key, None);
            }
            BatchOp::Expect { .. } => {}
        }
    }
    let (mut put_keys, mut put_values, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in last {
        match value {
            Some(v) => {
                put_keys.push(key.into_bytes());
                put_values.push(v);
            }
            None => gone.push(key.into_bytes()),
        }
    }
    let err = |e| pg("write failed", e);
    if !gone.is_empty() {
        sqlx::query("DELETE FROM strongroom_kv WHERE key = ANY($1::bytea[])")
            .bind(gone)
            .execute(&mut **tx)
            .await
            .map_err(err)?;
    }
    if !put_keys.is_empty() {
        sqlx::query(
            "INSERT INTO strongroom_kv (key, value) \
             SELECT t.k, t.v FROM unnest($1::bytea[], $2::bytea[]) AS t(k, v) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(put_keys)
        .bind(put_values)
        .execute(&mut **tx)
        .await
        .map_err(err)?;
    }
    Ok(())
}
