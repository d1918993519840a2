"""Signing keys that never leave (strongroom::signing) through the uniffi FFI:
Handle.signing() -> SigningHandle, checked against the principal's policies
and audited."""

import asyncio
import os

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError

SIGNER = """
name = "signer"
[[path]]
pattern = "release/*"
capabilities = ["create", "read", "sign", "rotate", "update"]
"""
READER = """
name = "reader"
[[path]]
pattern = "release/*"
capabilities = ["read"]
"""
# Signature lengths: Ed25519 64 bytes, secp256k1 65 (r || s || recovery id);
# ECDSA P-256 is an ASN.1 DER SEQUENCE of 70 to 72 bytes.
RAW_LEN = {"ed25519": 32, "ecdsa_p256": 65, "secp256k1": 65}


def run(coro):
    return asyncio.run(coro)


async def setup(tmp_path):
    room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(os.urandom(32)))
    audit = await room.open_audit_log(str(tmp_path / "audit.jsonl"))
    signer = room.as_principal("ci", [sr.Policy.from_toml(SIGNER)], audit).signing()
    reader = room.as_principal("auditor", [sr.Policy.from_toml(READER)], audit).signing()
    return room, audit, signer, reader


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa_p256", "secp256k1"])
def test_sign_verify_round_trip(tmp_path, key_type):
    async def go():
        _, _, signer, reader = await setup(tmp_path)
        name = f"release/{key_type}"
        info = await signer.create_key(name, key_type)
        assert isinstance(info, sr.SigningKeyInfo)
        assert (info.name, info.key_type, info.latest_version, info.min_verify_version) == (name, key_type, 1, 1)
        assert [v.version for v in info.versions] == [1] and info.versions[0].created_ms > 0
        assert info.rate_limit is None

        msg = b"artifact bytes"
        sig = await signer.sign(name, msg)
        assert isinstance(sig, sr.Signature) and sig.version == 1
        assert sig.text.startswith("strongroom:v1:")
        if key_type == "ed25519":
            assert len(sig.bytes) == 64
        elif key_type == "secp256k1":
            assert len(sig.bytes) == 65 and sig.bytes[64] in (0, 1)
        else:
            assert sig.bytes[0] == 0x30 and 70 <= len(sig.bytes) <= 72
        assert sr.parse_signature(sig.text) == sig

        # The record and its text verify, for the signer and for a reader.
        assert await signer.verify(name, msg, sig) is True
        assert await signer.verify_text(name, msg, sig.text) is True
        assert await reader.verify(name, msg, sig) is True
        # A tampered message, or a flipped signature bit, does not.
        assert await signer.verify(name, b"artifact bytez", sig) is False
        assert await reader.verify_text(name, msg + b"!", sig.text) is False
        flipped = bytes([sig.bytes[0], sig.bytes[1] ^ 1]) + sig.bytes[2:]
        other = sr.Signature(version=1, bytes=flipped, text=sr.parse_signature(sig.text).text)
        with pytest.raises(E.SigningBadSignatureEncoding):
            await signer.verify(name, msg, other)  # text and bytes disagree
        import base64
        forged = f"strongroom:v1:{base64.b64encode(flipped).decode()}"
        assert await signer.verify_text(name, msg, forged) is False

        public = await reader.public_key(name)
        assert isinstance(public, sr.PublicKey)
        assert (public.key_type, public.version, len(public.raw)) == (key_type, 1, RAW_LEN[key_type])
        assert public.spki_der.endswith(public.raw) and public.spki_der[0] == 0x30
        assert public.spki_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
        assert public.spki_pem.endswith("-----END PUBLIC KEY-----\n")
        if key_type == "secp256k1":
            assert public.eth_address.startswith("0x") and len(public.eth_address) == 42
            assert await reader.eth_address(name) == public.eth_address
        else:
            assert public.eth_address is None
            with pytest.raises(E.SigningWrongKeyType):
                await reader.eth_address(name)
        assert await reader.public_key(name, 1) == public

    run(go())


def test_bad_signature_text_and_arguments(tmp_path):
    async def go():
        _, _, signer, _ = await setup(tmp_path)
        await signer.create_key("release/a", "ed25519")
        for text in ("", "strongroom:v0:AAAA", "strongroom:v1:not base64!", "strongroom:v1:"):
            with pytest.raises(E.SigningBadSignatureEncoding) as e:
                sr.parse_signature(text)
            assert e.value.code == "signing.bad_signature_encoding"
            with pytest.raises(E.SigningBadSignatureEncoding):
                await signer.verify_text("release/a", b"m", text)
        with pytest.raises(E.InvalidArgument) as e:
            await signer.create_key("release/b", "rsa")
        assert '"rsa"' in fields(e.value)["reason"]
        with pytest.raises(E.SigningKeyExists):
            await signer.create_key("release/a", "ecdsa_p256")
        with pytest.raises(E.SigningUnknownKey) as e:
            await signer.sign("release/none", b"m")
        assert fields(e.value) == {"key": "release/none"}
        with pytest.raises(E.SigningUnknownVersion):
            await signer.public_key("release/a", 2)
        with pytest.raises(E.SigningInvalidRateLimit):
            await signer.create_key("release/c", "ed25519", sr.RateLimit(per_second=0, burst=1))

    run(go())


def test_policy_denial_is_typed(tmp_path):
    async def go():
        room, audit, signer, reader = await setup(tmp_path)
        await signer.create_key("release/app", "ed25519")
        assert reader.principal() == "auditor" and repr(reader) == 'SigningHandle("auditor")'

        with pytest.raises(E.PolicyDenied) as e:
            await reader.sign("release/app", b"m")
        assert fields(e.value) == {"principal": "auditor", "capability": "sign", "path": "release/app"}
        assert e.value.code == "policy.denied"
        for call in (reader.create_key("release/x", "ed25519"), reader.rotate_key("release/app"),
                     reader.set_min_verify_version("release/app", 1), reader.set_rate_limit("release/app", None)):
            with pytest.raises(E.PolicyDenied):
                await call
        # Outside the policy's paths, nothing (default deny).
        with pytest.raises(E.PolicyDenied) as e:
            await signer.create_key("prod/app", "ed25519")
        assert fields(e.value)["capability"] == "create"

        # Signatures are audited with a keyed HMAC of the message, never the message.
        await signer.sign("release/app", b"the-secret-message")
        text = open(audit.path()).read()
        assert '"sign"' in text and "message_hmac" in text and "the-secret-message" not in text
        report = await sr.verify_audit_file(audit.path(), room)
        assert report.records > 0

    run(go())


def test_rotation_and_min_verify_version(tmp_path):
    async def go():
        _, _, signer, reader = await setup(tmp_path)
        name = "release/rotating"
        await signer.create_key(name, "ecdsa_p256")
        msg = b"release 1.0"
        sig1 = await signer.sign(name, msg)
        pub1 = await reader.public_key(name)

        info = await signer.rotate_key(name)
        assert (info.latest_version, info.min_verify_version) == (2, 1)
        assert [v.version for v in info.versions] == [1, 2]
        sig2 = await signer.sign(name, msg)
        assert sig2.version == 2 and sig2.text.startswith("strongroom:v2:")
        assert (await reader.public_key(name)).version == 2
        assert await reader.public_key(name, 1) == pub1 and pub1.raw != (await reader.public_key(name)).raw

        # The old signature verifies until the minimum verify version is raised.
        assert await reader.verify(name, msg, sig1) is True
        info = await signer.set_min_verify_version(name, 2)
        assert (info.latest_version, info.min_verify_version) == (2, 2)
        assert (await reader.key_info(name)).min_verify_version == 2
        with pytest.raises(E.SigningVersionRetired) as e:
            await reader.verify(name, msg, sig1)
        assert fields(e.value) == {"key": name, "version": 1, "min_verify_version": 2}
        assert e.value.code == "signing.version_retired"
        with pytest.raises(E.SigningVersionRetired):
            await reader.verify_text(name, msg, sig1.text)
        assert await reader.verify(name, msg, sig2) is True
        with pytest.raises(E.SigningInvalidMinVerifyVersion):
            await signer.set_min_verify_version(name, 3)

    run(go())


def test_ethereum_signatures(tmp_path):
    async def go():
        _, _, signer, _ = await setup(tmp_path)
        await signer.create_key("release/eth", "secp256k1")

        p = await signer.eth_sign_personal_message("release/eth", b"hello")
        assert isinstance(p, sr.EthSignature) and p.version == 1
        assert len(p.bytes) == 65 and p.v in (27, 28) and p.bytes[64] == p.v
        assert len(p.r) == 32 and len(p.s) == 32 and p.bytes == p.r + p.s + bytes([p.v])
        assert p.recovery_id == p.v - 27 and p.hex == "0x" + p.bytes.hex()
        # secp256k1 signatures are deterministic (RFC 6979).
        assert (await signer.eth_sign_personal_message("release/eth", b"hello")).bytes == p.bytes

        t = await signer.eth_sign_transaction_hash("release/eth", bytes(range(32)), 1)
        assert t.v in (37, 38) and t.recovery_id == t.v - 37 and len(t.bytes) == 65
        big = await signer.eth_sign_transaction_hash("release/eth", bytes(range(32)), 1_000_000)
        assert big.v in (2_000_035, 2_000_036) and len(big.bytes) == 64 + 3
        with pytest.raises(E.InvalidArgument):
            await signer.eth_sign_transaction_hash("release/eth", bytes(31), 1)

        await signer.create_key("release/ed", "ed25519")
        with pytest.raises(E.SigningWrongKeyType):
            await signer.eth_sign_personal_message("release/ed", b"hello")

    run(go())


def test_rate_limit_shared_by_the_stores_handles(tmp_path):
    async def go():
        room, audit, signer, _ = await setup(tmp_path)
        limit = sr.RateLimit(per_second=1, burst=1)
        info = await signer.create_key("release/limited", "ed25519", rate_limit=limit)
        assert info.rate_limit == limit
        await signer.sign("release/limited", b"1")
        # Another principal's handle of the same store uses the same engine,
        # so the same bucket.
        other = room.as_principal("ci-2", [sr.Policy.from_toml(SIGNER)], audit).signing()
        with pytest.raises(E.SigningRateLimited) as e:
            await other.sign("release/limited", b"2")
        assert fields(e.value)["key"] == "release/limited"
        info = await signer.set_rate_limit("release/limited", None)
        assert info.rate_limit is None
        await other.sign("release/limited", b"3")

    run(go())
