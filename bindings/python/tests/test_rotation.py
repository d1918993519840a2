"""S8 of bindings/SCENARIOS.md (API-key rotation verified with overlap),
through the asyncio and the blocking API."""

import asyncio
import inspect
import re

import pytest
import strongroom

STORES = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}
ROTATIONS = {"async": strongroom.ApiKeyRotation, "blocking": strongroom.blocking.ApiKeyRotation}
KEY = re.compile(rb"^sk_[0-9A-Za-z]{32}$")


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(params=list(STORES))
def flavor(request):
    return request.param


async def api_key(flavor, key_file, grace):
    store_cls, rot_cls = STORES[flavor], ROTATIONS[flavor]
    prot = strongroom.SoftwareProtector.from_key_file(key_file)
    sr = await m(store_cls.init(strongroom.Storage.memory(), prot))
    rot = await m(rot_cls.open(sr, "svc/api-key", prefix="sk_", chars=32, grace_period=grace))
    assert rot.name == "svc/api-key"
    assert (await m(rot.status())).current is None

    r1 = await m(rot.rotate_now())
    assert r1.promoted == 1
    s1 = await m(rot.staged())
    assert s1.current.version == 1 and s1.previous is None and s1.pending is None
    first = s1.current.secret.reveal()
    assert KEY.match(first), "sk_ + 32 base62 characters"

    r2 = await m(rot.rotate_now())
    assert r2.promoted == 2
    s2 = await m(rot.staged())
    assert (s2.current.version, s2.previous.version) == (2, 1)
    second = s2.current.secret.reveal()
    assert s2.previous.secret.reveal() == first and second != first and KEY.match(second)
    status = await m(rot.status())
    assert (status.current, status.previous, status.pending) == (2, 1, None)
    assert status.history == [1, 2] and status.in_flight is None

    assert rot.verify(second.decode()) == strongroom.Matched.Current
    assert rot.verify(first) == strongroom.Matched.Previous
    assert rot.verify(bytearray(first)) == strongroom.Matched.Previous
    assert rot.verify("sk_" + "A" * 32) == strongroom.Matched.NoMatch
    assert rot.verify("") == strongroom.Matched.NoMatch
    assert rot.verify(second[:-1].decode()) == strongroom.Matched.NoMatch

    # staged secrets are Secrets: redacted when printed
    text = repr(s2.current) + str(s2.current.secret) + repr(s2)
    assert second.decode() not in text and first.decode() not in text
    assert "Secret([REDACTED; 35 bytes])" in repr(s2.current)

    # a second engine over the same store sees the same versions
    other = await m(rot_cls.open(sr, "svc/api-key", grace_period=grace))
    o = await m(other.staged())
    assert (o.current.version, o.previous.version) == (2, 1)
    assert o.current.secret.reveal() == second
    assert other.verify(second) == strongroom.Matched.Current
    assert other.verify(first) == strongroom.Matched.Previous
    return rot, first, second


def test_api_key_rotation_with_overlap(flavor, key_file):
    async def go():
        rot, first, second = await api_key(flavor, key_file, 3600)
        # still in its grace period: previous stays
        assert await m(rot.revoke_due()) is False
        assert rot.verify(first) == strongroom.Matched.Previous

    asyncio.run(go())


def test_grace_period_zero_revokes_previous(flavor, key_file):
    async def go():
        rot, first, second = await api_key(flavor, key_file, 0)
        assert await m(rot.revoke_due()) is True
        s = await m(rot.staged())
        assert s.previous is None and s.current.version == 2
        assert (await m(rot.status())).previous is None
        assert rot.verify(first) == strongroom.Matched.NoMatch
        assert rot.verify(second) == strongroom.Matched.Current
        assert await m(rot.revoke_due()) is False

    asyncio.run(go())


def test_grace_period_on_the_store_clock(key_file):
    """The grace period runs on the store's clock: a manual clock moves it."""
    clock = strongroom.ManualClock(1_700_000_000_000)
    sr = strongroom.blocking.Strongroom.init(
        strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key_file(key_file), clock
    )
    rot = strongroom.blocking.ApiKeyRotation.open(sr, "svc/api-key", grace_period=60)
    rot.rotate_now()
    first = rot.staged().current.secret.reveal()
    rot.rotate_now()
    status = rot.status()
    assert status.revoke_previous_at == 1_700_000_000_000 + 60_000
    clock.advance(59)
    assert rot.revoke_due() is False and rot.verify(first) == strongroom.Matched.Previous
    clock.advance(1)
    assert rot.revoke_due() is True and rot.verify(first) == strongroom.Matched.NoMatch


def test_refresh_sees_another_engines_rotation(key_file):
    async def go():
        sr = await strongroom.Strongroom.init(
            strongroom.Storage.memory(), strongroom.SoftwareProtector.from_key_file(key_file)
        )
        a = await strongroom.ApiKeyRotation.open(sr, "svc/shared")
        b = await strongroom.ApiKeyRotation.open(sr, "svc/shared")
        await a.rotate_now()
        key = (await a.staged()).current.secret.reveal()
        assert a.verify(key) == strongroom.Matched.Current
        # b opened before the rotation: it learns of it on refresh
        assert b.verify(key) == strongroom.Matched.NoMatch
        await b.refresh()
        assert b.verify(key) == strongroom.Matched.Current
        assert a.blocking().staged().current.version == 1
        with pytest.raises(strongroom.RotationInvalidName) as e:
            await strongroom.ApiKeyRotation.open(sr, "../bad name")
        assert isinstance(e.value, strongroom.RotationError) and e.value.credential == "../bad name"
        with pytest.raises(strongroom.InvalidArgument):
            await strongroom.ApiKeyRotation.open(sr, "svc/short", chars=8)

    asyncio.run(go())


def test_import_an_existing_key_then_rotate_with_overlap(flavor, key_file):
    async def go():
        store_cls, rot_cls = STORES[flavor], ROTATIONS[flavor]
        prot = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await m(store_cls.init(strongroom.Storage.memory(), prot))
        rot = await m(rot_cls.open(sr, "svc/legacy", grace_period=3600))
        legacy = "key-from-the-old-env-file"  # predates the sk_ format
        assert await m(rot.import_current(legacy)) == 1
        assert (await m(rot.staged())).current.identity == "sk_"  # as the core's rotator records it
        assert rot.verify(legacy) == strongroom.Matched.Current
        with pytest.raises(strongroom.RotationAlreadyInitialized):
            await m(rot.import_current("another"))
        await m(rot.rotate_now())
        new = (await m(rot.staged())).current.secret.reveal()
        assert rot.verify(new) == strongroom.Matched.Current
        assert rot.verify(legacy) == strongroom.Matched.Previous

    asyncio.run(go())


def test_key_format_rules_come_from_the_host_layer(flavor, key_file):
    """hex_bytes= keys, and one set of format rules (shared with Node and
    Swift): base62 16..=1024 chars, hex 12..=1024 bytes, prefix <= 64
    printable ASCII characters."""

    async def go():
        store_cls, rot_cls = STORES[flavor], ROTATIONS[flavor]
        prot = strongroom.SoftwareProtector.from_key_file(key_file)
        sr = await m(store_cls.init(strongroom.Storage.memory(), prot))
        rot = await m(rot_cls.open(sr, "svc/hex", prefix="hk_", hex_bytes=16))
        await m(rot.rotate_now())
        key = (await m(rot.staged())).current.secret.reveal()
        assert re.match(rb"^hk_[0-9a-f]{32}$", key)
        assert rot.verify(key) == strongroom.Matched.Current
        ok = await m(rot_cls.open(sr, "svc/edge", prefix="p" * 64, chars=16))
        assert ok.name == "svc/edge"
        for kwargs in (
            dict(chars=15),
            dict(chars=1025),
            dict(hex_bytes=11),
            dict(hex_bytes=1025),
            dict(chars=32, hex_bytes=16),
            dict(prefix="has space"),
            dict(prefix="p" * 65),
        ):
            with pytest.raises(strongroom.InvalidArgument):
                await m(rot_cls.open(sr, "svc/bad", **kwargs))
        sr.close()

    asyncio.run(go())
