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
