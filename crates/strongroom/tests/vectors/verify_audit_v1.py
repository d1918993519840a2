"""Independent check of audit-v1.json: re-implements the audit record MAC
from the format description in crates/strongroom/src/audit.rs (standard
library only). Usage: python3 verify_audit_v1.py [audit-v1.json]"""
import hashlib
import hmac
import json
import struct
import sys


def hkdf(salt, ikm, info):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack(">Q", len(x)) + x


def opt(x):
    return b"\x00" if x is None else b"\x01" + s(x)


def canonical(r):
    e = r["event"]
    b = b"strongroom-audit\x00" + struct.pack(">IQQ", r["v"], r["seq"], r["time"])
    b += s(e["principal"]) + s(e["operation"]) + opt(e.get("path"))
    v = e.get("version")
    b += opt(None if v is None else struct.pack(">Q", v)) + opt(e.get("lease_id"))
    o = e["outcome"]
    b += {"allowed": b"\x01", "denied": b"\x02"}.get(o["result"]) or (b"\x03" + s(o["kind"]))
    b += s(e["request_id"])
    fields = e.get("fields", {})
    b += struct.pack(">Q", len(fields))
    for k in sorted(fields):
        b += s(k) + s(fields[k])
    return b + s(r["prev"])


def main(path):
    vec = json.load(open(path))
    key = bytes.fromhex(vec["audit_key_hex"])
    salt = b"strongroom audit v1"
    chain, value = hkdf(salt, key, b"chain mac"), hkdf(salt, key, b"value hmac")
    prev = "0" * 64
    for i, line in enumerate(vec["lines"], 1):
        r = json.loads(line)
        assert r["seq"] == i and r["prev"] == prev, f"chain broken at {i}"
        mac = hmac.new(chain, canonical(r), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, r["mac"]), f"bad mac at {i}"
        prev = r["mac"]
    assert vec["head"] == {"seq": len(vec["lines"]), "mac": prev}
    for v, h in vec["value_hmacs"].items():
        assert h == "hmac-sha256:" + hmac.new(value, v.encode(), hashlib.sha256).hexdigest()
    print(f"ok: {len(vec['lines'])} records")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "audit-v1.json")
