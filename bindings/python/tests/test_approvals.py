"""Approval gates (issue #16) through the asyncio and the blocking API: a
gated destroy is refused with ApprovalRequired and destroys nothing; a
request approved by another principal runs once; self-approval, a second
use, a refusal and a sensitive-read gate."""

import asyncio
import inspect

import pytest
import strongroom

FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}

ADMIN = """
name = "admin"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "update", "delete", "list"]
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

HOUR = 3600


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(FLAVORS))
def cls(request):
    return FLAVORS[request.param]


async def setup(cls, tmp_path):
    prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
    sr = await m(cls.init(strongroom.Storage.memory(), prot))
    audit = await m(sr.open_audit_log(str(tmp_path / "audit.jsonl")))
    admin = strongroom.Policy.from_toml(ADMIN)
    as_ = lambda name: sr.as_principal(name, [admin], audit)  # noqa: E731
    return sr, as_


def test_gates_set_and_read(cls, tmp_path):
    async def go():
        sr, as_ = await setup(cls, tmp_path)
        ops = as_("ops")
        g = await m(ops.approvals().gates())
        assert g.revision == 0 and g.gates == []
        assert await m(sr.set_gates(GATES, 0, operator=ops)) == 1
        g = await m(ops.approvals().gates())
        assert g.revision == 1
        assert [(x.operation, x.pattern, x.required) for x in g.gates] == [
            ("destroy", "prod/*", 2),
            ("sensitive_read", "prod/admin/*", 1),
        ]
        assert g.gates[0].approvers == ["alice", "bob", "carol"]
        assert "sensitive_read" in g.toml
        # A stale revision is refused; the door's own operator works too.
        with pytest.raises(strongroom.ApprovalConflict):
            await m(sr.set_gates(GATES, 0))
        assert await m(sr.set_gates(g.toml, 1)) == 2
        with pytest.raises(strongroom.ApprovalInvalidGates) as e:
            await m(sr.set_gates('[[gate]]\noperation = "fly"\n', 2))
        assert e.value.code == "approval.invalid_gates"

    asyncio.run(go())


def test_destroy_refused_then_approved_runs_once(cls, tmp_path):
    async def go():
        sr, as_ = await setup(cls, tmp_path)
        ops, alice, bob, eve = as_("ops"), as_("alice"), as_("bob"), as_("eve")
        await m(ops.put("prod/db", b"pw-1"))
        await m(sr.set_gates(GATES, 0))

        # Without an approved request: refused, nothing destroyed.
        with pytest.raises(strongroom.ApprovalRequired) as e:
            await m(ops.destroy("prod/db", [1]))
        assert isinstance(e.value, strongroom.ApprovalError)
        assert e.value.code == "approval.required"
        assert e.value.operation == "destroy" and e.value.path == "prod/db"
        info, secret = await m(ops.read("prod/db"))
        assert info.destroyed_ms is None and secret.reveal() == b"pw-1"

        req = await m(ops.approvals().request("destroy", "prod/db", "decommission", HOUR))
        assert isinstance(req, strongroom.ApprovalRequest)
        assert (req.operation, req.path, req.requester, req.reason, req.state) == (
            "destroy", "prod/db", "ops", "decommission", "pending")
        assert len(req.id) == 32 and req.approvals == [] and req.used_by is None
        assert req.expires_ms - req.created_ms == HOUR * 1000

        # The requester cannot approve; someone no gate names cannot either.
        with pytest.raises(strongroom.ApprovalSelfApproval):
            await m(ops.approvals().approve(req.id))
        with pytest.raises(strongroom.ApprovalNotApprover):
            await m(eve.approvals().approve(req.id))

        req = await m(alice.approvals().approve(req.id))
        assert req.state == "pending" and [p for p, _ in req.approvals] == ["alice"]
        with pytest.raises(strongroom.ApprovalAlreadyApproved):
            await m(alice.approvals().approve(req.id))
        # One approval of two: not yet.
        with pytest.raises(strongroom.ApprovalNotApproved):
            await m(ops.with_approval(req.id).destroy("prod/db", [1]))
        req = await m(bob.approvals().approve(req.id))
        assert req.state == "approved" and [p for p, _ in req.approvals] == ["alice", "bob"]
        assert all(at >= req.created_ms for _, at in req.approvals)

        # Someone else cannot use it.
        with pytest.raises(strongroom.ApprovalMismatch):
            await m(alice.with_approval(req.id).destroy("prod/db", [1]))
        # Runs once.
        assert await m(ops.with_approval(req.id).destroy("prod/db", [1])) == [1]
        meta = await m(ops.metadata("prod/db"))
        assert meta.versions[0].destroyed_ms is not None
        with pytest.raises(strongroom.ApprovalUsed) as e:
            await m(ops.with_approval(req.id).destroy("prod/db", [1]))
        assert e.value.code == "approval.used" and e.value.id == req.id

        got = await m(alice.approvals().get(req.id))
        assert got.state == "used" and got.used_by == "ops"
        assert [r.id for r in await m(ops.approvals().list())] == [req.id]
        with pytest.raises(strongroom.ApprovalNotFound):
            await m(ops.approvals().get("0" * 32))

    asyncio.run(go())


def test_refusal_ends_a_request(cls, tmp_path):
    async def go():
        sr, as_ = await setup(cls, tmp_path)
        ops, alice, bob, carol = as_("ops"), as_("alice"), as_("bob"), as_("carol")
        await m(ops.put("prod/db", b"pw"))
        await m(sr.set_gates(GATES, 0))
        req = await m(ops.approvals().request("destroy", "prod/db", "cleanup", HOUR))
        await m(alice.approvals().approve(req.id))
        req = await m(carol.approvals().refuse(req.id))
        assert req.state == "refused" and [p for p, _ in req.refusals] == ["carol"]
        with pytest.raises(strongroom.ApprovalRefused):
            await m(bob.approvals().approve(req.id))
        with pytest.raises(strongroom.ApprovalRefused):
            await m(ops.with_approval(req.id).destroy("prod/db", [1]))
        (info, _) = await m(ops.read("prod/db"))
        assert info.destroyed_ms is None

    asyncio.run(go())


def test_sensitive_read_gate(cls, tmp_path):
    async def go():
        sr, as_ = await setup(cls, tmp_path)
        ops, alice = as_("ops"), as_("alice")
        await m(ops.put("prod/admin/root", b"root-pw"))
        await m(ops.put("prod/app/db", b"app-pw"))
        await m(sr.set_gates(GATES, 0))

        (_, s) = await m(ops.read("prod/app/db"))  # not sensitive
        assert s.reveal() == b"app-pw"
        with pytest.raises(strongroom.ApprovalRequired) as e:
            await m(ops.read("prod/admin/root"))
        assert e.value.operation == "sensitive_read"
        assert "root-pw" not in str(e.value)

        req = await m(ops.approvals().request("sensitive_read", "prod/admin/root", "incident 42", HOUR))
        await m(alice.approvals().approve(req.id))
        (_, s) = await m(ops.with_approval(req.id).read("prod/admin/root"))
        assert s.reveal() == b"root-pw"
        with pytest.raises(strongroom.ApprovalUsed):
            await m(ops.with_approval(req.id).read("prod/admin/root"))

    asyncio.run(go())


def test_bad_requests(cls, tmp_path):
    async def go():
        sr, as_ = await setup(cls, tmp_path)
        ops = as_("ops")
        with pytest.raises(strongroom.ApprovalNoGate):
            await m(ops.approvals().request("destroy", "prod/db", "why", HOUR))
        await m(sr.set_gates(GATES, 0))
        with pytest.raises(strongroom.ApprovalInvalidRequest):
            await m(ops.approvals().request("fly", "prod/db", "why", HOUR))
        with pytest.raises(strongroom.ApprovalInvalidRequest):
            await m(ops.approvals().request("destroy", "prod/db", "  ", HOUR))
        with pytest.raises(strongroom.ApprovalNoGate):
            await m(ops.approvals().request("destroy", "dev/db", "why", HOUR))

    asyncio.run(go())
