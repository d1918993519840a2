"""close(), with / async with, and exiting the interpreter without closing."""

import asyncio
import concurrent.futures
import contextvars
import os
import pathlib
import subprocess
import sys
import threading
import warnings

import pytest
import strongroom

SCENARIO = pathlib.Path(__file__).with_name("exit_scenario.py")
# How many interpreter processes the exit test starts (and how many at once).
EXIT_RUNS = int(os.environ.get("STRONGROOM_PY_EXIT_RUNS", "200"))
EXIT_PARALLEL = int(os.environ.get("STRONGROOM_PY_EXIT_PARALLEL", "4"))


def open_fds(path):
    """Descriptors of this process open on `path` or its -wal/-shm files."""
    fd_dir = pathlib.Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    out = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            out.append(target)
    return out


def test_closed_is_a_strongroom_error():
    assert issubclass(strongroom.Closed, strongroom.StrongroomError)
    assert strongroom.Closed.code == "closed"


def test_close_then_calls_raise_closed_async(tmp_path, key_file):
    async def main():
        db = tmp_path / "s.db"
        sr = await strongroom.open(db, key_file=key_file)
        await sr.put_secret("app/a", b"x")
        leases = strongroom.LeaseManager(sr, strongroom.ManualClock(0))
        assert open_fds(db)
        assert not sr.closed
        sr.close()
        sr.close()  # idempotent
        assert sr.closed
        assert open_fds(db) == []  # the SQLite file is released
        with pytest.raises(strongroom.Closed) as e:
            await sr.get_secret("app/a")
        assert e.value.code == "closed"
        with pytest.raises(strongroom.Closed):
            sr.seal_value(b"x", "p", 1)
        with pytest.raises(strongroom.Closed):
            await leases.issue("db/creds/a", "db", 60)
        with pytest.raises(strongroom.Closed):
            strongroom.LeaseManager(sr, None)
        with pytest.raises(strongroom.Closed):
            sr.blocking().get_secret("app/a")
        # The file is whole and can be opened again.
        again = await strongroom.open(db, key_file=key_file)
        _, s = await again.get_secret("app/a")
        assert s.reveal() == b"x"
        again.close()

    asyncio.run(main())


def test_close_then_calls_raise_closed_blocking(tmp_path, key_file):
    db = tmp_path / "s.db"
    sr = strongroom.blocking.open(db, key_file=key_file)
    sr.put_secret("app/a", b"x")
    leases = strongroom.blocking.LeaseManager(sr, strongroom.ManualClock(0))
    sr.close()
    sr.close()
    assert open_fds(db) == []
    for call in (
        lambda: sr.get_secret("app/a"),
        lambda: sr.put_secret("app/a", b"y"),
        lambda: sr.keys(),
        lambda: sr.seal(),
        lambda: leases.issue("db/creds/a", "db", 60),
        lambda: leases.list(),
    ):
        with pytest.raises(strongroom.Closed):
            call()


def test_with_closes(tmp_path, key_file):
    with strongroom.blocking.open(tmp_path / "s.db", key_file=key_file) as sr:
        sr.put_secret("app/a", b"x")
        assert not sr.closed
    assert sr.closed
    assert open_fds(tmp_path / "s.db") == []
    with pytest.raises(strongroom.Closed):
        sr.get_secret("app/a")
    # An exception inside the block propagates, and the store is closed.
    with pytest.raises(KeyError):
        with strongroom.blocking.open(tmp_path / "s.db", key_file=key_file) as sr2:
            raise KeyError("boom")
    assert sr2.closed
    with pytest.raises(strongroom.Closed):
        with sr2:
            pass


def test_async_with_closes(tmp_path, key_file):
    async def main():
        async with await strongroom.open(tmp_path / "s.db", key_file=key_file) as sr:
            await sr.put_secret("app/a", b"x")
            assert isinstance(sr, strongroom.Strongroom)
        assert sr.closed
        assert open_fds(tmp_path / "s.db") == []
        with pytest.raises(strongroom.Closed):
            await sr.get_secret("app/a")
        # A plain `with` works on the async store too.
        with await strongroom.open(tmp_path / "s.db", key_file=key_file) as sr2:
            _, s = await sr2.get_secret("app/a")
            assert s.reveal() == b"x"
        assert sr2.closed

    asyncio.run(main())


def test_close_ends_subscriptions_and_pending_awaitables(key_file):
    async def main():
        protector = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), protector)
        leases = strongroom.LeaseManager(sr, strongroom.ManualClock(0))
        leases.register_revoker("db", lambda lease: None)
        events = leases.subscribe()
        blocking_events = leases.blocking().subscribe()
        seen = []

        async def consume():
            async for ev in events:
                seen.append(ev.kind)

        consumer = asyncio.create_task(consume())
        await leases.issue("db/creds/a", "db", 60)
        later = leases.subscribe()  # no event will come
        waiting = asyncio.ensure_future(later.__anext__())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        sr.close()
        await asyncio.wait_for(consumer, 5)  # the async for ends
        assert seen == ["issued"]
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()
        assert blocking_events.wait(5) is None  # returns at once: closed
        assert blocking_events.drain() == []

    asyncio.run(main())


def run_scenario(d):
    p = subprocess.run(
        [sys.executable, str(SCENARIO), str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stderr


@pytest.mark.skipif(EXIT_RUNS <= 0, reason="STRONGROOM_PY_EXIT_RUNS=0")
def test_interpreters_exit_cleanly_without_close(tmp_path):
    """EXIT_RUNS interpreters run the asyncio scenario and exit without
    closing anything; every one must exit with status 0 and no fatal error
    (before the fix: 4-11 aborts or segfaults in 40)."""
    dirs = []
    for i in range(EXIT_RUNS):
        d = tmp_path / f"run{i}"
        d.mkdir()
        dirs.append(d)
    with concurrent.futures.ThreadPoolExecutor(EXIT_PARALLEL) as pool:
        results = list(pool.map(run_scenario, dirs))
    bad = [
        (i, rc, err[-2000:])
        for i, (rc, err) in enumerate(results)
        if rc != 0 or "Fatal Python error" in err
    ]
    assert not bad, f"{len(bad)} of {EXIT_RUNS} runs exited abnormally; first: {bad[0]}"


def test_close_ends_an_awaitable_in_flight(key_file):
    async def main():
        protector = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), protector)
        leases = strongroom.LeaseManager(sr, strongroom.ManualClock(0))
        started, release = asyncio.Event(), asyncio.Event()

        async def slow_revoker(lease):
            started.set()
            await release.wait()

        leases.register_revoker("db", slow_revoker)
        lease = await leases.issue("db/creds/a", "db", 60)
        revoking = asyncio.ensure_future(leases.revoke(lease.id))
        await asyncio.wait_for(started.wait(), 5)
        sr.close()
        with pytest.raises(strongroom.Closed):
            await asyncio.wait_for(revoking, 5)
        release.set()

    asyncio.run(main())


def test_a_loop_closed_under_a_queued_async_revoker(key_file):
    """An async revoker whose coroutine is queued on a loop that closes
    before running it: the revoke fails like any revoker failure, with a
    reason that says so, nothing enters Python for it from the runtime
    afterwards (the coroutine is dropped, not run), and the lease can then
    be force-revoked from another loop."""
    protector = strongroom.SoftwareProtector.from_key_file(key_file)
    called = threading.Event()
    ran = []

    async def revoke_later(lease):
        ran.append(lease.id)

    def revoker(lease):
        called.set()
        return revoke_later(lease)

    async def start():
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), protector)
        leases = strongroom.LeaseManager(sr, strongroom.ManualClock(0), max_revoke_attempts=1)
        leases.register_revoker("db", revoker)
        events = leases.blocking().subscribe()
        lease = await leases.issue("db/creds/a", "db", 60)
        leases.revoke(lease.id)  # starts on the runtime; never awaited
        # The loop is blocked here, so it cannot run what the revoke queues.
        assert called.wait(10)
        return sr, leases, events, lease

    loop = asyncio.new_event_loop()
    try:
        sr, leases, events, lease = loop.run_until_complete(start())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # never awaited
            loop.close()

    # Whether the coroutine was queued before the close (and dropped with
    # the loop's queue) or after it (the loop refused it), the revoke fails.
    kinds = []
    while True:
        ev = events.wait(10)
        assert ev is not None, f"no irrevocable event; saw {kinds}"
        kinds.append(ev.kind)
        if ev.kind == "irrevocable":
            break
    assert ev.id == lease.id and ev.attempts == 1
    assert (
        "the event loop closed before the Python revoker's coroutine finished" in ev.reason
        or "RuntimeError: Event loop is closed" in ev.reason
    ), ev.reason
    assert ran == []

    async def force():
        return await leases.force_revoke(lease.id)

    assert asyncio.run(force()).state == "revoked"
    sr.close()


def test_an_async_revoker_runs_on_the_callers_loop_in_its_context(key_file):
    protector = strongroom.SoftwareProtector.from_key_file(key_file)
    who = contextvars.ContextVar("who")
    seen = []

    async def revoker(lease):
        seen.append((who.get(None), asyncio.get_running_loop()))

    async def main():
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), protector)
        leases = strongroom.LeaseManager(sr, strongroom.ManualClock(0))
        leases.register_revoker("db", revoker)
        lease = await leases.issue("db/creds/a", "db", 60)
        who.set("caller")
        revoked = await leases.revoke(lease.id)
        sr.close()
        return revoked, asyncio.get_running_loop()

    revoked, loop = asyncio.run(main())
    assert revoked.state == "revoked"
    assert seen == [("caller", loop)]
