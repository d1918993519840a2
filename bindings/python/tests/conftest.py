import json
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "docs/vectors/sealed-v1.json").read_text())["vectors"]


def xlang_dir() -> pathlib.Path:
    d = os.environ.get("STRONGROOM_XLANG_DIR")
    if not d:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        d = os.path.join(target, "strongroom-xlang")
    p = pathlib.Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


CHECKED_IN_XLANG = ROOT / "bindings/xlang"


@pytest.fixture
def key_file(tmp_path):
    import strongroom

    p = tmp_path / "root.key"
    strongroom.SoftwareProtector.generate_key_file(p)
    return p


@pytest.fixture(scope="session")
def pg_server():
    """The superuser URL of a private PostgreSQL cluster started by
    strongroom-testpg for this session (stopped when its stdin closes)."""
    import subprocess

    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    exe = os.environ.get("STRONGROOM_TESTPG") or os.path.join(target, "debug", "strongroom-testpg")
    proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url:
        proc.stdin.close()
        proc.wait(timeout=60)
        pytest.fail(f"{exe} started no cluster (exit {proc.returncode})")
    yield url
    proc.stdin.close()
    proc.wait(timeout=60)


@pytest.fixture
def pg_db(pg_server):
    """A fresh database in the session's cluster; its superuser URL."""
    import uuid
    from urllib.parse import urlsplit

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(pg_server)._replace(path="/" + name).geturl()
