#!/usr/bin/env python3
"""Writes starting inputs for the fuzz targets into fuzz/corpus/<target>/.

Standard library only. The corpora are not committed (see .gitignore); run
this once before `cargo fuzz run`, from anywhere:

    python3 fuzz/seeds.py

Each seed is a small well-formed record in the layout docs/FORMAT.md (or the
decoder) describes, so that the fuzzer starts from inputs that decode
instead of having to discover JSON keys or postcard framing by itself.
"""

import base64
import hashlib
import json
import os
import sqlite3
import struct
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAC = "a81efcf6c5da729e8340ca75ea2e733786924bcbbfba6ecccda289021694b060"


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ----- postcard -----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def popt(v):
    return b"\x00" if v is None else b"\x01" + v


def pbool(v):
    return b"\x01" if v else b"\x00"


# ----- policies and paths -----

POLICY = """name = "payment-svc"
description = "what the payment service may touch"

[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["read", "list"]

[[path]]
pattern = "prod/payment-svc/admin/*"
capabilities = ["deny"]

[[path]]
pattern = "prod/+/db"
capabilities = ["read", "update", "rotate"]

[[path]]
pattern = "prod/payment-svc/postgres"
capabilities = ["lease", "sudo", "create", "delete"]
"""
OTHER = """name = "ops"
[[path]]
pattern = "sys/keyring"
capabilities = ["sudo", "read"]
[[path]]
pattern = "sys/+/*"
capabilities = ["deny"]
[[path]]
pattern = "prod/*"
capabilities = ["read"]
[[path]]
pattern = "+/app*"
capabilities = ["list"]
"""
PATHS = "prod/payment-svc/postgres\nprod/payment-svc/admin\nprod/payment-svc/admin/x\nprod/app/db\nstaging/apple\n"
put("policy_toml", "one", POLICY + "\0" + PATHS)
put("policy_toml", "two", POLICY + "\x01" + OTHER + "\0" + PATHS)
for i, p in enumerate(["prod/payment-svc/postgres", "a", "a/b.c/d-e_f", "sys/x", "prod//x",
                       "prod/../x", "Prod/x", "x" * 512, "/".join(["a"] * 33)]):
    put("secret_path", str(i), p)

# ----- audit -----

with open(os.path.join(ROOT, "crates/strongroom/tests/vectors/audit-v1.json")) as f:
    vec = json.load(f)
for i, line in enumerate(vec["lines"]):
    put("audit_line", str(i), line)
put("audit_line", "all", "\n".join(vec["lines"]) + "\n")
put("audit_head", "record", json.dumps({"format": 1, "seq": 3, "mac": MAC}, separators=(",", ":")))
put("audit_head", "text", "3:" + MAC)
put("audit_head", "json", json.dumps({"seq": 3, "mac": MAC}, separators=(",", ":")))
put("audit_chain", "zeros", bytes(64))
put("audit_chain", "ramp", bytes(range(200)))

# ----- secrets metadata -----

meta = {
    "format": 1, "current_version": 3, "max_versions": 5, "created_at": 1000,
    "updated_at": 3000, "last_rotated_at": 2500, "owner": "payments",
    "environment": "prod", "tags": ["pci", "db"], "custom": {"team": "core"},
    "rotation_interval_secs": 86400,
    "versions": {"1": {"created_at": 1000, "deleted_at": 1500},
                 "2": {"created_at": 2000, "destroyed_at": 2600},
                 "3": {"created_at": 3000}},
}
put("metadata_record", "full", json.dumps(meta, separators=(",", ":")))
put("metadata_record", "min", json.dumps({"format": 1, "current_version": 1, "created_at": 1,
                                           "updated_at": 1, "versions": {"1": {"created_at": 1}}}))

# ----- leases -----

def lease_fields(state):
    return (varint(0xFF) + pstr("prod/app/db") + pstr("postgres") + varint(1000)
            + varint(60000) + varint(3600000) + varint(61000) + varint(55000)
            + pbool(False) + pbool(True) + state + pstr(b"\x01revocation"))


ACTIVE = varint(0)
REVOKING = varint(1) + varint(3) + varint(99000)
REVOKED = varint(2)
IRREVOCABLE = varint(3) + varint(9)
put("lease_record", "v1", b"\x01" + lease_fields(ACTIVE))
put("lease_record", "v2", b"\x02" + lease_fields(REVOKING) + popt(None))
put("lease_record", "v2-claim", b"\x02" + lease_fields(IRREVOCABLE)
    + popt(pstr("member-a") + varint(70000) + pbool(True)))
put("lease_record", "v2-revoked", b"\x02" + lease_fields(REVOKED) + popt(None))
put("lease_record", "id", "lease_000000000000000000000000000000ff")

window = b"\x01" + struct.pack(">Q", 5) + struct.pack(">Q", 1 << 40)
entries = b"".join(struct.pack(">Q", t) + (i).to_bytes(16, "big") for t, i in
                   [(10, 1), (20, 16), (20, 16), (1 << 41, 3), (7, 2 ** 128 - 1)])
put("lease_segment", "entries", window + b"\x01" + entries)
put("lease_segment", "empty", window + b"\x01")

# ----- rotation -----

state = {
    "format": 1, "next_version": 4, "current": 3, "pending": None, "previous": 2,
    "revoke_after": 9000, "last_promoted": 5000,
    "op": {"step": "revoke_previous", "version": 2, "cause": None},
    "lock": {"owner": "engine-1", "expires": 6000},
    "history": [{"version": 2, "identity": "app_v2", "created": 1000, "promoted": 2000,
                 "superseded": 5000, "revoked": None, "failed": None},
                {"version": 3, "identity": "app_v3", "created": 4000, "promoted": 5000,
                 "superseded": None, "revoked": None, "failed": None}],
}
put("rotation_state", "full", json.dumps(state, separators=(",", ":")))
state2 = dict(state, op={"step": "roll_back", "version": 4, "cause": "test_pending"}, lock=None)
put("rotation_state", "rollback", json.dumps(state2, separators=(",", ":")))
put("rotation_credential", "one", b"\x01" + struct.pack(">H", 6) + b"app_v3" + b"s3cr3t-password")
put("rotation_credential", "empty", b"\x01\x00\x00")

# ----- root key, key file, shamir, pkcs11 -----

put("root_key_record", "software", b"\x01\x08software" + bytes(range(60)))
put("root_key_record", "empty-kind", b"\x01\x00" + bytes(10))
put("key_file", "good", base64.b64encode(bytes(range(32))).decode() + "\n")
put("key_file", "short", base64.b64encode(bytes(31)).decode())

with open(os.path.join(ROOT, "docs/vectors/shamir-v1.json")) as f:
    sh = json.load(f)
for i, v in enumerate(sh["vectors"]):
    put("shamir_share", "text-%d" % i, b"\x00" + "\n".join(v["share_texts"]).encode())
    binary = b""
    for t in v["share_texts"]:
        raw = base64.urlsafe_b64decode(t[5:] + "=" * (-len(t[5:]) % 4))[:-4]
        binary += bytes([len(raw) - 11]) + raw
    put("shamir_share", "binary-%d" % i, b"\x01" + binary)
put("shamir_share", "split", b"\x02\x03\x05" + b"launch code")

blob = b"\x01\x01" + struct.pack(">I", 7) + b"\x04root" + bytes([0xAA]) * 60
put("pkcs11_blob", "gcm", blob)
put("pkcs11_blob", "kwp", b"\x01\x02" + struct.pack(">I", 1) + b"\x00" + bytes(40))

# ----- dynamic credentials -----

plan_drop = pstr("v_readonly_0123456789abcdef") + pstr("readonly") + varint(2) \
    + pstr("REVOKE ALL ON DATABASE app FROM x") + pstr("DROP ROLE x") + varint(0)
plan_reassign = pstr("v_rw_0123456789abcdef") + pstr("rw") + varint(0) + varint(1) + pstr("owner")
put("role_plan", "v1-drop", b"\x01" + plan_drop)
put("role_plan", "v1-reassign", b"\x01" + plan_reassign)
put("role_plan", "intent-v1", b"\x01" + varint(1795320399123) + pstr("pgdyn/creds/readonly") + plan_drop)
role_ref = pstr("v_readonly_0123456789abcdef") + pstr("readonly") + bytes(range(32))
put("role_plan", "role-ref", role_ref)
put("role_plan", "v2", b"\x02" + role_ref + bytes(32))

# ----- SQLite -----

with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "s.db")
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE strongroom_kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
    c.execute("INSERT INTO strongroom_kv VALUES (x'01', x'02')")
    c.commit()
    c.close()
    with open(p, "rb") as f:
        db = f.read()
put("sqlite_header", "db", b"\x00" + db)
put("sqlite_header", "db-wal", b"\x01" + db)
put("sqlite_header", "truncated", b"\x00" + db[: len(db) // 2])
put("sqlite_header", "header", b"\x00" + db[:100])

print("seeds written under", os.path.join(HERE, "corpus"))
