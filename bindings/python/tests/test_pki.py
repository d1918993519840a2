"""The internal CA (strongroom-pki) through Pki(store, lease_manager,
mount), every call acting for a principal's Handle, with the asyncio and
the blocking API."""

import asyncio
import base64
import inspect

import pytest
import strongroom

STORES = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}
PKIS = {"async": strongroom.Pki, "blocking": strongroom.blocking.Pki}
MANAGERS = {"async": strongroom.LeaseManager, "blocking": strongroom.blocking.LeaseManager}

OPS = """
name = "pki-ops"
[[path]]
pattern = "pki/internal/*"
capabilities = ["sudo", "read", "lease"]
"""
APP = """
name = "app"
[[path]]
pattern = "pki/internal/issue/web"
capabilities = ["lease"]
"""
# DER of the algorithm identifiers' OIDs.
OID_ED25519 = bytes.fromhex("06032b6570")
OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
OID_P256 = bytes.fromhex("06082a8648ce3d030107")


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(STORES))
def flavor(request):
    return request.param


async def setup(flavor, tmp_path):
    clock = strongroom.ManualClock(1_800_000_000_000)
    prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
    sr = await m(STORES[flavor].init(strongroom.Storage.memory(), prot, clock))
    audit = await m(sr.open_audit_log(str(tmp_path / "audit.jsonl")))
    manager = MANAGERS[flavor](sr)
    pki = PKIS[flavor](sr, manager, "internal")
    ops = sr.as_principal("ops", [strongroom.Policy.from_toml(OPS)], audit)
    app = sr.as_principal("app", [strongroom.Policy.from_toml(APP)], audit)
    return sr, manager, pki, ops, app


def der_tlv(data, at=0):
    """(tag, body, end) of the DER element at `at`."""
    tag, n = data[at], data[at + 1]
    at += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[at:at + k], "big")
        at += k
    return tag, data[at:at + n], at + n


def pem_body(text, label):
    lines = text.splitlines()
    assert lines[0] == f"-----BEGIN {label}-----" and lines[-1] == f"-----END {label}-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    return base64.b64decode("".join(lines[1:-1]))


def check_pkcs8(key, key_type):
    """`key` is one PKCS#8 PrivateKeyInfo (RFC 5958) of `key_type`."""
    tag, body, end = der_tlv(key)
    assert tag == 0x30 and end == len(key), "one DER SEQUENCE, nothing after it"
    tag, version, at = der_tlv(body)
    assert tag == 0x02 and version in (b"\x00", b"\x01")
    tag, algorithm, at = der_tlv(body, at)
    assert tag == 0x30
    if key_type == "ed25519":
        assert algorithm == OID_ED25519
    else:
        assert algorithm == OID_EC_PUBLIC_KEY + OID_P256
    tag, private, _ = der_tlv(body, at)
    assert tag == 0x04 and private  # OCTET STRING privateKey


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256"])
def test_root_role_issue_revoke_crl(flavor, tmp_path, key_type):
    async def go():
        _, manager, pki, ops, app = await setup(flavor, tmp_path)
        assert pki.mount == "internal" and repr(pki) == 'Pki("internal")'

        ca = await m(pki.create_root(ops, "Internal Root", key_type=key_type))
        assert isinstance(ca, strongroom.CaCertificate)
        assert (ca.mount, ca.kind, ca.key_type, ca.common_name) == ("internal", "root", key_type, "Internal Root")
        assert ca.parents == [] and ca.not_after_ms > ca.not_before_ms
        assert der_tlv(ca.certificate)[0] == 0x30
        assert pem_body(ca.pem(), "CERTIFICATE") == ca.certificate
        assert (await m(pki.ca(ops))).certificate == ca.certificate

        await m(pki.put_role(ops, "web", ["*.svc.example.com"], key_types=[key_type], ttl=3600, max_ttl=86_400))

        cert = await m(pki.issue(app, "web", ["api.svc.example.com"]))
        assert isinstance(cert, strongroom.IssuedCertificate)
        assert cert.key_type == key_type
        assert cert.not_after_ms - cert.not_before_ms == 3600 * 1000
        assert cert.ca_chain == [ca.certificate]
        assert pem_body(cert.certificate_pem(), "CERTIFICATE") == cert.certificate
        assert cert.chain_pem() == cert.certificate_pem() + ca.pem()
        assert b"api.svc.example.com" in cert.certificate
        # The leaf key: PKCS#8 DER bytes, never in repr.
        key = cert.private_key
        assert isinstance(key, bytes)
        check_pkcs8(key, key_type)
        assert "REDACTED" in repr(cert) and key.hex() not in repr(cert) and str(list(key[:8])) not in repr(cert)
        # The certificate is a lease of the manager.
        assert cert.lease_id in await m(manager.list("pki/internal"))

        # Revoke, then the serial is on the CRL.
        crl0 = await m(pki.crl(ops))
        assert cert.serial not in crl0.serials
        assert await m(pki.revoke(ops, cert.serial)) == cert.lease_id
        crl = await m(pki.crl(ops))
        assert isinstance(crl, strongroom.Crl)
        assert crl.serials == [cert.serial] and crl.number > crl0.number
        assert bytes.fromhex(cert.serial) in crl.der
        assert bytes.fromhex(cert.serial) not in crl0.der
        assert crl.next_update_ms > crl.this_update_ms
        assert pem_body(crl.pem(), "X509 CRL") == crl.der
        # Revoked: no longer live.
        with pytest.raises(strongroom.PkiUnknownCertificate) as e:
            await m(pki.revoke(ops, cert.serial))
        assert e.value.code == "pki.unknown_certificate"
        assert e.value.serial == cert.serial

    asyncio.run(go())


def test_refusals(flavor, tmp_path):
    async def go():
        sr, manager, pki, ops, app = await setup(flavor, tmp_path)
        with pytest.raises(strongroom.PkiError) as e:
            await m(pki.issue(app, "web", ["api.svc.example.com"]))
        assert e.value.code in ("pki.unknown_ca", "pki.unknown_role")

        await m(pki.create_root(ops, "Internal Root"))
        with pytest.raises(strongroom.PkiCaExists) as e:
            await m(pki.create_root(ops, "Another Root"))
        assert e.value.code == "pki.ca_exists"
        await m(pki.put_role(ops, "web", ["*.svc.example.com"]))

        # A name outside the role.
        with pytest.raises(strongroom.PkiNameNotAllowed) as e:
            await m(pki.issue(app, "web", ["db.example.com"]))
        err = e.value
        assert err.code == "pki.name_not_allowed" and "db.example.com" in str(err)
        assert (err.role, err.requested_name) == ("web", "db.example.com")
        assert isinstance(err, strongroom.PkiError)
        assert isinstance(err, strongroom.StrongroomError)
        # Over the role's max TTL.
        with pytest.raises(strongroom.PkiTtlOverMax) as e:
            await m(pki.issue(app, "web", ["a.svc.example.com"], ttl=10 * 86_400))
        assert e.value.code == "pki.ttl_over_max"
        assert e.value.requested_secs == 10 * 86_400 and e.value.max_secs < 10 * 86_400
        # Policy refusals come through the core's classes.
        with pytest.raises(strongroom.PolicyDenied):
            await m(pki.put_role(app, "evil", ["*.example.com"]))
        # Bad arguments.
        with pytest.raises(strongroom.InvalidArgument):
            await m(pki.issue(app, "web", ["a.svc.example.com"], key_type="rsa"))
        with pytest.raises(strongroom.InvalidArgument):
            await m(pki.issue(app, "web", ["a.svc.example.com"], ip_addresses=["not-an-ip"]))
        with pytest.raises(TypeError):
            await m(pki.issue(manager, "web", ["a.svc.example.com"]))
        with pytest.raises(strongroom.PkiInvalidName) as e:
            PKIS[flavor](sr, manager, "Bad Mount")
        assert e.value.code == "pki.invalid_name"
        assert (e.value.what, e.value.given_name) == ("mount", "Bad Mount")

    asyncio.run(go())


def test_pki_errors_come_from_the_table():
    # PkiError is the table's family class of the pki.* codes, so
    # `except strongroom.PkiError` catches every CA error of its own.
    assert strongroom.PkiError.__bases__ == (strongroom.StrongroomError,)
    assert "PkiError" in strongroom.__all__
    rows = [r for r in strongroom.ERROR_CODES if r["code"].startswith("pki.")]
    assert len(rows) == 16
    for r in rows:
        assert r["parent"] == "PkiError"
        cls = getattr(strongroom, r["class"])
        assert cls.__bases__ == (strongroom.PkiError,)
        assert cls.code == r["code"]


def test_closing_the_store_closes_the_pki(tmp_path):
    async def go():
        sr, _, pki, ops, _ = await setup("blocking", tmp_path)
        pki.create_root(ops, "Internal Root")
        sr.close()
        with pytest.raises(strongroom.Closed):
            pki.ca(ops)

    asyncio.run(go())
