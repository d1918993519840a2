"""Approval gates and alerts (issue #16) through the uniffi FFI (the same
scenarios as bindings/python/tests/test_approvals.py and test_alerts.py,
smaller)."""

import asyncio
import threading

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError

ADMIN = """
name = "admin"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "delete"]
"""

GATES = """
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 2
approvers = ["alice", "bob", "carol"]

[[gate]]
operation = "sensitive_read"
pattern = "prod/admin/*"
required = 1
approvers = ["alice"]
"""

RULES = """
[new_path]
enabled = false
[read_rate]
enabled = false
[bulk_access]
enabled = false
[repeated_denials]
enabled = false
[stale_version]
enabled = false
[sensitive_read]
severity = "critical"
patterns = ["prod/admin/*"]
"""

HOUR = 3600


async def setup(tmp_path, engine=None):
    room = await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(bytes(range(32))))
    path = str(tmp_path / "audit.jsonl")
    if engine is None:
        audit = await room.open_audit_log(path)
    else:
        audit = await room.open_audit_log_with_alerts(path, engine)
    admin = sr.Policy.from_toml(ADMIN)
    return room, (lambda name: room.as_principal(name, [admin], audit))


def test_gated_destroy_needs_two_approvals_and_runs_once(tmp_path):
    async def go():
        room, as_ = await setup(tmp_path)
        ops, alice, bob = as_("ops"), as_("alice"), as_("bob")
        await ops.put("prod/db", b"pw-1")
        assert (await ops.approvals().gates()).revision == 0
        assert await room.set_gates(GATES, 0, ops) == 1
        g = await ops.approvals().gates()
        assert g.revision == 1 and [x.operation for x in g.gates] == ["destroy", "sensitive_read"]
        assert g.gates[0] == sr.ApprovalGate(operation="destroy", pattern="prod/*", required=2,
                                             approvers=["alice", "bob", "carol"])
        with pytest.raises(E.ApprovalConflict):
            await room.set_gates(GATES, 0)

        with pytest.raises(E.ApprovalRequired) as e:
            await ops.destroy("prod/db", [1])
        assert e.value.code == "approval.required"
        assert fields(e.value)["operation"] == "destroy" and fields(e.value)["path"] == "prod/db"
        assert (await ops.read("prod/db")).info.destroyed_ms is None

        req = await ops.approvals().request("destroy", "prod/db", "decommission", HOUR)
        assert (req.state, req.requester, req.path) == ("pending", "ops", "prod/db")
        assert req.expires_ms - req.created_ms == HOUR * 1000
        with pytest.raises(E.ApprovalSelfApproval):
            await ops.approvals().approve(req.id)
        await alice.approvals().approve(req.id)
        req = await bob.approvals().approve(req.id)
        assert req.state == "approved" and [d.principal for d in req.approvals] == ["alice", "bob"]

        assert await ops.with_approval(req.id).destroy("prod/db", [1]) == [1]
        assert (await ops.metadata("prod/db")).versions[0].destroyed_ms is not None
        with pytest.raises(E.ApprovalUsed):
            await ops.with_approval(req.id).destroy("prod/db", [1])
        got = await alice.approvals().get(req.id)
        assert got.state == "used" and got.used_by == "ops"
        assert [r.id for r in await ops.approvals().list()] == [req.id]

    asyncio.run(go())


def test_sensitive_read_gate_and_refusal(tmp_path):
    async def go():
        room, as_ = await setup(tmp_path)
        ops, alice = as_("ops"), as_("alice")
        await ops.put("prod/admin/root", b"root-pw")
        await room.set_gates(GATES, 0)
        with pytest.raises(E.ApprovalRequired):
            await ops.read("prod/admin/root")
        req = await ops.approvals().request("sensitive_read", "prod/admin/root", "incident", HOUR)
        await alice.approvals().approve(req.id)
        assert (await ops.with_approval(req.id).read("prod/admin/root")).secret.reveal() == b"root-pw"
        with pytest.raises(E.ApprovalUsed):
            await ops.with_approval(req.id).read("prod/admin/root")

        req = await ops.approvals().request("sensitive_read", "prod/admin/root", "again", HOUR)
        req = await alice.approvals().refuse(req.id)
        assert req.state == "refused" and [d.principal for d in req.refusals] == ["alice"]
        with pytest.raises(E.ApprovalRefused):
            await ops.with_approval(req.id).read("prod/admin/root")
        with pytest.raises(E.ApprovalInvalidRequest):
            await ops.approvals().request("fly", "prod/db", "why", HOUR)

    asyncio.run(go())


class Listener(sr.AlertListener):
    def __init__(self, fail_first=False):
        self.alerts, self.threads, self.fail_first = [], [], fail_first

    def on_alert(self, alert):
        self.threads.append(threading.get_ident())
        self.alerts.append(alert)
        if self.fail_first and len(self.alerts) == 1:
            raise ValueError("listener broke")


def test_sensitive_read_alert_reaches_the_listener(tmp_path):
    async def go():
        listener = Listener()
        engine = await sr.AlertEngine.start(RULES, listener)
        _, as_ = await setup(tmp_path, engine)
        svc = as_("svc")
        await svc.put("prod/app/db", b"app-pw")
        await svc.put("prod/admin/root", b"root-pw")
        await svc.read("prod/app/db")
        await engine.settled()
        assert listener.alerts == [] and engine.stats().raised == 0

        await svc.read("prod/admin/root")
        await engine.settled()
        [a] = listener.alerts
        assert (a.kind, a.severity, a.principal, a.path) == ("sensitive_read", "critical", "svc", "prod/admin/root")
        assert a.seq > 0 and a.request_id and a.at_ms > 1_600_000_000_000
        assert "root-pw" not in a.summary
        assert engine.stats() == sr.AlertEngineStats(raised=1, delivered=1, dropped=0, sink_timeouts=0,
                                                      listener_errors=0)
        assert listener.threads[0] != threading.get_ident()

    asyncio.run(go())


def test_a_throwing_listener_does_not_stop_later_alerts(tmp_path):
    async def go():
        listener = Listener(fail_first=True)
        engine = await sr.AlertEngine.start(RULES, listener)
        _, as_ = await setup(tmp_path, engine)
        svc = as_("svc")
        await svc.put("prod/admin/root", b"root-pw")
        await svc.read("prod/admin/root")
        await engine.settled()
        await svc.read("prod/admin/root")
        await engine.settled()
        assert len(listener.alerts) == 2
        s = engine.stats()
        assert (s.raised, s.delivered, s.listener_errors) == (2, 2, 1)

    asyncio.run(go())


def test_bad_alert_config():
    async def go():
        with pytest.raises(E.InvalidArgument):
            await sr.AlertEngine.start("[sensitive_read]\nfly = 1\n", Listener())

    asyncio.run(go())
