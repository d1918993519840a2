//! Published test vectors: RFC 8032 (Ed25519), Wycheproof (ECDSA P-256
//! with SHA-256, DER), web3.js `accounts.sign` (EIP-191) and the EIP-155
//! example transaction. Signing keys are imported through the test-only
//! `SigningKeys::import_key` and used through the handle; the Wycheproof
//! cases (foreign public keys, verification only) go straight to the
//! verifier the engine calls (`material::verify`).

use super::tests::{ALL_CAPS, setup};
use super::*;
use crate::SecretBytes;

/// RFC 8032 section 7.1: tests 1, 2, 3 and SHA(abc) (secret key, public
/// key, message, signature).
const RFC8032: [(&str, &str, &str, &str); 4] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[tokio::test]
async fn rfc8032_ed25519_vectors() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    for (i, (secret, public, msg, sig)) in RFC8032.iter().enumerate() {
        let name = format!("keys/rfc8032-{i}");
        p.keys
            .import_key(&name, KeyType::Ed25519, SecretBytes::new(unhex(secret)))
            .await
            .unwrap();
        let key = h.public_key(&name, None).await.unwrap();
        assert_eq!(hex::encode(key.raw()), *public, "test {i}");
        let made = h.sign(&name, &unhex(msg)).await.unwrap();
        assert_eq!(hex::encode(made.as_bytes()), *sig, "test {i}");
        let published = Signature::new(1, unhex(sig));
        assert!(h.verify(&name, &unhex(msg), &published).await.unwrap());
        assert!(
            !h.verify(&name, b"not the message", &published)
                .await
                .unwrap()
        );
    }
}

#[test]
fn wycheproof_ecdsa_p256_sha256_der_vectors() {
    use wycheproof::TestResult;
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let ok = material::verify(KeyType::EcdsaP256, &group.key.key, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    assert!(ok, "tc {} ({}) should verify", t.tc_id, t.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!ok, "tc {} ({}) should not verify", t.tc_id, t.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        valid > 50 && invalid > 200,
        "{valid} valid, {invalid} invalid"
    );
}

/// web3.js: `web3.eth.accounts.sign('Some data', '0x4c08...2318')`.
#[tokio::test]
async fn web3_personal_message_vector() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    let secret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    p.keys
        .import_key(
            "keys/web3",
            KeyType::Secp256k1,
            SecretBytes::new(unhex(secret)),
        )
        .await
        .unwrap();
    assert_eq!(
        h.eth_address("keys/web3", None).await.unwrap(),
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    );
    assert_eq!(
        hex::encode(personal_message_hash(b"Some data")),
        "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"
    );
    let sig = h
        .eth_sign_personal_message("keys/web3", b"Some data")
        .await
        .unwrap();
    assert_eq!(sig.v(), 0x1c);
    assert_eq!(sig.recovery_id(), 1);
    assert_eq!(
        sig.to_hex(),
        "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd\
         6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"
    );
    // the generic signature of a secp256k1 key is over Keccak-256 of the
    // message: signing the EIP-191 prefixed message gives the same r, s
    let mut prefixed = b"\x19Ethereum Signed Message:\n9".to_vec();
    prefixed.extend_from_slice(b"Some data");
    let generic = h.sign("keys/web3", &prefixed).await.unwrap();
    assert_eq!(&generic.as_bytes()[..32], sig.r());
    assert_eq!(&generic.as_bytes()[32..64], sig.s());
    assert_eq!(generic.as_bytes()[64], 1);
    assert!(h.verify("keys/web3", &prefixed, &generic).await.unwrap());
    // a wrong recovery id does not verify
    let mut wrong = generic.as_bytes().to_vec();
    wrong[64] = 0;
    let wrong = Signature::new(1, wrong);
    assert!(!h.verify("keys/web3", &prefixed, &wrong).await.unwrap());
}

/// EIP-155's example: nonce 9, gas price 20 gwei, gas 21000, to 0x3535...,
/// value 1 ether, chain id 1, private key 0x4646...46.
#[tokio::test]
async fn eip155_transaction_vector() {
    let (_, _, p) = setup().await;
    let h = p.handle(&ALL_CAPS);
    p.keys
        .import_key(
            "keys/eip155",
            KeyType::Secp256k1,
            SecretBytes::new(vec![0x46; 32]),
        )
        .await
        .unwrap();
    let signing_data = unhex(
        "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080",
    );
    let hash = keccak256(&signing_data);
    assert_eq!(
        hex::encode(hash),
        "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
    );
    let sig = h
        .eth_sign_transaction_hash("keys/eip155", &hash, 1)
        .await
        .unwrap();
    assert_eq!(sig.v(), 37);
    // r = 18515461264373351373200002665853028612451056578545711640558177340181847433846
    assert_eq!(
        hex::encode(sig.r()),
        "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276"
    );
    // s = 46948507304638947509940763649030358759909902576025900602547168820602576006531
    assert_eq!(
        hex::encode(sig.s()),
        "67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    assert_eq!(sig.to_bytes().len(), 65);
    // v beyond one byte, and chain ids that cannot be encoded
    let big = h
        .eth_sign_transaction_hash("keys/eip155", &hash, 137)
        .await
        .unwrap();
    assert_eq!(big.v(), 137 * 2 + 35);
    assert_eq!(big.to_bytes().len(), 66);
    // the largest chain id whose v fits with either recovery id, and one more
    let largest = (u64::MAX - 36) / 2;
    assert_eq!(largest * 2 + 36, u64::MAX - 1);
    h.eth_sign_transaction_hash("keys/eip155", &hash, largest)
        .await
        .unwrap();
    for bad in [0, largest + 1, u64::MAX / 2, u64::MAX] {
        let err = h
            .eth_sign_transaction_hash("keys/eip155", &hash, bad)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "signing_invalid_chain_id", "{bad}");
    }
}
