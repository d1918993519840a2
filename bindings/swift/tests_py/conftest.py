import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "docs/vectors/sealed-v1.json").read_text())["vectors"]
CHECKED_IN_XLANG = ROOT / "bindings/xlang"

# test.sh generates the uniffi Python module (and copies the cdylib) here.
sys.path.insert(0, os.environ["STRONGROOM_UNIFFI_PY"])


def xlang_dir() -> pathlib.Path:
    d = os.environ.get("STRONGROOM_XLANG_DIR")
    if not d:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        d = os.path.join(target, "strongroom-xlang")
    p = pathlib.Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def fields(err) -> dict:
    """An error's `fields` as plain Python values (FieldValue.NULL: None,
    FieldValue.TIME: its milliseconds)."""
    out = {}
    for name, v in err.fields.items():
        if v.is_NULL():
            out[name] = None
        elif v.is_TIME():
            out[name] = v.ms
        elif v.is_STR() or v.is_U64():
            out[name] = v.value
        else:
            out[name] = list(v.values)
    return out


@pytest.fixture(scope="session")
def pg_url():
    """The superuser URL of a private PostgreSQL cluster that
    `strongroom-testpg` (built by generate.sh's workspace build) starts from
    the machine's initdb and stops when its standard input closes."""
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    binary = pathlib.Path(target) / "debug" / "strongroom-testpg"
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("postgres://"):
        proc.kill()
        raise RuntimeError(f"strongroom-testpg did not start a cluster (exit {proc.wait()})")
    yield url
    proc.stdin.close()
    proc.wait(timeout=60)


_DB_COUNTER = [0]


@pytest.fixture
def pg_db(pg_url):
    """A fresh database on the private cluster: its superuser URL."""
    import strongroom_ffi  # noqa: F401  (the generated module is on sys.path)

    _DB_COUNTER[0] += 1
    name = f"t{os.getpid()}_{_DB_COUNTER[0]}"
    base = pg_url.rsplit("/", 1)[0]
    subprocess.run(
        ["psql", pg_url, "-q", "-c", f"CREATE DATABASE {name}"],
        check=True, capture_output=True,
    )
    return f"{base}/{name}"
