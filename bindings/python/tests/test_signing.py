"""Signing keys that never leave (strongroom::signing), as a principal
through handle.signing(), with the asyncio and the blocking API."""

import asyncio
import base64
import inspect
import re

import pytest
import strongroom

STORES = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}
KEY_TYPES = ["ed25519", "ecdsa_p256", "secp256k1"]
# secp256k1's group order: signatures must have s <= n/2.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

OWNER = """
name = "signer"
[[path]]
pattern = "release/*"
capabilities = ["create", "sign", "read", "rotate", "update"]
"""
# May read and verify, never sign.
VERIFIER = """
name = "verifier"
[[path]]
pattern = "release/*"
capabilities = ["read"]
"""


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(STORES))
def flavor(request):
    return request.param


async def setup(flavor, tmp_path, clock=None):
    prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
    sr = await m(STORES[flavor].init(strongroom.Storage.memory(), prot, clock))
    audit = await m(sr.open_audit_log(str(tmp_path / "audit.jsonl")))
    owner = sr.as_principal("ci", [strongroom.Policy.from_toml(OWNER)], audit).signing()
    verifier = sr.as_principal("auditor", [strongroom.Policy.from_toml(VERIFIER)], audit).signing()
    return sr, owner, verifier


def test_classes_match_the_flavor():
    assert strongroom.blocking.SigningHandle is strongroom._native.BlockingSigningHandle
    assert strongroom.SigningHandle is not strongroom.blocking.SigningHandle


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_sign_verify_round_trip(flavor, tmp_path, key_type):
    async def go():
        _, s, verifier = await setup(flavor, tmp_path)
        assert isinstance(s, strongroom.SigningHandle if flavor == "async" else strongroom.blocking.SigningHandle)
        assert s.principal == "ci"
        info = await m(s.create_key("release/k", key_type))
        assert isinstance(info, strongroom.SigningKeyInfo)
        assert (info.name, info.key_type, info.latest_version, info.min_verify_version) == ("release/k", key_type, 1, 1)
        assert [v for v, _ in info.versions] == [1] and info.rate_limit is None

        sig = await m(s.sign("release/k", b"artifact bytes"))
        assert isinstance(sig, strongroom.Signature) and sig.version == 1
        text = sig.to_text()
        assert str(sig) == text and re.fullmatch(r"strongroom:v1:[A-Za-z0-9+/]+=*", text)
        assert base64.b64decode(text.split(":", 2)[2]) == sig.data
        if key_type == "ed25519":
            assert len(sig.data) == 64
        elif key_type == "ecdsa_p256":
            assert sig.data[0] == 0x30  # ASN.1 DER SEQUENCE
        else:
            assert len(sig.data) == 65 and sig.data[64] in (0, 1)

        # A Signature, its text form and a parsed text form all verify.
        assert await m(s.verify("release/k", b"artifact bytes", sig)) is True
        assert await m(verifier.verify("release/k", b"artifact bytes", text)) is True
        parsed = strongroom.Signature.from_text(text)
        assert parsed == sig and parsed == strongroom.Signature(1, sig.data)
        # Tampered message, tampered signature: False, not an error.
        assert await m(s.verify("release/k", b"artifact bytez", sig)) is False
        bad = bytearray(sig.data)
        bad[-1 if key_type != "secp256k1" else 10] ^= 1
        assert await m(s.verify("release/k", b"artifact bytes", strongroom.Signature(1, bytes(bad)))) is False

        pub = await m(s.public_key("release/k"))
        assert isinstance(pub, strongroom.PublicKey) and (pub.key_type, pub.version) == (key_type, 1)
        assert len(pub.raw) == (32 if key_type == "ed25519" else 65)
        assert pub.spki_der().endswith(pub.raw)
        pem = pub.spki_pem()
        assert pem.startswith("-----BEGIN PUBLIC KEY-----\n") and pem.endswith("-----END PUBLIC KEY-----\n")
        body = "".join(pem.splitlines()[1:-1])
        assert base64.b64decode(body) == pub.spki_der()
        assert (pub.eth_address is not None) == (key_type == "secp256k1")

    asyncio.run(go())


def test_policy_denial_raises_the_typed_error(flavor, tmp_path):
    async def go():
        _, s, verifier = await setup(flavor, tmp_path)
        await m(s.create_key("release/k", "ed25519"))
        with pytest.raises(strongroom.PolicyDenied) as e:
            await m(verifier.sign("release/k", b"msg"))
        assert e.value.code == "policy.denied"
        with pytest.raises(strongroom.PolicyDenied):
            await m(verifier.create_key("release/other", "ed25519"))
        # Outside the policy's paths altogether.
        with pytest.raises(strongroom.PolicyDenied):
            await m(s.create_key("staging/k", "ed25519"))

    asyncio.run(go())


def test_rotation_and_retirement(flavor, tmp_path):
    async def go():
        _, s, _ = await setup(flavor, tmp_path)
        await m(s.create_key("release/k", "ecdsa_p256"))
        old = await m(s.sign("release/k", b"v1 message"))
        info = await m(s.rotate_key("release/k"))
        assert (info.latest_version, info.min_verify_version) == (2, 1)
        new = await m(s.sign("release/k", b"v2 message"))
        assert (old.version, new.version) == (1, 2)
        # The old version still verifies until the minimum is raised.
        assert await m(s.verify("release/k", b"v1 message", old)) is True
        assert await m(s.verify("release/k", b"v2 message", new)) is True
        assert (await m(s.public_key("release/k", 1))).version == 1

        info = await m(s.set_min_verify_version("release/k", 2))
        assert info.min_verify_version == 2
        with pytest.raises(strongroom.SigningVersionRetired) as e:
            await m(s.verify("release/k", b"v1 message", old))
        err = e.value
        assert isinstance(err, strongroom.SigningError)
        assert (err.code, err.key, err.version, err.min_verify_version) == ("signing.version_retired", "release/k", 1, 2)
        assert await m(s.verify("release/k", b"v2 message", new)) is True
        # The minimum only goes up.
        with pytest.raises(strongroom.SigningInvalidMinVerifyVersion):
            await m(s.set_min_verify_version("release/k", 1))

    asyncio.run(go())


def test_typed_signing_errors(flavor, tmp_path):
    async def go():
        _, s, _ = await setup(flavor, tmp_path)
        with pytest.raises(strongroom.SigningUnknownKey) as e:
            await m(s.sign("release/none", b"x"))
        assert e.value.key == "release/none"
        await m(s.create_key("release/k", "ed25519"))
        with pytest.raises(strongroom.SigningKeyExists):
            await m(s.create_key("release/k", "ed25519"))
        with pytest.raises(strongroom.SigningWrongKeyType) as e:
            await m(s.eth_sign_personal_message("release/k", b"x"))
        assert (e.value.key_type, e.value.needed) == ("ed25519", "secp256k1")
        with pytest.raises(strongroom.SigningBadSignatureEncoding):
            strongroom.Signature.from_text("strongroom:vX:abc")
        with pytest.raises(strongroom.SigningBadSignatureEncoding):
            await m(s.verify("release/k", b"x", "not a signature"))
        with pytest.raises(strongroom.InvalidArgument):
            await m(s.create_key("release/j", "rsa"))
        with pytest.raises(strongroom.SigningInvalidRateLimit):
            strongroom.RateLimit(0, 1)

    asyncio.run(go())


def test_rate_limit_uses_the_stores_clock(flavor, tmp_path):
    async def go():
        clock = strongroom.ManualClock(1_800_000_000_000)
        _, s, _ = await setup(flavor, tmp_path, clock)
        info = await m(s.create_key("release/k", "ed25519", strongroom.RateLimit(1, 2)))
        assert info.rate_limit == strongroom.RateLimit(per_second=1, burst=2)
        await m(s.sign("release/k", b"1"))
        await m(s.sign("release/k", b"2"))
        with pytest.raises(strongroom.SigningRateLimited) as e:
            await m(s.sign("release/k", b"3"))
        assert e.value.key == "release/k" and e.value.retry_after_ms > 0
        clock.advance(1)
        await m(s.sign("release/k", b"3"))
        info = await m(s.set_rate_limit("release/k", None))
        assert info.rate_limit is None
        for i in range(5):
            await m(s.sign("release/k", bytes([i])))

    asyncio.run(go())


def test_ethereum_signatures(flavor, tmp_path):
    # The known web3.js vector cannot be checked: keys are created inside,
    # so no known private key can be used. The signature's shape and the
    # address are checked instead.
    async def go():
        _, s, _ = await setup(flavor, tmp_path)
        await m(s.create_key("release/eth", "secp256k1"))
        address = await m(s.eth_address("release/eth"))
        assert re.fullmatch(r"0x[0-9a-fA-F]{40}", address)
        assert (await m(s.public_key("release/eth"))).eth_address == address

        sig = await m(s.eth_sign_personal_message("release/eth", b"Some data"))
        assert isinstance(sig, strongroom.EthSignature) and sig.version == 1
        raw = sig.to_bytes()
        assert len(raw) == 65 and sig.v in (27, 28) and raw[64] == sig.v
        assert sig.recovery_id == sig.v - 27
        assert raw[:32] == sig.r and raw[32:64] == sig.s
        assert 0 < int.from_bytes(sig.s, "big") <= SECP256K1_N // 2  # low s
        assert sig.to_hex() == "0x" + raw.hex()

        tx = await m(s.eth_sign_transaction_hash("release/eth", bytes(range(32)), 1))
        assert tx.v in (37, 38) and tx.recovery_id == tx.v - 37
        with pytest.raises(strongroom.InvalidArgument):
            await m(s.eth_sign_transaction_hash("release/eth", b"short", 1))
        with pytest.raises(strongroom.SigningInvalidChainId):
            await m(s.eth_sign_transaction_hash("release/eth", bytes(32), 0))

    asyncio.run(go())


def test_key_material_never_shows(tmp_path):
    async def go():
        _, s, _ = await setup("blocking", tmp_path)
        info = s.create_key("release/k", "ed25519")
        assert "release/k" in repr(info)
        assert repr(s) == 'SigningHandle("ci")'
        # Nothing on the handle hands out a private key.
        assert not [n for n in dir(s) if "private" in n or "export" in n]

    asyncio.run(go())


def test_closing_the_store_closes_the_signing_handle(tmp_path):
    async def go():
        sr, s, _ = await setup("blocking", tmp_path)
        s.create_key("release/k", "ed25519")
        sr.close()
        with pytest.raises(strongroom.Closed):
            s.sign("release/k", b"x")

    asyncio.run(go())
