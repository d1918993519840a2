//! Rewrap: re-sealing every stored record under the primary key, resumable
//! after a crash and honest about what it left behind.
//!
//! The cursor (`sys/rewrap-cursor`, format 2) records the key version it
//! rewraps to and the last storage key done:
//!
//! ```text
//! 1 byte   cursor format (2)
//! 4 bytes  target key version, big-endian
//! rest     the last storage key re-sealed (UTF-8)
//! ```
//!
//! A cursor for another target (a rotation happened between two runs) or in
//! the old format (a bare storage key) is not resumed: the scan starts over.
//! A pass that ends while the primary is still its target is verified by a
//! count of what remains on other versions; when the primary moved during a
//! pass, another pass runs.

use crate::seal::{self, SealContext};
use crate::storage::BatchOp;
use crate::{Error, Result};

use super::{REWRAP_CURSOR, SealedRecord, Strongroom, is_pre_unseal};

const CURSOR_FORMAT: u8 = 2;
/// Passes before a rewrap that keeps being overtaken by rotations stops.
const MAX_PASSES: u32 = 8;

/// Where a running rewrap stands: reported once a pass has counted its work
/// and after each committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapProgress {
    /// The pass under way (1-based; more than one when a rotation overtook
    /// the rewrap).
    pub pass: u32,
    /// Records looked at so far, over every pass.
    pub scanned: u64,
    /// Records re-sealed so far, over every pass.
    pub rewrapped: u64,
    /// Records not under this pass's target key when it began (a count of
    /// record headers, no decryption; other processes' writes, which are
    /// sealed under the primary, only lower it).
    pub to_rewrap: u64,
    /// Of those, re-sealed in this pass so far.
    pub rewrapped_this_pass: u64,
}

/// A rewrap's progress callback.
pub type RewrapObserver<'a> = &'a mut (dyn FnMut(RewrapProgress) + Send);

/// One rewrap pass: its target, batch size, and who is told how it goes.
struct Pass<'o, 'f> {
    target: u32,
    batch_size: usize,
    observer: &'o mut Option<RewrapObserver<'f>>,
    /// Where the rewrap stood when the pass began.
    progress: RewrapProgress,
}

/// What `Strongroom::rewrap` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Records looked at.
    pub scanned: u64,
    /// Records re-sealed under the primary key.
    pub rewrapped: u64,
    /// Records that could not be opened (tampered, or under a retired key);
    /// they are left exactly as they were.
    pub unreadable: Vec<String>,
    /// The key version everything was re-sealed to (the primary at the end).
    pub target_version: u32,
    /// Records still sealed under another key version after the last pass
    /// (the unreadable ones included). Zero means the older versions hold
    /// nothing any more and can be retired.
    pub remaining: u64,
    /// Full passes over the store (more than one when a rotation overtook
    /// the rewrap).
    pub passes: u32,
}

impl RewrapReport {
    /// Whether every stored record is under [`RewrapReport::target_version`].
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }
}

fn encode_cursor(target: u32, after: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + after.len());
    out.push(CURSOR_FORMAT);
    out.extend_from_slice(&target.to_be_bytes());
    out.extend_from_slice(after.as_bytes());
    out
}

/// The cursor's position if it was saved for `target`.
fn decode_cursor(raw: &[u8], target: u32) -> Option<String> {
    let (&format, rest) = raw.split_first()?;
    if format != CURSOR_FORMAT || rest.len() < 4 {
        return None;
    }
    let (v, key) = rest.split_at(4);
    let v = u32::from_be_bytes(<[u8; 4]>::try_from(v).ok()?);
    (v == target).then(|| String::from_utf8(key.to_vec()).ok())?
}

fn record_version(key: &str, bytes: &[u8]) -> Result<u32> {
    let r = SealedRecord::decode(key, bytes)?;
    seal::header_key_version(&bytes[r.sealed_offset..])
}

impl Strongroom {
    /// Re-seals every stored record that is not under the primary key, in
    /// batches of `batch_size`, without returning plaintext to the caller.
    /// Progress is saved with each batch, so after a crash a new call resumes
    /// where the last one stopped (or starts over if the primary changed
    /// since). Records that fail to open are reported and left untouched.
    ///
    /// Safe while other processes write: their writes are sealed under the
    /// current primary (see [`Strongroom::commit`]). The report's
    /// [`RewrapReport::remaining`] counts what is still on other versions;
    /// retire older versions only when it is zero.
    pub(crate) async fn rewrap(&self, batch_size: usize) -> Result<RewrapReport> {
        self.rewrap_observed(batch_size, None).await
    }

    /// [`Strongroom::rewrap`], telling `observer` how far it got: once per
    /// pass after counting what the pass must re-seal (one more scan of
    /// the store's record headers), then after each committed batch.
    pub(crate) async fn rewrap_observed(
        &self,
        batch_size: usize,
        mut observer: Option<RewrapObserver<'_>>,
    ) -> Result<RewrapReport> {
        let batch_size = batch_size.clamp(1, 10_000);
        let mut report = RewrapReport::default();
        // Start from the newest keyring another process may have made.
        self.refresh_if_changed().await?;
        while report.passes < MAX_PASSES {
            report.passes += 1;
            let target = self.keyring()?.primary_version();
            report.unreadable.clear();
            let mut progress = RewrapProgress {
                pass: report.passes,
                scanned: report.scanned,
                rewrapped: report.rewrapped,
                ..RewrapProgress::default()
            };
            if let Some(observe) = observer.as_deref_mut() {
                progress.to_rewrap = self.count_not_under(target).await?;
                observe(progress);
            }
            let pass = Pass {
                target,
                batch_size,
                observer: &mut observer,
                progress,
            };
            if !self.rewrap_pass(pass, &mut report).await? {
                continue; // overtaken by a rotation: start over for the new target
            }
            self.inner.storage.delete(REWRAP_CURSOR).await?;
            self.refresh_if_changed().await?;
            let primary = self.keyring()?.primary_version();
            report.target_version = primary;
            report.remaining = self.count_not_under(primary).await?;
            if primary == target {
                break;
            }
        }
        Ok(report)
    }

    /// One pass to `target`. Returns false if the primary moved on.
    async fn rewrap_pass(&self, pass: Pass<'_, '_>, report: &mut RewrapReport) -> Result<bool> {
        let Pass {
            target,
            batch_size,
            observer,
            mut progress,
        } = pass;
        let storage = &self.inner.storage;
        let mut after = self
            .barrier()
            .get(REWRAP_CURSOR)
            .await?
            .and_then(|raw| decode_cursor(&raw, target));
        loop {
            let page = storage.scan("", after.as_deref(), batch_size).await?;
            let Some((last, _)) = page.last() else {
                return Ok(true);
            };
            let last = last.clone();
            if self.keyring()?.primary_version() != target {
                return Ok(false);
            }
            let mut ops = Vec::new();
            let mut rewrapped = 0;
            let mut unreadable = Vec::new();
            let mut scanned = 0;
            for (key, bytes) in &page {
                if is_pre_unseal(key) || key == REWRAP_CURSOR {
                    continue; // the cursor is rewritten under the primary below
                }
                scanned += 1;
                match record_version(key, bytes) {
                    Ok(v) if v == target => continue,
                    Ok(_) => {}
                    Err(_) => {
                        unreadable.push(key.clone());
                        continue;
                    }
                }
                match self.reseal_record(key, bytes).await {
                    Ok(new) => {
                        ops.push(BatchOp::expect(key.clone(), Some(bytes.clone())));
                        ops.push(BatchOp::put(key.clone(), new));
                        rewrapped += 1;
                    }
                    Err(Error::Sealed) => return Err(Error::Sealed),
                    Err(_) => unreadable.push(key.clone()),
                }
            }
            let cursor = self
                .barrier_seal(REWRAP_CURSOR, &encode_cursor(target, &last))
                .await?;
            ops.push(BatchOp::put(REWRAP_CURSOR, cursor));
            match self.commit(ops).await {
                Ok(()) => {
                    report.scanned += scanned;
                    report.rewrapped += rewrapped;
                    report.unreadable.extend(unreadable);
                    if let Some(observe) = observer.as_deref_mut() {
                        progress.scanned = report.scanned;
                        progress.rewrapped = report.rewrapped;
                        progress.rewrapped_this_pass += rewrapped;
                        observe(progress);
                    }
                }
                // A record changed under us: another writer rewrote it (under
                // the primary); redo this page.
                Err(Error::StorageConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
            after = Some(last);
        }
    }

    /// Stored records not sealed under `version` (unreadable ones included).
    async fn count_not_under(&self, version: u32) -> Result<u64> {
        let mut n = 0;
        self.scan_sealed(|key, bytes| {
            if record_version(key, bytes).ok() != Some(version) {
                n += 1;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    async fn reseal_record(&self, key: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        let rec = SealedRecord::decode(key, bytes)?;
        let path = rec.path.to_owned();
        let ctx = SealContext::new(&path, rec.version);
        let plain = self.open_record(key, bytes.to_vec(), &ctx).await?;
        self.seal_envelope(plain.expose_secret(), &ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_is_resumed_only_for_its_target() {
        let c = encode_cursor(3, "s/kv/a@1");
        assert_eq!(decode_cursor(&c, 3).as_deref(), Some("s/kv/a@1"));
        assert_eq!(decode_cursor(&c, 4), None);
        // the format-1 cursor (a bare key) records no target: start over
        assert_eq!(decode_cursor(b"s/kv/a@1", 3), None);
        assert_eq!(decode_cursor(&[2, 0, 0], 0), None);
    }
}
