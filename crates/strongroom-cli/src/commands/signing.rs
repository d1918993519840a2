//! Signing keys that never leave the store (`strongroom::signing`):
//! `signing-key create | rotate | info | retire`, `sign`, `verify`,
//! `pubkey`. Each acts as the operator through the library's
//! [`SigningHandle`], so each is checked and audited there (a signature's
//! record carries a keyed HMAC of the message, never the message). Only
//! public keys are ever printed.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use strongroom::authorized::SigningHandle;
use strongroom::signing::{KeyInfo, KeyOptions, KeyType, RateLimit, Signature};

use crate::args::{
    PubkeyArgs, SignArgs, SignMode, SigningKeyCreateArgs, SigningKeyNameArgs, SigningKeyRetireArgs,
    VerifyArgsSig,
};
use crate::exit::{CliResult, Failure};
use crate::operator::{Operator, audited};
use crate::print::json as out;

/// The longest message read (16 MiB).
const MAX_MESSAGE_LEN: u64 = 16 * 1024 * 1024;

/// Runs `f` with the operator's signing handle, then closes the store.
async fn with_signing<T>(
    store: &crate::args::StoreArgs,
    who: &crate::args::OperatorArgs,
    stdin_free: bool,
    f: impl AsyncFnOnce(&SigningHandle) -> CliResult<T>,
) -> CliResult<T> {
    Operator::run(store, who, stdin_free, async |open, op| {
        let keys = Arc::new(open.sr.signing_keys());
        f(&op.secrets().signing(&keys)).await
    })
    .await
}

/// The message: the file's bytes, or stdin's.
fn message(file: Option<&Path>) -> CliResult<Vec<u8>> {
    let mut buf = Vec::new();
    let read = match file {
        Some(p) => std::fs::File::open(p)
            .and_then(|f| f.take(MAX_MESSAGE_LEN + 1).read_to_end(&mut buf))
            .map_err(|e| Failure::Io(format!("{}: {e}", p.display()))),
        None => std::io::stdin()
            .lock()
            .take(MAX_MESSAGE_LEN + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Failure::Io(format!("cannot read the message from stdin: {e}"))),
    };
    read?;
    if buf.len() as u64 > MAX_MESSAGE_LEN {
        return Err(Failure::Usage(format!(
            "the message is longer than {MAX_MESSAGE_LEN} bytes"
        )));
    }
    Ok(buf)
}

fn info_json(i: &KeyInfo) -> serde_json::Value {
    json!({
        "name": i.name,
        "key_type": i.key_type.as_str(),
        "latest_version": i.latest_version,
        "min_verify_version": i.min_verify_version,
        "versions": i.versions.iter().map(|v| json!({
            "version": v.version,
            "created_at": v.created.to_string(),
        })).collect::<Vec<_>>(),
        "rate_limit": i.rate_limit.map(|r| json!({
            "per_second": r.per_second,
            "burst": r.burst,
        })),
    })
}

fn print_info(i: &KeyInfo, as_json: bool) {
    if as_json {
        out::print(&info_json(i));
        return;
    }
    println!("name: {}", i.name);
    println!("type: {}", i.key_type);
    println!("latest version: {}", i.latest_version);
    println!("minimum verify version: {}", i.min_verify_version);
    for v in &i.versions {
        println!("version {} created {}", v.version, v.created);
    }
    match i.rate_limit {
        Some(r) => println!("rate limit: {}/s, burst {}", r.per_second, r.burst),
        None => println!("rate limit: none"),
    }
}

/// `signing-key create`.
pub(crate) async fn create(a: SigningKeyCreateArgs) -> CliResult {
    let key_type: KeyType = a.key_type.parse().map_err(Failure::Lib)?;
    let mut options = KeyOptions::default();
    if let (Some(rate), Some(burst)) = (a.rate, a.burst) {
        options = options.with_rate_limit(RateLimit::new(rate, burst)?);
    }
    let info = with_signing(&a.store, &a.operator, true, async |s| {
        audited(s.create_key(&a.name, key_type, options).await, true)
    })
    .await?;
    print_info(&info, a.json);
    Ok(())
}

/// `signing-key rotate`.
pub(crate) async fn rotate(a: SigningKeyNameArgs) -> CliResult {
    let info = with_signing(&a.store, &a.operator, true, async |s| {
        audited(s.rotate_key(&a.name).await, true)
    })
    .await?;
    print_info(&info, a.json);
    Ok(())
}

/// `signing-key info`.
pub(crate) async fn info(a: SigningKeyNameArgs) -> CliResult {
    let info = with_signing(&a.store, &a.operator, true, async |s| {
        audited(s.key_info(&a.name).await, false)
    })
    .await?;
    print_info(&info, a.json);
    Ok(())
}

/// `signing-key retire`.
pub(crate) async fn retire(a: SigningKeyRetireArgs) -> CliResult {
    let info = with_signing(&a.store, &a.operator, true, async |s| {
        audited(
            s.set_min_verify_version(&a.name, a.min_verify_version)
                .await,
            true,
        )
    })
    .await?;
    println!(
        "{}: signatures of versions below {} no longer verify",
        info.name, info.min_verify_version
    );
    Ok(())
}

/// A 32-byte hash given as hex (`0x` optional), surrounding space ignored.
fn parse_hash(text: &[u8]) -> CliResult<[u8; 32]> {
    let text = std::str::from_utf8(text)
        .map_err(|_| Failure::Usage("the transaction hash is not hex text".into()))?
        .trim();
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(hex_part)
        .map_err(|e| Failure::Usage(format!("the transaction hash is not hex: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| Failure::Usage("the transaction hash must be 32 bytes".into()))
}

/// `sign`.
pub(crate) async fn sign(a: SignArgs) -> CliResult {
    if (a.mode == SignMode::EthTxHash) != a.chain_id.is_some() {
        return Err(Failure::Usage(
            "--chain-id goes with --mode eth-tx-hash, and only with it".into(),
        ));
    }
    // The message is read before the store is opened (stdin is the message).
    let msg = message(a.file.as_deref())?;
    let stdin_free = a.file.is_some();
    let (version, text) = with_signing(&a.store, &a.operator, stdin_free, async |s| {
        Ok(match a.mode {
            SignMode::Plain => {
                let sig = audited(s.sign(&a.name, &msg).await, false)?;
                (sig.version(), sig.to_text())
            }
            SignMode::EthPersonal => {
                let sig = audited(s.eth_sign_personal_message(&a.name, &msg).await, false)?;
                (sig.version(), sig.to_hex())
            }
            SignMode::EthTxHash => {
                let hash = parse_hash(&msg)?;
                let chain = a.chain_id.unwrap_or_default();
                let sig = audited(
                    s.eth_sign_transaction_hash(&a.name, &hash, chain).await,
                    false,
                )?;
                (sig.version(), sig.to_hex())
            }
        })
    })
    .await?;
    if a.json {
        out::print(&json!({ "key": a.name, "version": version, "signature": text }));
    } else {
        println!("{text}");
    }
    Ok(())
}

/// `verify`: exit 0 when the signature matches, 31 when it does not.
pub(crate) async fn verify(a: VerifyArgsSig) -> CliResult {
    let sig: Signature = a.signature.trim().parse().map_err(Failure::Lib)?;
    let msg = message(a.file.as_deref())?;
    let stdin_free = a.file.is_some();
    let ok = with_signing(&a.store, &a.operator, stdin_free, async |s| {
        audited(s.verify(&a.name, &msg, &sig).await, false)
    })
    .await?;
    if ok {
        println!("ok: signature of {} version {}", a.name, sig.version());
        Ok(())
    } else {
        Err(Failure::BadSignature)
    }
}

/// `pubkey`.
pub(crate) async fn pubkey(a: PubkeyArgs) -> CliResult {
    let key = with_signing(&a.store, &a.operator, true, async |s| {
        audited(s.public_key(&a.name, a.version).await, false)
    })
    .await?;
    if a.eth_address {
        match key.eth_address() {
            Some(addr) => println!("{addr}"),
            None => {
                return Err(Failure::Lib(strongroom::Error::InvalidArgument(format!(
                    "{} is a {} key: only secp256k1 keys have an Ethereum address",
                    a.name,
                    key.key_type()
                ))));
            }
        }
    } else if a.raw {
        println!("{}", hex::encode(key.raw()));
    } else {
        print!("{}", key.spki_pem());
    }
    Ok(())
}
