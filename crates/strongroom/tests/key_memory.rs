//! No stray key copies: once a store is sealed and dropped, the process's
//! memory holds no copy of the key-file key (raw or as its base64 text), the
//! root key, the keyring's data keys or the audit key.
//!
//! Linux only: the test reads its own memory through `/proc/self/maps` and
//! `/proc/self/mem`, every readable mapping (heap, thread stacks, including
//! the cached stack of the thread that did the work, anonymous and file
//! mappings). It is the only test in this binary, so no other test holds
//! keys while it scans. The keys it looks for are kept masked (XOR with a
//! random pad), so the test itself holds no copy.

#![cfg(target_os = "linux")]

use std::fmt;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use strongroom::keyring::KeyringOptions;
use strongroom::protector::{KeyProtector, SoftwareProtector};
use strongroom::seal::{Algorithm, DataKey, KEY_LEN, SealContext, SealedValue};
use strongroom::storage::{MemoryStorage, Storage as _};
use strongroom::{KEYRING_RECORD, Options, Result, SecretBytes, Strongroom};
use zeroize::Zeroizing;

/// A key the scan looks for, held only masked.
struct Needle {
    name: String,
    mask: Vec<u8>,
    masked: Vec<u8>,
}

impl Needle {
    fn new(name: impl Into<String>, key: &[u8]) -> Self {
        let mut mask = vec![0u8; key.len()];
        SystemRandom::new().fill(&mut mask).unwrap();
        let masked = key.iter().zip(&mask).map(|(k, m)| k ^ m).collect();
        Self {
            name: name.into(),
            mask,
            masked,
        }
    }

    fn len(&self) -> usize {
        self.masked.len()
    }

    fn first_byte(&self) -> u8 {
        self.masked[0] ^ self.mask[0]
    }

    /// Whether `window` starts with the key.
    fn found_at(&self, window: &[u8]) -> bool {
        window.len() >= self.len()
            && window
                .iter()
                .zip(self.masked.iter().zip(&self.mask))
                .all(|(w, (k, m))| w ^ m == *k)
    }

    /// The key itself, for the moments the test must use it.
    fn unmask(&self) -> SecretBytes {
        SecretBytes::new(
            self.masked
                .iter()
                .zip(&self.mask)
                .map(|(k, m)| k ^ m)
                .collect(),
        )
    }
}

/// A software protector that remembers (masked) every root key it wraps.
struct Spy {
    inner: SoftwareProtector,
    roots: Mutex<Vec<Needle>>,
}

impl fmt::Debug for Spy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Spy")
    }
}

#[async_trait]
impl KeyProtector for Spy {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn wrap(&self, root_key: &SecretBytes) -> Result<Vec<u8>> {
        let needle = Needle::new("root key", root_key.expose_secret());
        self.roots.lock().unwrap().push(needle);
        self.inner.wrap(root_key).await
    }

    async fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes> {
        self.inner.unwrap(wrapped).await
    }
}

/// Writes a key file (mode 0600) holding a fresh key; returns its needles.
fn write_key_file(path: &Path) -> Vec<Needle> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new().fill(&mut *key).unwrap();
    let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
    let needles = vec![
        Needle::new("key-file key", &*key),
        Needle::new("key-file text", text.as_bytes()),
    ];
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    needles
}

/// The data keys of the stored keyring that open `probes` (a value sealed
/// under each key version), found among the 32-byte windows of the keyring
/// record's plaintext, so the test needs no access to the library's
/// internals and no knowledge of the record's layout.
async fn data_key_needles(
    mem: &MemoryStorage,
    root: &Needle,
    probes: &[(SealedValue, SealContext<'_>)],
) -> Vec<Needle> {
    let raw = mem.get(KEYRING_RECORD).await.unwrap().unwrap();
    let sealed = SealedValue::parse(&raw).unwrap();
    let root = DataKey::new(Algorithm::Aes256Gcm, root.unmask()).unwrap();
    let plain = root
        .open(&sealed, &SealContext::new(KEYRING_RECORD, 0))
        .expect("the keyring record opens under the root key");
    let mut needles = Vec::new();
    for (probe, ctx) in probes {
        let version = probe.key_version();
        let found = plain.expose_secret().windows(KEY_LEN).find(|w| {
            DataKey::new(probe.algorithm(), SecretBytes::copy_from(w))
                .and_then(|k| k.open(probe, ctx))
                .is_ok()
        });
        let key = found.unwrap_or_else(|| panic!("data key {version} not in the keyring"));
        needles.push(Needle::new(format!("data key {version}"), key));
    }
    needles
}

/// Data key versions each store ends up with.
const DATA_KEYS: u32 = 4;

/// Everything a store's keys go through: key file, init, secrets put and
/// get, keyring rotations, seal, unseal, seal again, with data keys of
/// `algorithm`, on a runtime with worker threads or without. Returns the
/// needles.
fn exercise(dir: &Path, algorithm: Algorithm, workers: bool) -> Vec<Needle> {
    let key_file = dir.join(format!("{algorithm}.key"));
    let mut needles = write_key_file(&key_file);
    let rt = if workers {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .unwrap();
    let options = move || Options {
        keyring: KeyringOptions {
            algorithm,
            ..KeyringOptions::default()
        },
        ..Options::default()
    };
    let work = async move {
        let mut needles = Vec::new();
        let mem = MemoryStorage::new();
        let spy = Spy {
            inner: SoftwareProtector::from_key_file(&key_file).unwrap(),
            roots: Mutex::new(Vec::new()),
        };
        let sr = Strongroom::init(Arc::new(mem.clone()), &spy, options())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        let secrets = sr.secrets();
        let ctx = SealContext::new("key-memory/probe", 1);
        secrets.put("app/db", b"hunter2", None).await.unwrap();
        assert_eq!(
            secrets.get("app/db").await.unwrap().value.expose_secret(),
            b"hunter2"
        );
        // A value sealed under each key version, to recognise the keys by.
        let mut probes = vec![(sr.seal_value(b"probe", &ctx).await.unwrap(), ctx)];
        for version in 2..=DATA_KEYS {
            sr.rotate().await.unwrap();
            secrets.put("app/db", b"hunter3", None).await.unwrap();
            let probe = sr.seal_value(b"probe", &ctx).await.unwrap();
            assert_eq!(probe.key_version(), version);
            probes.push((probe, ctx));
        }
        needles.push(Needle::new(
            "audit key",
            sr.audit_key().unwrap().expose_secret(),
        ));
        sr.seal();
        drop(secrets);
        drop(sr);

        // The unwrap path: unseal again, read, seal.
        let sr = Strongroom::unseal(Arc::new(mem.clone()), &spy, options())
            .await
            .unwrap()
            .dangerous_traced("test")
            .await
            .unwrap();
        assert_eq!(
            sr.secrets()
                .get("app/db")
                .await
                .unwrap()
                .value
                .expose_secret(),
            b"hunter3"
        );
        sr.seal();
        drop(sr);

        let roots = std::mem::take(&mut *spy.roots.lock().unwrap());
        assert_eq!(roots.len(), 1);
        needles.extend(data_key_needles(&mem, &roots[0], &probes).await);
        needles.extend(roots);
        needles
    };
    needles.extend(if workers {
        rt.block_on(rt.spawn(work)).unwrap()
    } else {
        rt.block_on(work)
    });
    // Joins the worker threads (their stacks stay mapped and are scanned).
    drop(rt);
    for n in &mut needles {
        n.name = format!("{algorithm}: {}", n.name);
    }
    needles
}

/// One readable mapping from `/proc/self/maps`.
struct Region {
    start: u64,
    end: u64,
    name: String,
}

fn readable_regions() -> Vec<Region> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let name = fields.nth(3).unwrap_or("[anonymous]").to_owned();
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            let skip = ["[vvar]", "[vvar_vclock]", "[vsyscall]"].contains(&name.as_str());
            (perms.starts_with('r') && !skip).then_some(Region { start, end, name })
        })
        .collect()
}

/// Where each needle occurs in this process's readable memory:
/// (needle name, address, mapping name).
fn scan(needles: &[Needle]) -> Vec<(String, u64, String)> {
    const CHUNK: usize = 1 << 20;
    let longest = needles.iter().map(Needle::len).max().unwrap_or(1);
    let mut first = [false; 256];
    for n in needles {
        first[usize::from(n.first_byte())] = true;
    }
    let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
    let mut buf = vec![0u8; CHUNK + longest];
    let mut hits = Vec::new();
    for region in readable_regions() {
        let mut at = region.start;
        while at < region.end {
            // Read a chunk plus enough of the next to see keys that straddle.
            let want = usize::try_from((region.end - at).min((CHUNK + longest) as u64)).unwrap();
            let got = match mem
                .seek(SeekFrom::Start(at))
                .and_then(|_| mem.read(&mut buf[..want]))
            {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            let starts = got.min(CHUNK);
            for i in 0..starts {
                if first[usize::from(buf[i])] {
                    for n in needles {
                        if n.found_at(&buf[i..got]) {
                            hits.push((n.name.clone(), at + i as u64, region.name.clone()));
                        }
                    }
                }
            }
            at += starts as u64;
        }
    }
    hits
}

#[test]
fn no_key_copies_survive_seal_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    // The work runs off this thread: one store with AES-256-GCM data keys
    // on a thread of its own, one with ChaCha20-Poly1305 data keys as a task
    // on a runtime's worker threads. Their stacks stay mapped after the
    // threads end (glibc caches them for reuse) and are scanned with
    // everything else.
    let needles = std::thread::spawn(move || {
        let mut needles = exercise(&path, Algorithm::Aes256Gcm, false);
        needles.extend(exercise(&path, Algorithm::ChaCha20Poly1305, true));
        needles
    })
    .join()
    .unwrap();
    let names: Vec<&str> = needles.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names.len(),
        2 * (4 + DATA_KEYS as usize),
        "per store: key-file key and text, audit key, root key, data keys: {names:?}"
    );
    // A live canary proves the scan reads the heap.
    let canary = SecretBytes::random(KEY_LEN).unwrap();
    let mut needles = needles;
    needles.push(Needle::new("canary", canary.expose_secret()));
    let (canaries, hits): (Vec<_>, Vec<_>) = scan(&needles)
        .into_iter()
        .partition(|(n, _, _)| n == "canary");
    drop(canary);
    assert!(!canaries.is_empty(), "the scan did not find a live canary");
    assert!(
        hits.is_empty(),
        "{} key copies survive in memory:\n{}",
        hits.len(),
        hits.iter()
            .map(|(n, a, r)| format!("  {n} at {a:#x} in {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
