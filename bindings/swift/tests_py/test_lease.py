"""S7 of bindings/SCENARIOS.md through the uniffi FFI: leases on a manual
clock, with revokers written in Python (a uniffi foreign trait)."""

import asyncio

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError
T0 = 1_700_000_000_000
S = 1000  # ms


class Recorder(sr.LeaseRevoker):
    """Records what it revokes."""

    def __init__(self):
        self.revoked = []

    async def revoke(self, lease, revocation_data):
        await asyncio.sleep(0)  # a real await inside the callback
        self.revoked.append((lease.id, lease.path, revocation_data))


class Failing(sr.LeaseRevoker):
    """Fails the way a revoker should: with RevokerError.Failed."""

    def __init__(self):
        self.calls = 0

    async def revoke(self, lease, revocation_data):
        self.calls += 1
        raise sr.RevokerError.Failed("target refused: role is busy")


class Crashing(sr.LeaseRevoker):
    """Fails with an exception uniffi does not know."""

    async def revoke(self, lease, revocation_data):
        raise ValueError("boom from python")


async def new_store(tmp_path, storage=None):
    """A store initialised with a software key file: a lease manager seals its
    records under a store's keys, so it is built on a store, not on storage."""
    kf = tmp_path / "root.key"
    if not kf.exists():
        sr.generate_key_file(str(kf))
    return await sr.Strongroom.create(storage or sr.Storage.memory(), sr.SoftwareProtector.from_key_file(str(kf)))


def run(coro):
    # The revokers' coroutines run on this loop: the manager calls them
    # while Python polls the Rust future (no uniffi_set_event_loop needed).
    return asyncio.run(coro)


def test_issue_renew_revoke_expire(tmp_path):
    async def go():
        clock = sr.Clock.manual(T0)
        assert clock.now_ms() == T0
        mgr = sr.LeaseManager(await new_store(tmp_path), clock, None)
        rec = Recorder()
        mgr.register_revoker("test", rec)

        lease = await mgr.issue("db/creds/app", "test", 60 * S, 300 * S, True, b"role-1")
        assert lease.id.startswith("lease_") and len(lease.id) == 6 + 32
        assert lease.expires_ms == T0 + 60 * S and lease.max_expires_ms == T0 + 300 * S
        assert (lease.path, lease.engine, lease.renewable, lease.state) == ("db/creds/app", "test", True, "active")
        assert "role-1" not in repr(lease)

        clock.advance_ms(50 * S)
        assert (await mgr.renew(lease.id, 120 * S)).expires_ms == T0 + 170 * S
        clock.advance_ms(100 * S)
        assert (await mgr.renew(lease.id, 1000 * S)).expires_ms == T0 + 300 * S  # capped at max TTL
        assert (await mgr.lookup(lease.id)).expires_ms == T0 + 300 * S

        other = await mgr.issue("db/creds/app", "test", 60 * S, 60 * S, False, b"role-2")
        with pytest.raises(E.LeaseNotRenewable) as e:
            await mgr.renew(other.id, 10 * S)
        assert fields(e.value) == {"id": other.id} and e.value.code == "lease.not_renewable"
        assert sorted(await mgr.list("db/creds")) == sorted([lease.id, other.id])

        revoked = await mgr.revoke(other.id)
        assert revoked.id == other.id and revoked.state == "revoked"
        assert rec.revoked == [(other.id, "db/creds/app", b"role-2")]
        with pytest.raises(E.LeaseNotFound) as e:
            await mgr.lookup(other.id)
        assert fields(e.value) == {"id": other.id} and e.value.code == "lease.not_found"

        assert (await mgr.run_due()).revoked == 0  # T0 + 150 s: nothing due yet
        clock.advance_ms(151 * S)  # past T0 + 300 s
        report = await mgr.run_due()
        assert report.revoked == 1 and report.deferred == 0
        assert rec.revoked[-1] == (lease.id, "db/creds/app", b"role-1")
        with pytest.raises(E.LeaseNotFound):
            await mgr.lookup(lease.id)

        events = mgr.take_events()
        assert any(ev.is_issued() and ev.id == lease.id and ev.expires_ms == T0 + 60 * S for ev in events)
        renewed = [ev for ev in events if ev.is_renewed()]
        assert [ev.capped for ev in renewed] == [False, True]
        assert {ev.id for ev in events if ev.is_revoked()} == {lease.id, other.id}
        assert mgr.take_events() == []  # drained

        with pytest.raises(E.LeaseInvalidId) as e:
            await mgr.lookup("nope")
        assert fields(e.value) == {"text": "nope"} and e.value.code == "lease.invalid_id"

    run(go())


def test_failing_revoker_defers_then_force_revoke(tmp_path):
    async def go():
        clock = sr.Clock.manual(T0)
        mgr = sr.LeaseManager(await new_store(tmp_path), clock)
        failing, crashing = Failing(), Crashing()
        mgr.register_revoker("flaky", failing)
        mgr.register_revoker("crashy", crashing)

        lease = await mgr.issue("db/creds/flaky", "flaky", 60 * S, 300 * S, True, b"r")
        with pytest.raises(E.LeaseRevocationDeferred) as e:
            await mgr.revoke(lease.id)
        err = e.value
        assert fields(err)["id"] == lease.id and fields(err)["attempts"] == 1 and fields(err)["next_try"] > T0
        assert "target refused: role is busy" in fields(err)["reason"] and err.code == "lease.revocation_deferred"
        assert failing.calls == 1
        assert (await mgr.lookup(lease.id)).state.startswith("being revoked")

        # A renewal of a lease being revoked is refused.
        with pytest.raises(E.LeaseNotActive):
            await mgr.renew(lease.id, 10 * S)

        forced = await mgr.force_revoke(lease.id)
        assert forced.id == lease.id
        with pytest.raises(E.LeaseNotFound):
            await mgr.lookup(lease.id)
        assert any(ev.is_revoked() and ev.forced for ev in mgr.take_events())

        # Any other exception from Python also defers (never crashes the manager).
        crash = await mgr.issue("db/creds/crashy", "crashy", 60 * S, 300 * S, True)
        with pytest.raises(E.LeaseRevocationDeferred) as e:
            await mgr.revoke(crash.id)
        assert "boom from python" in fields(e.value)["reason"]

        # No revoker registered for the engine: refused at issue.
        with pytest.raises(E.LeaseNoRevoker) as e:
            await mgr.issue("db/creds/none", "none", 60 * S, 300 * S, True)
        assert e.value.code == "lease.no_revoker" and "engine" in e.value.fields

    run(go())


def test_revoke_prefix_and_quota(tmp_path):
    async def go():
        clock = sr.Clock.manual(T0)
        mgr = sr.LeaseManager(await new_store(tmp_path), clock, sr.LeaseOptions(max_leases=2))
        rec = Recorder()
        mgr.register_revoker("test", rec)
        a = await mgr.issue("db/creds/a", "test", 60 * S, 300 * S, True)
        b = await mgr.issue("db/creds/b", "test", 60 * S, 300 * S, True)
        with pytest.raises(E.LeaseQuotaExceeded) as e:
            await mgr.issue("db/creds/c", "test", 60 * S, 300 * S, True)
        assert (fields(e.value)["limit"], fields(e.value)["count"]) == (2, 2) and e.value.code == "lease.quota_exceeded"

        r = await mgr.revoke_prefix("db/creds")
        assert sorted(r.revoked) == sorted([a.id, b.id]) and r.pending == []
        assert sorted(x[0] for x in rec.revoked) == sorted([a.id, b.id])
        assert await mgr.list("") == []
        # Room again under the quota.
        await mgr.issue("db/creds/c", "test", 60 * S, 300 * S, True)

        with pytest.raises(E.LeaseInvalidEngine) as e:
            await mgr.issue("db/creds/d", "Bad Engine", 60 * S, 300 * S, True)
        assert e.value.code == "lease.invalid_engine"
        with pytest.raises(E.InvalidArgument):
            sr.Clock.system().advance_ms(1)

    run(go())


def test_manager_needs_a_store(tmp_path):
    async def go():
        clock = sr.Clock.manual(T0)
        storage = sr.Storage.memory()
        with pytest.raises(TypeError):  # raw storage: lease records are sealed under a store's keys
            sr.LeaseManager(storage, clock)
        one = sr.LeaseManager(await new_store(tmp_path, storage), clock)
        one.register_revoker("test", Recorder())
        lease = await one.issue("db/creds/app", "test", 60 * S, 300 * S, True, b"role-1")
        # Another manager over the store unsealed again reads the sealed lease.
        again = await sr.Strongroom.unseal(storage, sr.SoftwareProtector.from_key_file(str(tmp_path / "root.key")))
        two = sr.LeaseManager(again, clock)
        assert (await two.lookup(lease.id)).expires_ms == T0 + 60 * S

    run(go())


class Listener(sr.LeaseEventListener):
    """Collects pushed events; fails on every third one."""

    def __init__(self):
        self.events = []

    def on_event(self, event):
        self.events.append(event)
        if len(self.events) % 3 == 0:
            raise sr.LeaseListenerError.Failed("listener busy")


def test_lease_events_pushed_to_a_listener(tmp_path):
    async def go():
        clock = sr.Clock.manual(T0)
        mgr = sr.LeaseManager(await new_store(tmp_path), clock, None)
        mgr.register_revoker("test", Recorder())
        listener = Listener()
        sub = await mgr.listen(listener)
        a = await mgr.issue("db/creds/a", "test", 60 * S, 300 * S, True, b"a")
        b = await mgr.issue("db/creds/b", "test", 60 * S, 300 * S, True, b"b")
        await mgr.renew(a.id, 30 * S)
        await mgr.revoke(b.id)
        for _ in range(500):  # delivery runs on the runtime's threads
            if sub.delivered() >= 4:
                break
            await asyncio.sleep(0.01)
        kinds = [(e.is_issued(), e.is_renewed(), e.is_revoked()) for e in listener.events]
        assert kinds == [(True, False, False), (True, False, False), (False, True, False), (False, False, True)]
        assert [listener.events[i].id for i in (0, 1, 2, 3)] == [a.id, b.id, a.id, b.id]
        assert sub.delivered() == 4 and sub.listener_errors() == 1 and sub.skipped() == 0
        sub.cancel()
        await mgr.revoke(a.id)
        await asyncio.sleep(0.05)
        assert len(listener.events) == 4  # nothing after cancel()
        # the pull-style queue is independent of the listener
        assert len([e for e in mgr.take_events() if e.is_revoked()]) == 2

    run(go())
