"""S9 of bindings/SCENARIOS.md through the uniffi FFI: the root key wrapped
by a key in a SoftHSM2 token the test makes in a temporary directory."""

import asyncio
import os
import pathlib
import shutil
import subprocess

import pytest
import strongroom_ffi as sr
from conftest import fields

E = sr.StrongroomError
MODULES = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
]
USER_PIN = "1234-user"
TOKENS = ("uniffi-s9", "uniffi-s9-twice")


@pytest.fixture(scope="module")
def hsm(tmp_path_factory):
    """A SoftHSM2 configuration with fresh tokens. SoftHSM reads
    SOFTHSM2_CONF and its token directory once per process, at the first
    C_Initialize, so every token is made here, before any PKCS#11 call."""
    module = next((m for m in MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: run `bash scripts/setup-softhsm.sh` and re-run")
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d}/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    for label in TOKENS:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                        "--so-pin", "87654321", "--pin", USER_PIN],
                       env=env, check=True, capture_output=True)
    os.environ["SOFTHSM2_CONF"] = str(conf)  # os.environ also sets the C environment
    return module


def test_root_key_in_token(hsm, tmp_path):
    async def go():
        prot = sr.Pkcs11Protector(hsm, "uniffi-s9", USER_PIN, "root-kek")
        assert prot.key_version() is None
        await prot.init_key()
        assert prot.key_version() == 1
        assert (prot.token_label(), prot.key_label(), prot.module_path()) == ("uniffi-s9", "root-kek", hsm)
        assert USER_PIN not in repr(prot) and "connected=true" in repr(prot)

        db = str(tmp_path / "store.db")
        room = await sr.Strongroom.create_with_pkcs11(await sr.Storage.sqlite(db), prot)
        await room.put_secret("prod/app/db", b"pw-in-hsm")
        room.seal()
        assert room.is_sealed()
        with pytest.raises(E.Sealed):
            await room.get_secret("prod/app/db")

        # The same configuration, connected afresh, opens the store again.
        again = await sr.Strongroom.unseal_with_pkcs11(
            await sr.Storage.sqlite(db), sr.Pkcs11Protector(hsm, "uniffi-s9", USER_PIN, "root-kek"))
        assert (await again.get_secret("prod/app/db")).secret.reveal() == b"pw-in-hsm"

        # A wrong PIN: a protector error saying so, and nothing unsealed.
        wrong = sr.Pkcs11Protector(hsm, "uniffi-s9", "0000-wrong", "root-kek")
        with pytest.raises(E.ProtectorError) as e:
            await sr.Strongroom.unseal_with_pkcs11(await sr.Storage.sqlite(db), wrong)
        err = e.value
        assert fields(err)["protector"] == "pkcs11" and err.code == "protector.wrong_pin"
        assert "pin" in err.message.lower() and "0000-wrong" not in err.message
        assert room.is_sealed() and wrong.key_version() is None

        # A software key is refused: the store says which protector it needs.
        with pytest.raises(E.InvalidArgument) as e:
            await sr.Strongroom.unseal(await sr.Storage.sqlite(db), sr.SoftwareProtector.from_key(os.urandom(32)))
        assert '"pkcs11"' in e.value.message

        # Another key label on the token: not found.
        with pytest.raises(E.ProtectorError) as e:
            await sr.Pkcs11Protector(hsm, "uniffi-s9", USER_PIN, "no-such-key").open()
        assert e.value.code == "protector.key_not_found"
        with pytest.raises(E.ProtectorError) as e:
            await sr.Pkcs11Protector(hsm, "no-such-token", USER_PIN, "root-kek").open()
        assert e.value.code == "protector.token_not_found"

    asyncio.run(go())


def test_init_key_twice_is_refused(hsm):
    async def go():
        await sr.Pkcs11Protector(hsm, "uniffi-s9-twice", USER_PIN, "kek").init_key()
        with pytest.raises(E.ProtectorError) as e:
            await sr.Pkcs11Protector(hsm, "uniffi-s9-twice", USER_PIN, "kek").init_key()
        assert e.value.code == "protector.config"
        room = await sr.Strongroom.create_with_pkcs11(
            sr.Storage.memory(), sr.Pkcs11Protector(hsm, "uniffi-s9-twice", USER_PIN, "kek"))
        await room.put_secret("a/b", b"v")
        assert (await room.get_secret("a/b")).secret.reveal() == b"v"

    asyncio.run(go())
