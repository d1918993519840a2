//! Ethereum conventions for secp256k1 keys: Keccak-256, EIP-191 personal
//! messages, EIP-155 `v`, and EIP-55 addresses.

use sha3::{Digest, Keccak256};

use super::SigningError;
use crate::Result;

/// Keccak-256 (the original Keccak padding, as Ethereum uses, not SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// The EIP-191 (version `0x45`) hash of a personal message:
/// `keccak256("\x19Ethereum Signed Message:\n" || len(msg) in decimal || msg)`,
/// what `personal_sign`, `eth_sign` in wallets and web3.js
/// `accounts.sign` sign.
pub fn personal_message_hash(msg: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(msg.len().to_string().as_bytes());
    h.update(msg);
    h.finalize().into()
}

/// `v` of a personal message signature: 27 plus the recovery id.
pub(super) fn personal_v(recovery_id: u8) -> u64 {
    27 + u64::from(recovery_id)
}

/// `v` of an EIP-155 transaction signature: `chain_id * 2 + 35` plus the
/// recovery id; chain id 0 or one whose `v` overflows is refused.
pub(super) fn eip155_v(chain_id: u64, recovery_id: u8) -> Result<u64> {
    chain_id
        .checked_mul(2)
        .and_then(|v| v.checked_add(35 + u64::from(recovery_id)))
        .filter(|_| chain_id != 0)
        .ok_or_else(|| SigningError::InvalidChainId { chain_id }.into())
}

/// The EIP-55 checksummed address of a 65-byte uncompressed point, or
/// `None` if `point` is not one.
pub(super) fn address_of_point(point: &[u8]) -> Option<String> {
    let [0x04, xy @ ..] = point else {
        return None;
    };
    if xy.len() != 64 {
        return None;
    }
    let hash = keccak256(xy);
    Some(checksummed(&hash[12..]))
}

/// EIP-55 mixed-case hex of a 20-byte address, with `0x`.
fn checksummed(address: &[u8]) -> String {
    let lower = hex::encode(address);
    let hash = keccak256(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}
