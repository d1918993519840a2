"""The exception classes against the core's error table (ERROR_CODES,
docs/ERRORS.md): every class exists with the table's base class, real
errors raise the table's class with its code and fields, and the type stub
lists the same classes and fields.

After the table changes, regenerate the stub's error block with
`STRONGROOM_BLESS=1 bash bindings/python/test.sh tests/test_errors.py`."""

import inspect
import os
import pathlib

import pytest
import strongroom
from strongroom import _native

ROOT_CLASS = "StrongroomError"
STUB = pathlib.Path(strongroom.__file__).with_name("__init__.pyi")
BEGIN = "# BEGIN error classes (generated from ERROR_CODES by tests/test_errors.py)\n"
END = "# END error classes\n"
ALIASES = {
    "SecretStoreError": "SecretError",
    "CasConflict": "SecretCasMismatch",
    "NotFound": "SecretNotFound",
    "VersionDeleted": "SecretVersionDeleted",
    "VersionDestroyed": "SecretVersionDestroyed",
}
PY_TYPES = {
    "string": (str,),
    "string?": (str, type(None)),
    "u64": (int,),
    "u64?": (int, type(None)),
    "timestamp": (int,),
    "list<string>": (list,),
    "list<bool>": (list,),
}
STUB_TYPES = {
    "string": "str",
    "string?": "Optional[str]",
    "u64": "int",
    "u64?": "Optional[int]",
    "timestamp": "int",
    "list<string>": "list[str]",
    "list<bool>": "list[bool]",
}


def rows_by_class():
    out = {}
    for row in strongroom.ERROR_CODES:
        out.setdefault(row["class"], []).append(row)
    return out


def test_table_is_exposed():
    rows = strongroom.ERROR_CODES
    assert isinstance(rows, tuple) and len(rows) > 50
    assert len({r["code"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"code", "class", "parent", "kind", "fields", "meaning"}
        for name, ty in r["fields"]:
            assert ty in PY_TYPES, (r["code"], name, ty)
            assert name not in ("code", "args", "message", "name"), r["code"]


def test_every_class_exists_with_its_parent():
    root = strongroom.StrongroomError
    for row in strongroom.ERROR_CODES:
        cls = getattr(strongroom, row["class"])
        parent = getattr(strongroom, row["parent"])
        assert cls.__bases__ == (parent,), row["code"]
        assert parent is root or parent.__bases__ == (root,), row["parent"]
        assert cls.__module__ == "strongroom" and cls.__name__ == row["class"]
        assert row["class"] in strongroom.__all__ and row["parent"] in strongroom.__all__
    for name, cls in vars(strongroom).items():
        if inspect.isclass(cls) and issubclass(cls, BaseException):
            assert issubclass(cls, root), name
    # The binding's own error, and the old names.
    assert strongroom.Closed.__bases__ == (root,) and strongroom.Closed.code == "closed"
    for old, new in ALIASES.items():
        assert getattr(strongroom, old) is getattr(strongroom, new), old
    # A class with one code carries it; shared classes do not.
    for cls_name, rows in rows_by_class().items():
        cls = getattr(strongroom, cls_name)
        if len(rows) == 1:
            assert cls.code == rows[0]["code"]
        else:
            assert "code" not in vars(cls)


def check(err, cls_name):
    """`err` is of the table's class `cls_name`, with a code of that class
    and exactly the code's fields, of the code's types."""
    assert type(err) is getattr(strongroom, cls_name), (type(err), cls_name)
    rows = {r["code"]: r for r in rows_by_class()[cls_name]}
    assert err.code in rows, err.code
    row = rows[err.code]
    table_fields = {name for name, _ in row["fields"]}
    for name, ty in row["fields"]:
        assert hasattr(err, name), (err.code, name)
        assert isinstance(getattr(err, name), PY_TYPES[ty]), (err.code, name, getattr(err, name))
    # No field of another code of the class leaks in.
    others = {n for r in rows.values() for n, _ in r["fields"]} - table_fields
    assert not [n for n in others if hasattr(err, n)]
    assert str(err) and err.args == (str(err),)
    return err


def new_store(key=bytes(range(32))):
    prot = strongroom.SoftwareProtector.from_key(key)
    return strongroom.blocking.Strongroom.init(strongroom.Storage.memory(), prot)


def test_real_errors_have_the_tables_class_code_and_fields():
    sr = new_store()
    other = new_store(bytes(range(1, 33)))

    sealed = sr.seal_value(b"pw", "prod/app/db", 1)
    with pytest.raises(strongroom.StrongroomError) as e:
        other.open_value(sealed, "prod/app/db", 1)
    check(e.value, "DecryptionFailed")
    assert e.value.code == "decryption_failed"

    with pytest.raises(strongroom.StrongroomError) as e:
        sr.get_secret("prod/app/none")
    err = check(e.value, "SecretNotFound")
    assert (err.code, err.path, err.version) == ("secret.not_found", "prod/app/none", None)
    assert isinstance(err, strongroom.SecretError) and isinstance(err, strongroom.NotFound)

    sr.put_secret("prod/app/db", b"pw-1", cas=0)
    with pytest.raises(strongroom.StrongroomError) as e:
        sr.put_secret("prod/app/db", b"pw-x", cas=0)
    err = check(e.value, "SecretCasMismatch")
    assert (err.code, err.path, err.expected, err.current) == ("secret.cas_mismatch", "prod/app/db", 0, 1)
    assert "pw-x" not in str(err)

    sr.put_secret("prod/app/db", b"pw-2")
    sr.delete_secret("prod/app/db", [1])
    with pytest.raises(strongroom.StrongroomError) as e:
        sr.get_secret("prod/app/db", 1)
    err = check(e.value, "SecretVersionDeleted")
    assert err.code == "secret.version_deleted" and err.version == 1 and err.deleted_at > 0

    with pytest.raises(strongroom.StrongroomError) as e:
        sr.get_secret("Prod/app")
    err = check(e.value, "InvalidPath")
    assert (err.code, err.path) == ("path.upper_case", "Prod/app")
    with pytest.raises(strongroom.InvalidPath) as e:
        sr.get_secret("prod/a$b")
    assert check(e.value, "InvalidPath").character == "$"
    assert e.value.code == "path.bad_character"

    storage = strongroom.Storage.memory()
    strongroom.blocking.Strongroom.init(storage, strongroom.SoftwareProtector.from_key(bytes(32)))
    with pytest.raises(strongroom.StrongroomError) as e:
        strongroom.blocking.Strongroom.unseal(storage, strongroom.SoftwareProtector.from_key(bytes([1] * 32)))
    err = check(e.value, "ProtectorError")
    assert (err.code, err.protector) == ("protector.unwrap_failed", "software")


def test_lease_errors():
    clock = strongroom.ManualClock(1_700_000_000_000)
    mgr = strongroom.blocking.LeaseManager(new_store(), clock)
    mgr.register_revoker("test", lambda lease: None)
    lease = mgr.issue("db/creds/app", "test", 60, max_ttl=300, renewable=True)

    with pytest.raises(strongroom.StrongroomError) as e:
        mgr.renew("lease_" + "0" * 32, 10)
    err = check(e.value, "LeaseNotFound")
    assert (err.code, err.id) == ("lease.not_found", "lease_" + "0" * 32)

    with pytest.raises(strongroom.StrongroomError) as e:
        mgr.lookup("nope")
    assert check(e.value, "LeaseInvalidId").text == "nope"

    clock.advance(61)
    with pytest.raises(strongroom.StrongroomError) as e:
        mgr.renew(lease.id, 10)
    err = check(e.value, "LeaseExpired")
    assert (err.code, err.id) == ("lease.expired", lease.id)
    assert err.expired_at == lease.expires_at
    assert isinstance(err, strongroom.LeaseError)


def test_closed_is_the_bindings_own():
    sr = new_store()
    sr.close()
    with pytest.raises(strongroom.Closed) as e:
        sr.get_secret("prod/x")
    assert e.value.code == "closed" and isinstance(e.value, strongroom.StrongroomError)


def render_stub():
    """The stub's error block, from the table."""
    out = [BEGIN, "\n"]
    by_class = rows_by_class()
    order = []
    for r in strongroom.ERROR_CODES:
        if r["parent"] != ROOT_CLASS and r["parent"] not in order:
            order.append(r["parent"])
    for r in strongroom.ERROR_CODES:
        if r["class"] not in order:
            order.append(r["class"])
    for name in order:
        rows = by_class.get(name, [])
        parent = rows[0]["parent"] if rows else ROOT_CLASS
        out.append(f"class {name}({parent}):\n")
        if not rows:
            out.append(f'    """{getattr(strongroom, name).__doc__}"""\n\n')
            continue
        if len(rows) == 1:
            out.append(f'    """{rows[0]["meaning"]} (code "{rows[0]["code"]}")."""\n')
        else:
            out.append('    """One class, several codes:\n\n')
            out.extend(f'    - "{r["code"]}": {r["meaning"]}\n' for r in rows)
            out.append('    """\n')
        fields = {}
        for r in rows:
            for fname, ty in r["fields"]:
                fields.setdefault(fname, (ty, []))[1].append(r["code"])
        if fields:
            out.append("\n")
        for fname, (ty, codes_with) in fields.items():
            out.append(f"    {fname}: {STUB_TYPES[ty]}\n")
            if len(codes_with) < len(rows):
                out.append(f'    """Only with code {", ".join(codes_with)}."""\n')
        out.append("\n")
    for old, new in ALIASES.items():
        out.append(f"{old} = {new}\n")
    out.append(END)
    return "".join(out)


def test_stub_lists_the_table():
    text = STUB.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    want = render_stub()
    if os.environ.get("STRONGROOM_BLESS") and text[start:end] != want:
        STUB.write_text(text[:start] + want + text[end:])
        text = STUB.read_text()
        start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == want, "run with STRONGROOM_BLESS=1 to regenerate the stub"
