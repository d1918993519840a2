"""S7 of bindings/SCENARIOS.md (leases on a manual clock), through the
asyncio and the blocking API, with sync and async Python revokers."""

import asyncio
import datetime
import inspect

import pytest
import strongroom

T0 = 1_700_000_000_000
FLAVORS = {"async": strongroom.LeaseManager, "blocking": strongroom.blocking.LeaseManager}


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(FLAVORS))
def cls(request):
    return FLAVORS[request.param]


@pytest.fixture(params=["sync", "async"])
def revoker_kind(request):
    return request.param


@pytest.fixture
def new_store(key_file):
    """Makes fresh unsealed stores: a lease manager seals its records under
    a store's keys, so it is built on a store, not on raw storage."""

    def make():
        protector = strongroom.SoftwareProtector.from_key_file(key_file)
        return strongroom.blocking.Strongroom.init(strongroom.Storage.memory(), protector)

    return make


def recorder(kind, seen, fail=False):
    """A revoker that records (id, revocation data) and maybe raises."""

    def sync_revoke(lease):
        assert isinstance(lease, strongroom.Lease)
        seen.append((lease.id, lease.revocation_data.reveal()))
        if fail:
            raise ConnectionError("database unreachable")

    async def async_revoke(lease):
        await asyncio.sleep(0)  # really runs on an event loop
        sync_revoke(lease)

    return sync_revoke if kind == "sync" else async_revoke


async def leases(cls, revoker_kind, store):
    clock = strongroom.ManualClock(T0)
    assert clock.now() == T0
    mgr = cls(store, clock)
    events = mgr.subscribe()
    revoked = []
    mgr.register_revoker("test", recorder(revoker_kind, revoked))

    lease = await m(mgr.issue("db/creds/app", "test", 60, max_ttl=300, renewable=True, data=b"role-1"))
    assert lease.id.startswith("lease_") and len(lease.id) == 38
    assert (lease.path, lease.engine, lease.state) == ("db/creds/app", "test", "active")
    assert lease.issued_at == T0 and lease.expires_at == T0 + 60_000
    assert lease.max_expires_at == T0 + 300_000 and lease.renewable
    data = lease.revocation_data
    assert isinstance(data, strongroom.Secret) and data.reveal() == b"role-1"
    assert "role-1" not in repr(data) and "role-1" not in repr(lease)

    clock.advance(50)
    renewed = await m(mgr.renew(lease.id, 120))
    assert renewed.expires_at == T0 + 170_000
    clock.advance(datetime.timedelta(seconds=100))
    assert clock.now() == T0 + 150_000
    capped = await m(mgr.renew(lease.id, 1000))
    assert capped.expires_at == T0 + 300_000  # capped at max TTL

    fixed = await m(mgr.issue("db/creds/app", "test", 60, max_ttl=60, renewable=False, data=b"role-2"))
    with pytest.raises(strongroom.LeaseNotRenewable) as e:
        await m(mgr.renew(fixed.id, 10))
    assert e.value.id == fixed.id and isinstance(e.value, strongroom.LeaseError)
    assert e.value.code == "lease.not_renewable"
    assert sorted(await m(mgr.list("db/creds"))) == sorted([lease.id, fixed.id])

    gone = await m(mgr.revoke(fixed.id))
    assert gone.state == "revoked" and gone.id == fixed.id
    assert revoked == [(fixed.id, b"role-2")]
    with pytest.raises(strongroom.LeaseNotFound) as e:
        await m(mgr.lookup(fixed.id))
    assert e.value.id == fixed.id

    assert (await m(mgr.run_due())).revoked == 0  # nothing due yet
    clock.advance(150.001)  # past T0 + 300 s
    report = await m(mgr.run_due())
    assert report.revoked == 1 and report.deferred == 0
    assert revoked[-1] == (lease.id, b"role-1")
    with pytest.raises(strongroom.LeaseNotFound):
        await m(mgr.lookup(lease.id))
    assert await m(mgr.list()) == []

    got = events.drain()
    seen = [(ev.kind, ev.id) for ev in got]
    assert ("issued", lease.id) in seen and ("renewed", lease.id) in seen
    assert ("revoked", lease.id) in seen and ("revoked", fixed.id) in seen
    assert [ev.capped for ev in got if ev.kind == "renewed"] == [False, True]
    assert events.drain() == []  # drained


def test_lease_lifecycle(cls, revoker_kind, new_store):
    asyncio.run(leases(cls, revoker_kind, new_store()))


async def failing_revoker(cls, revoker_kind, store):
    clock = strongroom.ManualClock(T0)
    mgr = cls(store, clock, max_revoke_attempts=3)
    calls = []
    mgr.register_revoker("flaky", recorder(revoker_kind, calls, fail=True))
    lease = await m(mgr.issue("db/creds/flaky", "flaky", 60))
    with pytest.raises(strongroom.LeaseRevocationDeferred) as e:
        await m(mgr.revoke(lease.id))
    err = e.value
    assert err.id == lease.id and err.attempts == 1 and err.next_try > T0
    assert "the Python revoker raised ConnectionError: database unreachable" in err.reason
    assert err.code == "lease.revocation_deferred"
    assert len(calls) == 1
    pending = await m(mgr.lookup(lease.id))
    assert pending.state == "revoking" and pending.attempts == 1
    forced = await m(mgr.force_revoke(lease.id))
    assert forced.state == "revoked"
    with pytest.raises(strongroom.LeaseNotFound):
        await m(mgr.lookup(lease.id))


def test_failing_revoker_then_force(cls, revoker_kind, new_store):
    asyncio.run(failing_revoker(cls, revoker_kind, new_store()))


async def prefix_and_quota(cls, new_store):
    clock = strongroom.ManualClock(T0)
    mgr = cls(new_store(), clock)
    revoked = []
    mgr.register_revoker("test", lambda lease: revoked.append(lease.id))
    a = await m(mgr.issue("db/creds/app", "test", 60))
    b = await m(mgr.issue("db/creds/app/ro", "test", 60))
    c = await m(mgr.issue("db/other", "test", 60))
    d = await m(mgr.issue("db/credsx", "test", 60))  # not under db/creds (whole segments)
    out = await m(mgr.revoke_prefix("db/creds"))
    assert sorted(out.revoked) == sorted([a.id, b.id]) and out.pending == []
    assert sorted(revoked) == sorted([a.id, b.id])
    assert sorted(await m(mgr.list())) == sorted([c.id, d.id])

    small = cls(new_store(), clock, max_leases=2)
    small.register_revoker("test", lambda lease: None)
    await m(small.issue("a/b", "test", 60))
    await m(small.issue("a/c", "test", 60))
    with pytest.raises(strongroom.LeaseQuotaExceeded) as e:
        await m(small.issue("a/d", "test", 60))
    assert (e.value.limit, e.value.count, e.value.prefix) == (2, 2, None)
    assert e.value.code == "lease.quota_exceeded" and isinstance(e.value.scope, str)
    with pytest.raises(strongroom.LeaseInvalidId) as e:
        await m(small.lookup("nope"))
    assert e.value.text == "nope"
    with pytest.raises(strongroom.LeaseNoRevoker) as e:
        await m(small.issue("a/e", "nobody", 60))
    assert e.value.engine == "nobody"
    with pytest.raises(strongroom.InvalidArgument):
        await m(small.issue("a/e", "test", -1))
    with pytest.raises(TypeError):
        small.register_revoker("test", "not callable")


def test_prefix_and_quota(cls, new_store):
    asyncio.run(prefix_and_quota(cls, new_store))


def test_events_async_iteration(key_file):
    async def go():
        clock = strongroom.ManualClock(T0)
        protector = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await strongroom.Strongroom.init(strongroom.Storage.memory(), protector)  # the async store
        mgr = strongroom.LeaseManager(sr, clock, expiring_soon_fraction=0.5)
        mgr.register_revoker("test", lambda lease: None)
        events = mgr.subscribe()
        lease = await mgr.issue("svc/token", "test", 60, max_ttl=100)
        await mgr.renew(lease.id, 1000)
        clock.advance(80)
        await mgr.run_due()  # expiring soon (half of the renewed TTL passed)
        clock.advance(30)
        await mgr.run_due()  # expired: revoked
        got = []
        async for ev in events:
            got.append(ev)
            if ev.kind == "revoked":
                break
        assert [e.kind for e in got] == ["issued", "renewed", "expiring_soon", "revoked"]
        assert got[1].capped and got[1].expires_at == T0 + 100_000
        assert all(e.id == lease.id and e.path == "svc/token" for e in got)
        assert not got[3].forced
        # nothing more: waiting times out instead of hanging
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(events.__anext__(), 0.05)

    asyncio.run(go())


def test_events_blocking_wait_and_iteration(new_store):
    clock = strongroom.ManualClock(T0)
    mgr = strongroom.blocking.LeaseManager(new_store(), clock)
    mgr.register_revoker("test", lambda lease: None)
    events = mgr.subscribe()
    assert events.wait(timeout=0.01) is None
    lease = mgr.issue("svc/token", "test", 60)
    ev = events.wait(timeout=5)
    assert (ev.kind, ev.id, ev.expires_at) == ("issued", lease.id, T0 + 60_000)
    mgr.revoke(lease.id)
    assert next(iter(events)).kind == "revoked"
    assert mgr.live_leases == 0
    other = mgr.issue("svc/other", "test", 60)
    del mgr  # the manager goes: buffered events are still read, then iteration stops
    import gc

    gc.collect()
    assert [(e.kind, e.id) for e in events] == [("issued", other.id)]
    assert events.wait() is None


def test_async_and_blocking_views_share_a_manager(new_store):
    clock = strongroom.ManualClock(T0)
    mgr = strongroom.LeaseManager(new_store(), clock)
    mgr.register_revoker("test", lambda lease: None)

    async def issue():
        return await mgr.issue("a/b", "test", 60)

    lease = asyncio.run(issue())
    view = mgr.blocking()
    assert view.lookup(lease.id).expires_at == T0 + 60_000
    assert mgr.live_leases == 1


def test_lease_manager_over_a_store(key_file):
    """A manager can share a store's clock; leases survive a new manager."""
    clock = strongroom.ManualClock(T0)
    sr = strongroom.blocking.Strongroom.init(
        strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key_file(key_file), clock
    )
    one = strongroom.blocking.LeaseManager(sr)  # the store's (manual) clock
    one.register_revoker("test", lambda lease: None)
    lease = one.issue("a/b", "test", 60, data=bytearray(b"x"))
    assert lease.issued_at == T0
    two = strongroom.blocking.LeaseManager(sr, clock)
    gone = []
    two.register_revoker("test", lambda lease: gone.append(lease.id))
    assert two.lookup(lease.id).revocation_data.reveal() == b"x"
    clock.advance(61)
    assert two.run_due().revoked == 1 and gone == [lease.id]
    with pytest.raises(TypeError, match="expected a Strongroom"):
        strongroom.blocking.LeaseManager("not a store", clock)
    for flavor in FLAVORS.values():  # raw storage: lease records are sealed under a store's keys
        with pytest.raises(TypeError, match="needs an unsealed store") as e:
            flavor(strongroom.Storage.memory(), clock)
        assert "sealed" in str(e.value).split(":", 1)[1]
    with pytest.raises(strongroom.InvalidArgument):
        strongroom.blocking.LeaseManager(sr, clock, expiring_soon_fraction=1.5)
