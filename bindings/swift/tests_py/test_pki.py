"""The internal CA (strongroom-pki) through the uniffi FFI: Pki(store,
lease_manager, mount), every call acting for a principal's Handle."""

import asyncio
import os

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError
HOUR = 3_600_000

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


def run(coro):
    return asyncio.run(coro)


async def setup(tmp_path, name="audit.jsonl"):
    room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(os.urandom(32)))
    audit = await room.open_audit_log(str(tmp_path / name))
    manager = sr.LeaseManager(room)
    pki = sr.Pki(room, manager, "internal")
    ops = room.as_principal("ops", [sr.Policy.from_toml(OPS)], audit)
    app = room.as_principal("app", [sr.Policy.from_toml(APP)], audit)
    return room, manager, pki, ops, app


def test_root_role_issue_revoke_crl(tmp_path):
    async def go():
        _, manager, pki, ops, app = await setup(tmp_path)
        assert (pki.mount(), pki.engine(), repr(pki)) == ("internal", "pki-internal", 'Pki("internal")')

        ca = await pki.create_root(ops, "Internal Root", key_type="ecdsa-p256")
        assert isinstance(ca, sr.CaCertificate)
        assert (ca.mount, ca.kind, ca.key_type, ca.common_name) == ("internal", "root", "ecdsa-p256", "Internal Root")
        assert ca.certificate[0] == 0x30 and b"Internal Root" in ca.certificate
        assert ca.certificate_pem.startswith("-----BEGIN CERTIFICATE-----\n")
        assert ca.parents == [] and ca.chain_pem == ca.certificate_pem
        assert ca.not_after_ms > ca.not_before_ms
        assert await pki.ca(ops) == ca
        with pytest.raises(E.PkiCaExists) as e:
            await pki.create_root(ops, "Second Root")
        assert e.value.code == "pki.ca_exists"
        assert fields(e.value) == {"mount": "internal"}

        await pki.put_role(ops, "web", sr.PkiRole(allowed_names=["*.svc.example.com"], ttl_ms=HOUR,
                                                  max_ttl_ms=24 * HOUR))
        cert = await pki.issue(app, "web", sr.IssueRequest(dns_names=["api.svc.example.com"],
                                                           key_type="ecdsa-p256"))
        assert isinstance(cert, sr.IssuedCertificate)
        assert cert.key_type() == "ecdsa-p256" and cert.not_after_ms() - cert.not_before_ms() == HOUR
        assert b"api.svc.example.com" in cert.certificate()
        assert cert.ca_chain() == [ca.certificate]
        assert cert.certificate_pem().startswith("-----BEGIN CERTIFICATE-----\n")
        assert cert.chain_pem() == cert.certificate_pem() + ca.certificate_pem
        assert cert.lease_id() in await manager.list("pki/internal")
        lease = await manager.lookup(cert.lease_id())
        assert lease.engine == "pki-internal" and lease.path == "pki/internal/issue/web" and not lease.renewable

        # The leaf's private key: PKCS#8 DER bytes in a Secret, never in a description.
        key = cert.private_key()
        der = key.reveal()
        assert der[0] == 0x30 and len(der) > 32
        for text in (repr(cert), str(cert)):
            assert "[REDACTED]" in text and der.hex() not in text and cert.serial() in text
        assert repr(key) == f"Secret([REDACTED; {len(der)} bytes])"
        key.wipe()
        assert cert.private_key().reveal() == der  # the certificate's copy is untouched

        # A name outside the role is refused (its pki.* case, from the table).
        with pytest.raises(E.PkiNameNotAllowed) as e:
            await pki.issue(app, "web", sr.IssueRequest(dns_names=["db.example.com"]))
        assert e.value.code == "pki.name_not_allowed"
        f = fields(e.value)
        assert (f["role"], f["requested_name"]) == ("web", "db.example.com")
        assert e.value.message.startswith('name "db.example.com" is not allowed by role "web": ')
        assert e.value.message.endswith(f["reason"])
        with pytest.raises(E.PkiTtlOverMax) as e:
            await pki.issue(app, "web", sr.IssueRequest(dns_names=["a.svc.example.com"], ttl_ms=48 * HOUR))
        assert e.value.code == "pki.ttl_over_max"
        assert fields(e.value) == {"role": "web", "requested_secs": 48 * 3600, "max_secs": 24 * 3600}

        crl0 = await pki.crl(ops)
        assert isinstance(crl0, sr.Crl) and crl0.serials == [] and crl0.der[0] == 0x30
        assert crl0.pem.startswith("-----BEGIN X509 CRL-----\n") and crl0.next_update_ms > crl0.this_update_ms

        # Revoke, then the serial is on the CRL (and in its DER).
        assert await pki.revoke(ops, cert.serial()) == cert.lease_id()
        assert cert.lease_id() not in await manager.list("pki/internal")
        crl = await pki.crl(ops)
        assert crl.serials == [cert.serial()] and crl.number > crl0.number
        assert bytes.fromhex(cert.serial()) in crl.der and bytes.fromhex(cert.serial()) not in crl0.der
        with pytest.raises(E.PkiUnknownCertificate) as e:
            await pki.revoke(ops, cert.serial())
        assert e.value.code == "pki.unknown_certificate"
        assert fields(e.value)["serial"] == cert.serial()
        with pytest.raises(E.PkiInvalidRequest) as e:
            await pki.revoke(ops, "not-hex")
        assert e.value.code == "pki.invalid_request"

        # A lease revoked through the lease manager is on the next CRL too.
        cert2 = await pki.issue(app, "web", sr.IssueRequest(dns_names=["b.svc.example.com"]))
        assert cert2.key_type() == "ed25519"  # the role's first key type
        await manager.revoke(cert2.lease_id())
        crl2 = await pki.crl(ops)
        assert cert2.serial() in crl2.serials and bytes.fromhex(cert2.serial()) in crl2.der

    run(go())


def test_policy_and_arguments(tmp_path):
    async def go():
        _, _, pki, ops, app = await setup(tmp_path)
        with pytest.raises(E.PolicyDenied) as e:
            await pki.create_root(app, "Root")
        assert fields(e.value) == {"principal": "app", "capability": "sudo", "path": "pki/internal/ca"}
        ca = await pki.create_root(ops, "Root")
        assert ca.key_type == "ed25519"  # the default
        with pytest.raises(E.PolicyDenied):
            await pki.put_role(app, "web", sr.PkiRole(allowed_names=["*.example.com"]))
        with pytest.raises(E.PolicyDenied):
            await pki.ca(app)
        with pytest.raises(E.PolicyDenied):
            await pki.crl(app)
        with pytest.raises(E.PkiUnknownRole) as e:
            await pki.issue(app, "web", sr.IssueRequest(dns_names=["a.example.com"]))
        assert e.value.code == "pki.unknown_role"
        assert fields(e.value) == {"mount": "internal", "role": "web"}
        with pytest.raises(E.InvalidArgument) as e:
            await pki.create_root(ops, "Root", key_type="rsa")
        assert "unknown certificate key type" in e.value.message
        with pytest.raises(E.InvalidArgument) as e:
            await pki.put_role(ops, "web", sr.PkiRole(allowed_names=["*.example.com"], usages=["email"]))
        assert "unknown usage" in e.value.message
        with pytest.raises(E.InvalidArgument) as e:
            await pki.issue(ops, "web", sr.IssueRequest(dns_names=["a.example.com"], ip_addresses=["nope"]))
        assert "is not an IP address" in e.value.message
        room2, *_ = await setup(tmp_path, "b.jsonl")
        with pytest.raises(E.PkiInvalidName) as e:
            sr.Pki(room2, sr.LeaseManager(room2), "Bad Mount")
        assert e.value.code == "pki.invalid_name"
        assert fields(e.value) == {"what": "mount", "given_name": "Bad Mount"}

    run(go())


def test_another_stores_objects_are_refused(tmp_path):
    async def go():
        room, manager, pki, ops, _ = await setup(tmp_path, "a.jsonl")
        room2, manager2, _, ops2, _ = await setup(tmp_path, "b.jsonl")
        with pytest.raises(E.InvalidArgument) as e:
            sr.Pki(room, manager2, "other")
        assert "another store" in e.value.message
        with pytest.raises(E.InvalidArgument) as e:
            await pki.create_root(ops2, "Root")
        assert "another store" in e.value.message
        await pki.create_root(ops, "Root")

        # A sealed store refuses PKI calls with Sealed.
        room.seal()
        with pytest.raises(E.Sealed):
            await pki.ca(ops)

    run(go())
