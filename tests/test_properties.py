"""Property-based tests (Hypothesis) of what users type and what they point gankit at: ``--set`` values,
TOML config files and image files. Whatever the input, the answer is a result or one GankitError line —
never another exception."""
import io
import math
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit.assemble import from_toml, override, resolve
from gankit.config import SHARED, to_toml
from gankit.data.images import probe, read_image
from gankit.errors import GankitError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BASE = resolve("ring8")
KEYS = [f"{table}.{f.name}" for table, cls in SHARED.items() if table in BASE.shared for f in fields(cls)]


def one_line(e: GankitError) -> str:
    text = str(e)
    assert text and "\n" not in text
    return text


@SETTINGS
@given(key=st.sampled_from(KEYS), value=st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s))
def test_any_set_value_is_taken_or_refused_in_one_line(key, value):
    try:
        cfg = override(BASE, [f"{key}={value}"])
    except GankitError as e:
        assert key in one_line(e)
        return
    table, name = key.split(".")
    got = getattr(cfg.table(table), name)
    if isinstance(got, float):
        assert math.isfinite(got)   # NaN and Inf never get into a config


@SETTINGS
@given(item=st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s))
def test_any_set_item_is_taken_or_refused_in_one_line(item):
    try:
        override(BASE, [item])
    except GankitError as e:
        one_line(e)


def _value_of(f):
    """A strategy of values a field may hold: its declared range, its choices."""
    meta = f.metadata
    if meta.get("choices"):
        return st.sampled_from(list(meta["choices"]))
    default = f.default
    lo = meta.get("min") if meta.get("min") is not None else meta.get("above")
    hi = meta.get("max") if meta.get("max") is not None else meta.get("below")
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=(lo or 0) + (1 if meta.get("above") is not None else 0),
                           max_value=hi if hi is not None else 10 ** 6)
    if isinstance(default, float):
        return st.floats(min_value=lo if lo is not None else -1e6, max_value=hi if hi is not None else 1e6,
                         exclude_min=meta.get("above") is not None, exclude_max=meta.get("below") is not None,
                         allow_nan=False, allow_infinity=False)
    return None


NUMERIC = [(t, f) for t, cls in SHARED.items() if t in BASE.shared and t != "data" for f in fields(cls)
           if _value_of(f) is not None and f.name not in ("device", "recipe", "arch", "name")]


@SETTINGS
@given(data=st.data())
def test_valid_values_round_trip_through_the_run_config(data):
    """A value in its declared range is accepted, written to config.toml and read back unchanged."""
    table, f = data.draw(st.sampled_from(NUMERIC))
    v = data.draw(_value_of(f))
    text = str(v).lower() if isinstance(v, bool) else repr(v)
    try:
        cfg = override(BASE, [f"{table}.{f.name}={text}"])
    except GankitError as e:   # a rule across keys (the run's own check) may still refuse it, in one line
        one_line(e)
        return
    again = from_toml(to_toml(cfg), "config.toml")
    assert getattr(again.table(table), f.name) == getattr(cfg.table(table), f.name) == v


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_as_a_config_file_is_read_or_refused_in_one_line(text):
    try:
        from_toml(text, "c.toml")
    except GankitError as e:
        assert "c.toml" in one_line(e) or "." in one_line(e)


@SETTINGS
@given(table=st.sampled_from(list(SHARED)), key=st.text(min_size=1, max_size=12),
       value=st.one_of(st.integers(), st.floats(), st.text(max_size=10), st.booleans(),
                       st.lists(st.integers(), max_size=3)))
def test_any_toml_table_and_value_is_taken_or_refused_in_one_line(table, key, value):
    import json

    literal = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else \
        ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    text = f"[{table}]\n{json.dumps(key)} = {literal}\n"
    try:
        from_toml(text, "c.toml")
    except GankitError as e:
        one_line(e)


def _png(seed: int, mode: str) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((12, 9, 3)) * 255).astype(np.uint8)).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image_path(tmp_path):
    return tmp_path / "x.png"


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_as_an_image_decode_or_fail_in_one_line(image_path, data):
    image_path.write_bytes(data)
    _decode_or_one_line(image_path)


@SETTINGS
@given(seed=st.integers(0, 3), mode=st.sampled_from(["RGB", "L", "P", "RGBA", "1"]),
       cuts=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=6),
       keep=st.floats(0.05, 1.0))
def test_damaged_png_files_decode_or_fail_in_one_line(image_path, seed, mode, cuts, keep):
    """A real PNG with bytes changed and its tail cut: the loader's answer is an image or one line."""
    data = bytearray(_png(seed, mode))
    for pos, byte in cuts:
        data[pos % len(data)] = byte
    image_path.write_bytes(bytes(data[: max(1, int(len(data) * keep))]))
    _decode_or_one_line(image_path)


def _decode_or_one_line(path):
    try:
        mode, (w, h) = probe(str(path))
        for channels in (1, 3):
            a = read_image(str(path), 8, channels)
            assert a.shape == (channels, 8, 8) and a.dtype == np.uint8
    except GankitError as e:
        assert str(path) in one_line(e)
        return
    assume(w > 0 and h > 0)
