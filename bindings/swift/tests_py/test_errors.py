"""The error table through the FFI: StrongroomError's subclasses are exactly
the table's classes (error_codes(), docs/ERRORS.md), and real failures arrive
as the table's class with its code and exactly its fields."""

import asyncio
import os

import pytest
import strongroom_ffi as sr
from conftest import ROOT

E = sr.StrongroomError
TABLE = {row.code: row for row in sr.error_codes()}
BINDING_ONLY = {"Other"}

# FieldValue variant(s) each table type may arrive as.
TYPES = {
    "string": ("STR",),
    "string?": ("STR", "NULL"),
    "u64": ("U64",),
    "u64?": ("U64", "NULL"),
    "timestamp": ("TIME",),
    "list<string>": ("STR_LIST",),
    "list<bool>": ("BOOL_LIST",),
}


def run(coro):
    return asyncio.run(coro)


def cases():
    return {name for name, v in vars(E).items()
            if isinstance(v, type) and issubclass(v, E) and v is not E}


def test_cases_are_the_tables_classes():
    classes = {row.class_name for row in TABLE.values()}
    assert not classes & BINDING_ONLY
    assert cases() == classes | BINDING_ONLY


def test_table_rows_and_doc():
    doc = (ROOT / "docs/ERRORS.md").read_text()
    assert len(TABLE) == len(sr.error_codes())  # codes are unique
    for code, row in TABLE.items():
        assert f"`{code}`" in doc, code
        assert row.parent == "StrongroomError" or row.parent.endswith("Error")
        names = [f.name for f in row.fields]
        assert len(set(names)) == len(names), code
        assert not {"code", "message", "fields"} & set(names), code
        for f in row.fields:
            assert f.type_name in TYPES, (code, f.type_name)


def check(err, code):
    """err is the table's class for code, with exactly the code's fields,
    each of the table's type."""
    row = TABLE[code]
    assert err.code == code
    assert type(err).__name__ == row.class_name and isinstance(err, getattr(E, row.class_name))
    assert isinstance(err, E) and err.message
    assert set(err.fields) == {f.name for f in row.fields}, code
    for f in row.fields:
        v = err.fields[f.name]
        assert any(getattr(v, f"is_{t}")() for t in TYPES[f.type_name]), (code, f.name, v)
    return err


def test_real_errors_carry_the_tables_class_code_and_fields():
    async def go():
        key = os.urandom(32)
        room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(key))

        # Wrong key: a value sealed under another key, and unseal with a wrong root key.
        sealed = sr.seal_with_key(os.urandom(32), "aes-256-gcm", 1, "p", 1, b"x")
        with pytest.raises(E) as e:
            sr.open_sealed(key, "aes-256-gcm", "p", 1, sealed)
        check(e.value, "decryption_failed")
        storage = sr.Storage.memory()
        await sr.Strongroom.create(storage, sr.SoftwareProtector.from_key(key))
        with pytest.raises(E) as e:
            await sr.Strongroom.unseal(storage, sr.SoftwareProtector.from_key(os.urandom(32)))
        check(e.value, "protector.unwrap_failed")

        # Not-found secret (version: null), and a missing version of one.
        with pytest.raises(E) as e:
            await room.get_secret("prod/app/none")
        err = check(e.value, "secret.not_found")
        assert err.fields["path"].value == "prod/app/none" and err.fields["version"].is_NULL()
        await room.put_secret("prod/app/db", b"pw-1", 0)
        with pytest.raises(E) as e:
            await room.get_secret("prod/app/db", 9)
        assert check(e.value, "secret.not_found").fields["version"].value == 9

        # CAS mismatch.
        with pytest.raises(E) as e:
            await room.put_secret("prod/app/db", b"pw-x", cas=0)
        err = check(e.value, "secret.cas_mismatch")
        assert (err.fields["expected"].value, err.fields["current"].value) == (0, 1)

        # Invalid paths: one class, the reason in the code.
        with pytest.raises(E) as e:
            await room.put_secret("Prod/x", b"v")
        assert check(e.value, "path.upper_case").fields["path"].value == "Prod/x"
        with pytest.raises(E) as e:
            await room.put_secret("prod//x", b"v")
        check(e.value, "path.empty_segment")

        # Destroyed and deleted versions: timestamps.
        await room.put_secret("prod/app/db", b"pw-2", 1)
        await room.delete_secret("prod/app/db", [1])
        await room.destroy_secret("prod/app/db", [2])
        with pytest.raises(E) as e:
            await room.get_secret("prod/app/db", 1)
        assert check(e.value, "secret.version_deleted").fields["deleted_at"].ms > 0
        with pytest.raises(E) as e:
            await room.get_secret("prod/app/db", 2)
        assert check(e.value, "secret.version_destroyed").fields["destroyed_at"].ms > 0

        # Lease not found, and an invalid lease id.
        mgr = sr.LeaseManager(room, sr.Clock.manual(1_700_000_000_000), None)
        with pytest.raises(E) as e:
            await mgr.lookup("lease_000000000000000000000000000000ff")
        err = check(e.value, "lease.not_found")
        assert err.fields["id"].value == "lease_000000000000000000000000000000ff"
        with pytest.raises(E) as e:
            await mgr.lookup("nope")
        check(e.value, "lease.invalid_id")

        # A binding-side argument check raises the same table class.
        with pytest.raises(E) as e:
            sr.Clock.system().advance_ms(1)
        check(e.value, "invalid_argument")

    run(go())
