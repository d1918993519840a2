"""S9 of bindings/SCENARIOS.md (root key in a PKCS#11 token, SoftHSM2),
through the asyncio and the blocking API.

SoftHSM reads SOFTHSM2_CONF once, at the process's first C_Initialize, so
the session fixture makes every token this file needs before any PKCS#11
call. SoftHSM2 must be installed: `bash scripts/setup-softhsm.sh`.
"""

import asyncio
import inspect
import os
import pathlib
import shutil
import subprocess

import pytest
import strongroom

MODULES = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
]
PIN = "1234-user"
TOKENS = ["py-async", "py-blocking", "py-misc"]
FLAVORS = {"async": strongroom.Strongroom, "blocking": strongroom.blocking.Strongroom}


async def m(x):
    """Awaits async results; passes blocking ones through."""
    return await x if inspect.isawaitable(x) else x


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    module = next((p for p in MODULES if pathlib.Path(p).exists()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: run `bash scripts/setup-softhsm.sh`")
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {d}/tokens\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    for label in TOKENS:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label,
             "--so-pin", "87654321", "--pin", PIN],
            env=env, check=True, capture_output=True,
        )
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module at C_Initialize
    return module


@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


def test_root_key_in_token(softhsm, flavor):
    cls, token = FLAVORS[flavor], f"py-{flavor}"

    async def go():
        hsm = strongroom.Pkcs11Protector(softhsm, token, PIN, "root-kek")
        assert hsm.key_version is None  # not connected yet
        hsm.init_key()
        assert hsm.key_version == 1
        storage = strongroom.Storage.memory()
        sr = await m(cls.init(storage, hsm))
        await m(sr.put_secret("prod/app/db", b"pw-in-hsm"))
        sr.seal()
        assert sr.is_sealed

        # a fresh protector with the same settings connects on unseal
        again = await m(cls.unseal(storage, strongroom.Pkcs11Protector(softhsm, token, PIN, "root-kek")))
        info, secret = await m(again.get_secret("prod/app/db"))
        assert info.version == 1 and secret.reveal() == b"pw-in-hsm"

        wrong = strongroom.Pkcs11Protector(softhsm, token, "0000-wrong", "root-kek")
        with pytest.raises(strongroom.ProtectorError) as e:
            await m(cls.unseal(storage, wrong))
        err = e.value
        assert err.code == "protector.wrong_pin" and err.protector == "pkcs11"
        assert "wrong pin" in str(err) and "PIN" in str(err)
        assert "0000-wrong" not in str(err) and "0000-wrong" not in repr(wrong)
        assert "0000-wrong" not in err.detail
        # the sealed store stays sealed
        assert sr.is_sealed
        with pytest.raises(strongroom.Sealed):
            await m(sr.get_secret("prod/app/db"))

    asyncio.run(go())


def test_token_errors(softhsm):
    # nobody in this process is logged in to py-misc yet: the token says no
    with pytest.raises(strongroom.ProtectorError) as e:
        strongroom.Pkcs11Protector(softhsm, "py-misc", "0000-wrong", "misc-kek").open()
    assert e.value.code == "protector.wrong_pin" and "check the user PIN" in str(e.value)
    # the key label must be new for init_key, and exist for open
    hsm = strongroom.Pkcs11Protector(softhsm, "py-misc", bytearray(PIN.encode()), "misc-kek")
    with pytest.raises(strongroom.ProtectorError) as e:
        hsm.open()
    assert e.value.code == "protector.key_not_found"
    hsm.init_key()
    with pytest.raises(strongroom.ProtectorError) as e:
        strongroom.Pkcs11Protector(softhsm, "py-misc", PIN, "misc-kek").init_key()
    assert "already holds key" in str(e.value)
    assert hsm.token_label == "py-misc" and hsm.key_label == "misc-kek"
    assert "connected=True" in repr(hsm) and PIN not in repr(hsm)
    # an unknown token, a missing module
    with pytest.raises(strongroom.ProtectorError) as e:
        strongroom.Pkcs11Protector(softhsm, "py-nope", PIN, "k").open()
    assert e.value.code == "protector.token_not_found"
    with pytest.raises(strongroom.ProtectorError) as e:
        strongroom.Pkcs11Protector("/nonexistent/libpkcs11.so", "py-misc", PIN, "k").open()
    assert e.value.code == "protector.module_not_found"
    # a store made with a software key does not open with the token key
    storage = strongroom.Storage.memory()
    strongroom.blocking.Strongroom.init(storage, strongroom.SoftwareProtector.from_key(os.urandom(32)))
    with pytest.raises(strongroom.InvalidArgument) as e:
        strongroom.blocking.Strongroom.unseal(storage, hsm)
    assert 'protected by "software", not by "pkcs11"' in str(e.value)
    with pytest.raises(TypeError):
        strongroom.blocking.Strongroom.init(strongroom.Storage.memory(), "not a protector")

