"""Alerts on unusual access (issue #16): an AlertEngine with a Python
callback, attached to an audit log, fed by principal handles."""

import asyncio
import inspect
import sys
import threading

import pytest
import strongroom

FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}

# Only the sensitive-read rule: the others are off so the test is exact.
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

ADMIN = """
name = "admin"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "list"]
"""


async def m(x):
    return await x if inspect.isawaitable(x) else x


async def settled(engine, cls):
    if cls is strongroom.Strongroom:
        await engine.settled()
    else:
        engine.wait_settled()


@pytest.fixture(params=list(FLAVORS))
def cls(request):
    return FLAVORS[request.param]


async def setup(cls, tmp_path, engine):
    prot = strongroom.SoftwareProtector.from_key(bytes(range(32)))
    sr = await m(cls.init(strongroom.Storage.memory(), prot))
    audit = await m(sr.open_audit_log(str(tmp_path / "audit.jsonl"), alerts=engine))
    svc = sr.as_principal("svc", [strongroom.Policy.from_toml(ADMIN)], audit)
    await m(svc.put("prod/app/db", b"app-pw"))
    await m(svc.put("prod/admin/root", b"root-pw"))
    return svc


def test_sensitive_read_fires_the_callback(cls, tmp_path):
    seen, threads = [], []

    def on_alert(alert):
        threads.append(threading.get_ident())
        seen.append(alert)

    async def go():
        engine = strongroom.AlertEngine(RULES, on_alert)
        svc = await setup(cls, tmp_path, engine)
        for _ in range(3):
            await m(svc.read("prod/app/db"))  # ordinary: no alert
        await settled(engine, cls)
        assert seen == []
        assert engine.stats()["raised"] == 0

        await m(svc.read("prod/admin/root"))
        await settled(engine, cls)
        assert len(seen) == 1
        a = seen[0]
        assert isinstance(a, strongroom.Alert)
        assert (a.kind, a.severity, a.principal, a.path) == (
            "sensitive_read", "critical", "svc", "prod/admin/root")
        assert a.seq > 0 and len(a.request_id) > 0 and a.at_ms > 1_600_000_000_000
        assert "prod/admin/root" in a.summary and "root-pw" not in a.summary
        assert "root-pw" not in repr(a)
        assert engine.stats() == {
            "raised": 1, "delivered": 1, "dropped": 0, "sink_timeouts": 0, "callback_errors": 0}
        # Run off the caller's thread (an engine worker thread).
        assert threads[0] != threading.get_ident()

    asyncio.run(go())


def test_a_raising_callback_does_not_stop_later_alerts(cls, tmp_path, monkeypatch):
    calls, unraisable = [], []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))

    def on_alert(alert):
        calls.append(alert.path)
        if len(calls) == 1:
            raise RuntimeError("callback broke")

    async def go():
        engine = strongroom.AlertEngine(RULES, on_alert)
        svc = await setup(cls, tmp_path, engine)
        await m(svc.read("prod/admin/root"))
        await settled(engine, cls)
        await m(svc.read("prod/admin/root"))
        await settled(engine, cls)
        assert calls == ["prod/admin/root", "prod/admin/root"]
        s = engine.stats()
        assert (s["raised"], s["delivered"], s["callback_errors"]) == (2, 2, 1)
        assert [str(e) for e in unraisable] == ["callback broke"]

    asyncio.run(go())


def test_asyncio_hop_to_the_loop(tmp_path):
    """The documented pattern: hand alerts to the loop with call_soon_threadsafe."""

    async def go():
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        engine = strongroom.AlertEngine(RULES, lambda a: loop.call_soon_threadsafe(queue.put_nowait, a))
        svc = await setup(strongroom.Strongroom, tmp_path, engine)
        await svc.read("prod/admin/root")
        alert = await asyncio.wait_for(queue.get(), 10)
        assert alert.kind == "sensitive_read"

    asyncio.run(go())


def test_bad_config_and_callback():
    with pytest.raises(strongroom.InvalidArgument) as e:
        strongroom.AlertEngine("[sensitive_read]\nfly = 1\n", lambda a: None)
    assert "fly" in str(e.value)
    with pytest.raises(TypeError):
        strongroom.AlertEngine(RULES, 42)
