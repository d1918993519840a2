"""Storage.open(location) and strongroom.open(...) by location (memory:,
sqlite:<path>, a plain path); PostgreSQL locations are in test_pg.py."""

import asyncio

import pytest
import strongroom


def test_locations_open_their_backend(tmp_path, key_file):
    assert strongroom.Storage.open("memory:").backend == "memory"
    s = strongroom.Storage.open(f"sqlite:{tmp_path / 'a.db'}")
    assert s.backend == "sqlite" and (tmp_path / "a.db").exists()
    s.close()
    s.close()  # idempotent
    p = strongroom.Storage.open(str(tmp_path / "b.db"))
    assert p.backend == "sqlite" and repr(p) == 'Storage("sqlite")'
    prot = strongroom.SoftwareProtector.from_key_file(key_file)
    sr = strongroom.blocking.Strongroom.init(p, prot)
    sr.put_secret("a/b", b"v")
    sr.close()
    with pytest.raises(strongroom.StorageError):
        p.is_initialized()  # closed with the store


def test_bad_locations_are_refused_without_echoing_them():
    for bad in ["", "sqlite:", "mysql://u:hunter2@h/db"]:
        with pytest.raises(strongroom.InvalidArgument) as e:
            strongroom.Storage.open(bad)
        assert "hunter2" not in str(e.value)


def test_open_takes_a_location(tmp_path, key_file):
    async def go():
        sr = await strongroom.open(f"sqlite:{tmp_path / 'c.db'}", key_file=key_file)
        await sr.put_secret("x/y", b"1")
        sr.close()
        sr = await strongroom.open(tmp_path / "c.db", key_file=key_file)
        assert (await sr.get_secret("x/y"))[1].reveal() == b"1"
        sr.close()
        mem = await strongroom.open("memory:", key_file=key_file)
        assert not mem.closed
        mem.close()

    asyncio.run(go())
    b = strongroom.blocking.open("memory:", key_file=key_file)
    b.close()
