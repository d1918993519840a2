import json
import os
import pathlib
import sys

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
