"""S3-S6 from bindings/SCENARIOS.md, through the asyncio and the blocking API."""

import asyncio
import inspect
import os

import pytest
import strongroom

FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


def run(flavor, scenario, *args):
    asyncio.run(scenario(FLAVORS[flavor], *args))


@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


async def lifecycle(cls, key_file):
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    prot = strongroom.SoftwareProtector.from_key_file(key_file)
    storage = strongroom.Storage.memory()
    assert not storage.is_initialized()
    sr = await m(cls.init(storage, prot))
    assert storage.is_initialized()
    sealed = await m(sr.seal_value(b"hunter2", "prod/app/db", 1))
    assert isinstance(sealed, bytes) and sealed[:2] == b"SR"
    assert strongroom.sealed_key_version(sealed) == 1
    assert (await m(sr.open_value(sealed, "prod/app/db", 1))).reveal() == b"hunter2"
    await m(sr.put_sealed("s/app/db", bytearray(b"pw-1"), "app/db", 1))
    assert (await m(sr.get_sealed("s/app/db", "app/db", 1))).reveal() == b"pw-1"
    assert await m(sr.get_sealed("s/missing", "missing", 1)) is None
    with pytest.raises(strongroom.AlreadyInitialized):
        await m(cls.init(storage, prot))
    sr.seal()
    assert sr.is_sealed
    with pytest.raises(strongroom.Sealed):
        await m(sr.open_value(sealed, "prod/app/db", 1))
    again = await m(cls.unseal(storage, strongroom.SoftwareProtector.from_key_file(key_file)))
    assert (await m(again.get_sealed("s/app/db", "app/db", 1))).reveal() == b"pw-1"
    assert (await m(again.open_value(sealed, "prod/app/db", 1))).reveal() == b"hunter2"
    with pytest.raises(strongroom.ProtectorError) as e:
        await m(cls.unseal(storage, strongroom.SoftwareProtector.from_key(os.urandom(32))))
    assert e.value.code == "protector.unwrap_failed"
    with pytest.raises(strongroom.NotInitialized):
        await m(cls.unseal(strongroom.Storage.memory(), prot))


def test_lifecycle(flavor, key_file):
    run(flavor, lifecycle, key_file)


async def rotate_rewrap(cls):
    sr = await m(cls.init(strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key(os.urandom(32))))
    for i in range(3):
        await m(sr.put_sealed(f"s/r{i}", f"value-{i}".encode(), f"r/{i}", 1))
    old = await m(sr.seal_value(b"old", "o", 1))
    info = await m(sr.rotate())
    assert info.version == 2 and info.state == "primary"
    assert {k.version: k.state for k in sr.keys()} == {1: "active", 2: "primary"}
    assert strongroom.sealed_key_version(await m(sr.seal_value(b"new", "n", 1))) == 2
    await m(sr.set_min_decryption_version(2))
    with pytest.raises(strongroom.KeyVersionRetired) as e:
        await m(sr.open_value(old, "o", 1))
    assert e.value.version == 1 and e.value.min_decryption_version == 2
    with pytest.raises(strongroom.KeyInUse) as e:
        await m(sr.destroy_key(1))
    assert e.value.records == 3
    await m(sr.set_min_decryption_version(1))
    report = await m(sr.rewrap(2))
    assert (report.scanned, report.rewrapped, report.unreadable) == (3, 3, [])
    assert (report.target_version, report.remaining) == (2, 0)
    await m(sr.set_min_decryption_version(2))
    await m(sr.destroy_key(1))
    for i in range(3):
        assert (await m(sr.get_sealed(f"s/r{i}", f"r/{i}", 1))).reveal() == f"value-{i}".encode()
    assert {k.version: k.state for k in sr.keys()} == {1: "destroyed", 2: "primary"}
    await m(sr.promote(2))


def test_rotate_rewrap(flavor):
    run(flavor, rotate_rewrap)


async def bad_input(cls, tmp_path):
    sr = await m(cls.init(strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key(os.urandom(32))))
    with pytest.raises(strongroom.MalformedSealedValue):
        await m(sr.open_value(b"not a sealed value at all, no no no no", "p", 1))
    sealed = bytearray(await m(sr.seal_value(b"x", "p", 1)))
    sealed[4:8] = (99).to_bytes(4, "big")
    with pytest.raises(strongroom.UnknownKeyVersion) as e:
        await m(sr.open_value(bytes(sealed), "p", 1))
    assert e.value.version == 99
    with pytest.raises(strongroom.InvalidArgument):
        await m(sr.put_sealed("outside/prefix", b"x", "p", 1))
    with pytest.raises(strongroom.InvalidArgument):
        strongroom.seal_with_key(os.urandom(31), "aes-256-gcm", 1, "p", 1, b"x")
    with pytest.raises(strongroom.InvalidArgument):
        strongroom.seal_with_key(os.urandom(32), "des", 1, "p", 1, b"x")
    kf = tmp_path / "loose.key"
    strongroom.SoftwareProtector.generate_key_file(kf)
    kf.chmod(0o644)
    with pytest.raises(strongroom.KeyFileError) as e:
        strongroom.SoftwareProtector.from_key_file(kf)
    assert "chmod 600" in str(e.value) and e.value.path == str(kf)
    with pytest.raises(strongroom.KeyFileError):
        strongroom.SoftwareProtector.generate_key_file(kf)  # refuses to overwrite


def test_bad_input(flavor, tmp_path):
    run(flavor, bad_input, tmp_path)


def test_hierarchy():
    for name in ["DecryptionFailed", "MalformedSealedValue", "UnknownKeyVersion", "KeyVersionRetired",
                 "InvalidPath", "Sealed", "AlreadyInitialized", "NotInitialized", "UnsealFailed",
                 "KeyFileError", "ProtectorError", "StorageError", "StorageConflict", "PolicyDenied",
                 "LeaseExpired", "SecretCasMismatch", "InvalidArgument", "KeyInUse", "LeaseNotFound",
                 "LeaseInvalidId", "LeaseNotRenewable", "LeaseNotActive", "LeaseQuotaExceeded",
                 "LeaseNoRevoker", "LeaseInvalidTtl", "LeaseInvalidEngine", "LeaseRevocationDeferred",
                 "LeaseIrrevocable", "LeaseRevokerFailed", "RotationInvalidName", "RotationBusy",
                 "RotationLostLock", "RotationStepFailed", "RotationRolledBack",
                 "RotationAlreadyInitialized", "RotationCorruptState", "RotationAuditRefused"]:
        cls = getattr(strongroom, name)
        assert issubclass(cls, strongroom.StrongroomError) and cls is not strongroom.StrongroomError
    assert issubclass(strongroom.PolicyDenied, strongroom.PolicyError)
    assert issubclass(strongroom.LeaseExpired, strongroom.LeaseError)
    for name in dir(strongroom):
        if name.startswith("Lease") and name.endswith(("Found", "Id", "Renewable", "Active", "Exceeded",
                                                        "Revoker", "Ttl", "Engine", "Deferred",
                                                        "Irrevocable", "Failed")):
            assert issubclass(getattr(strongroom, name), strongroom.LeaseError), name
        if name.startswith("Rotation") and name not in ("RotationError", "RotationReport", "RotationStatus"):
            assert issubclass(getattr(strongroom, name), strongroom.RotationError), name
    assert issubclass(strongroom.SecretCasMismatch, strongroom.SecretError)
    assert strongroom.CasConflict is strongroom.SecretCasMismatch  # old name


def test_secret_redacted_and_wiped():
    key = os.urandom(32)
    sealed = strongroom.seal_with_key(key, "aes-256-gcm", 1, "p", 1, b"correct horse")
    s = strongroom.open_sealed(key, "aes-256-gcm", "p", 1, sealed)
    assert repr(s) == "Secret([REDACTED; 13 bytes])" and str(s) == repr(s)
    assert "horse" not in repr(s) and "horse" not in f"{s}" and len(s) == 13
    buf = s.as_bytearray()
    assert buf == bytearray(b"correct horse")
    s.wipe()
    assert buf == bytearray(13)
    assert s.reveal() == bytes(13)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_secret_wiped_when_collected():
    s = strongroom.Secret(bytearray(b"transient"))
    buf = s.as_bytearray()
    del s
    import gc

    gc.collect()
    assert buf == bytearray(9)


def test_async_calls_overlap():
    async def go():
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(),
                                              strongroom.SoftwareProtector.from_key(os.urandom(32)))
        sealed = await asyncio.gather(*(sr.seal_value(b"v%d" % i, "p", i) for i in range(50)))
        opened = await asyncio.gather(*(sr.open_value(s, "p", i) for i, s in enumerate(sealed)))
        assert [o.reveal() for o in opened] == [b"v%d" % i for i in range(50)]
        return sr

    sr = asyncio.run(go())
    assert sr.blocking().open_value(sr.blocking().seal_value(b"z", "p", 1), "p", 1).reveal() == b"z"


def test_blocking_releases_gil():
    import threading
    import time

    sr = strongroom.blocking.Strongroom.init(strongroom.Storage.memory(),
                                             strongroom.SoftwareProtector.from_key(os.urandom(32)))
    big = os.urandom(32 << 20)
    spans, kept = [], []

    def work():
        t0 = time.perf_counter()
        sealed = sr.seal_value(big, "p", 1)
        kept.append(sr.open_value(sealed, "p", 1))  # wiped later, outside the timing
        spans.append(time.perf_counter() - t0)

    t = threading.Thread(target=work)
    last, max_gap = time.perf_counter(), 0.0
    t.start()
    while t.is_alive():
        now = time.perf_counter()
        max_gap, last = max(max_gap, now - last), now
    t.join()
    # Had the GIL been held during the native calls, this thread could not
    # have run for their whole duration.
    assert spans and max_gap < spans[0] / 2, (max_gap, spans)
    assert kept[0].reveal() == big


def test_sqlite_store_reopens(tmp_path, key_file):
    db = tmp_path / "store.db"

    async def first():
        sr = await strongroom.open(db, key_file=key_file)
        await sr.put_sealed("s/app/db", b"pw-sqlite", "app/db", 1)
        assert (await sr.rotate()).version == 2

    asyncio.run(first())
    sr = strongroom.blocking.open(db, key_file=key_file)  # a second, independent handle
    assert sr.get_sealed("s/app/db", "app/db", 1).reveal() == b"pw-sqlite"
    assert [k.version for k in sr.keys()] == [1, 2]
    with pytest.raises(strongroom.ProtectorError):
        strongroom.blocking.open(db, key=os.urandom(32))
    (tmp_path / "not-a-db").write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(strongroom.StorageError) as e:
        strongroom.Storage.sqlite(tmp_path / "not-a-db")
    assert e.value.backend == "sqlite" and e.value.code == "storage.corrupt"
    with pytest.raises(strongroom.InvalidArgument):
        strongroom.blocking.open(db)


def test_store_file_across_languages():
    """S2 for stores: write python-store.db, read the uniffi one if present."""
    from conftest import xlang_dir

    d = xlang_dir()
    for f in ("python-store.db", "python-store.db-wal", "python-store.db-shm", "python-store.key"):
        (d / f).unlink(missing_ok=True)
    strongroom.SoftwareProtector.generate_key_file(d / "python-store.key")
    sr = strongroom.blocking.open(d / "python-store.db", key_file=d / "python-store.key")
    sr.put_sealed("s/xlang", b"stored by python", "xlang", 1)
    del sr
    if (d / "uniffi-store.db").exists():
        other = strongroom.blocking.open(d / "uniffi-store.db", key_file=d / "uniffi-store.key")
        assert other.get_sealed("s/xlang", "xlang", 1).reveal() == b"stored by uniffi"
