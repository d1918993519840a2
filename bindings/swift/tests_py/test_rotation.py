"""S8 of bindings/SCENARIOS.md through the uniffi FFI: an API key rotated by
the rotation engine, checked by the verifier with current/previous overlap."""

import asyncio
import os
import re

import pytest
import strongroom_ffi as sr

E = sr.StrongroomError
FORMAT = sr.ApiKeyFormat.BASE62(prefix="sk_", chars=32)
HOUR = 3_600_000


def run(coro):
    return asyncio.run(coro)


async def new_store():
    return await sr.Strongroom.create(sr.Storage.memory(), sr.SoftwareProtector.from_key(os.urandom(32)))


async def keys(engine):
    staged = await engine.staged()
    return {name: (c.version(), c.secret().reveal()) if c else None
            for name, c in (("pending", staged.pending), ("current", staged.current),
                            ("previous", staged.previous))}


def test_api_key_rotation_with_overlap():
    async def go():
        room = await new_store()
        verifier = sr.ApiKeyVerifier()
        engine = await sr.RotationEngine.api_key(room, "svc/api-key", FORMAT, verifier,
                                                 sr.RotationOptions(grace_period_ms=HOUR))
        assert engine.name() == "svc/api-key"
        assert (await engine.status()).current is None

        r1 = await engine.rotate_now()
        assert r1.promoted == 1 and r1.revoked is None
        k = await keys(engine)
        v1, key1 = k["current"]
        assert v1 == 1 and k["previous"] is None and k["pending"] is None
        assert re.fullmatch(rb"sk_[0-9A-Za-z]{32}", key1)
        assert verifier.verify(key1) == sr.Matched.CURRENT

        r2 = await engine.rotate_now()
        assert r2.promoted == 2
        status = await engine.status()
        assert (status.current, status.previous, status.pending) == (2, 1, None)
        assert status.revoke_previous_ms is not None and status.in_flight_step is None
        assert [h.version for h in status.history] == [1, 2]
        assert status.history[0].superseded_ms is not None and status.history[1].promoted_ms is not None
        k = await keys(engine)
        key2 = k["current"][1]
        assert k["previous"] == (1, key1) and key2 != key1

        assert verifier.verify(key2) == sr.Matched.CURRENT
        assert verifier.verify(key1) == sr.Matched.PREVIOUS
        assert verifier.verify(b"sk_" + b"0" * 32) == sr.Matched.NO_MATCH
        assert verifier.verify(key2[:-1]) == sr.Matched.NO_MATCH

        # Staged secrets print as a redaction.
        staged = await engine.staged()
        for text in (repr(staged), repr(staged.current), str(staged.current)):
            assert key2.decode() not in text and key1.decode() not in text
        assert str(staged.current) == 'Credential(version=2, identity="sk_", secret=[REDACTED; 35 bytes])'
        assert repr(staged.current.secret()) == "Secret([REDACTED; 35 bytes])"

        # A second engine (and verifier) over the same store sees the same versions.
        verifier2 = sr.ApiKeyVerifier()
        engine2 = await sr.RotationEngine.api_key(room, "svc/api-key", FORMAT, verifier2)
        assert await keys(engine2) == await keys(engine)
        assert verifier2.verify(key2) == sr.Matched.CURRENT
        assert verifier2.verify(key1) == sr.Matched.PREVIOUS
        assert engine2.owner_id() != engine.owner_id()

        # Grace period not over: nothing to revoke.
        assert await engine.revoke_due() is False
        assert verifier.verify(key1) == sr.Matched.PREVIOUS

    run(go())


def test_grace_period_zero_revokes_previous():
    async def go():
        room = await new_store()
        verifier = sr.ApiKeyVerifier()
        engine = await sr.RotationEngine.api_key(room, "svc/api-key", FORMAT, verifier,
                                                 sr.RotationOptions(grace_period_ms=0))
        await engine.rotate_now()
        old = (await keys(engine))["current"][1]
        await engine.rotate_now()
        new = (await keys(engine))["current"][1]
        assert verifier.verify(old) == sr.Matched.PREVIOUS

        assert await engine.revoke_due() is True
        status = await engine.status()
        assert (status.current, status.previous) == (2, None)
        assert status.history[0].revoked_ms is not None
        assert verifier.verify(old) == sr.Matched.NO_MATCH
        assert verifier.verify(new) == sr.Matched.CURRENT
        assert await engine.revoke_due() is False

    run(go())


def test_hex_format_and_bad_arguments():
    async def go():
        room = await new_store()
        verifier = sr.ApiKeyVerifier()
        engine = await sr.RotationEngine.api_key(room, "svc/hex-key", sr.ApiKeyFormat.HEX(prefix="hk_", bytes=16),
                                                 verifier)
        await engine.rotate_now()
        key = (await keys(engine))["current"][1]
        assert re.fullmatch(rb"hk_[0-9a-f]{32}", key)
        assert verifier.verify(key) == sr.Matched.CURRENT

        with pytest.raises(E.RotationInvalidName) as e:
            await sr.RotationEngine.api_key(room, "Bad Name!", FORMAT, verifier)
        assert e.value.code == "rotation.invalid_name"
        with pytest.raises(E.InvalidArgument):
            await sr.RotationEngine.api_key(room, "svc/x", sr.ApiKeyFormat.BASE62(prefix="x", chars=0), verifier)
        with pytest.raises(E.InvalidArgument):
            await sr.RotationEngine.api_key(room, "svc/x", FORMAT, verifier, sr.RotationOptions(max_attempts=0))

    run(go())
