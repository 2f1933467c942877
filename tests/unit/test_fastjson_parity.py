"""fastjson against the json module on a generated corpus (seeded, so failures replay).

fastjson drives json's private C scanner and string encoder; these tests pin that it reads
and writes exactly what json does, and fails (ValueError) where json fails. The one chosen
difference: dumps writes a non-finite float as null (json writes NaN, which is not JSON).
Its compact form has no spaces: json.dumps with separators=(",", ":").
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from tuibox.runtime import fastjson

SEEDS = range(12)
CHARS = 'abcxyz0189 _-./:"\\/\b\f\n\r\t\x00\x01\x1f\x7féßü€中文😀\u2028\u2029\ufeff\ud800\udfff'


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))


def _scalar(rng: random.Random, finite: bool) -> Any:
    pick = rng.randint(0, 9)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randint(-(2**70), 2**70)
    if pick == 3:
        return int("9" * rng.randint(1, 4000)) * rng.choice((1, -1))  # big, under 4300 digits
    if pick == 4:
        return rng.choice((0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, 0.1, 1e22))
    if pick == 5:
        return rng.uniform(-1e6, 1e6) * 10.0 ** rng.randint(-30, 30)
    if pick == 6 and not finite:
        return rng.choice((math.nan, math.inf, -math.inf))
    return _text(rng)


def _value(rng: random.Random, depth: int = 0, finite: bool = True) -> Any:
    if depth > 4 or rng.random() < 0.4:
        return _scalar(rng, finite)
    if rng.random() < 0.5:
        return [_value(rng, depth + 1, finite) for _ in range(rng.randint(0, 5))]
    return {_text(rng): _value(rng, depth + 1, finite) for _ in range(rng.randint(0, 5))}


def _ref(value: Any, indent: int | None = None) -> str:
    """What json writes for what fastjson.dumps should write."""
    if indent is None:
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value, indent=indent)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and -0.0 told from 0.0 (repr does both, types too)."""
    return type(a) is type(b) and repr(a) == repr(b)


def _corpus(seed: int, finite: bool = True) -> list[Any]:
    rng = random.Random(seed)
    return [_value(rng, finite=finite) for _ in range(150)]


@pytest.mark.parametrize("seed", SEEDS)
def test_loads_matches_json(seed: int) -> None:
    for value in _corpus(seed, finite=False):
        for text in (
            json.dumps(value),
            json.dumps(value, indent=2),
            json.dumps(value, ensure_ascii=False),
            "  \n\t" + json.dumps(value, separators=(",", ":")) + "\r\n ",
        ):
            assert _same(fastjson.loads(text), json.loads(text)), text
            raw = text.encode("utf-8", "surrogatepass")
            assert _same(fastjson.loads(raw), json.loads(raw)), raw


@pytest.mark.parametrize("seed", SEEDS)
def test_dumps_matches_json_and_round_trips(seed: int) -> None:
    for value in _corpus(seed):
        assert fastjson.dumps(value) == _ref(value)
        assert fastjson.dumps(value, indent=2) == _ref(value, 2)
        assert fastjson.dumps(value, indent=0) == _ref(value, 0)
        # As json's own round trip (a lone high then low surrogate reads back as one pair).
        assert _same(fastjson.loads(fastjson.dumps(value)), json.loads(json.dumps(value)))


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        op = rng.randint(0, 2)
        at = rng.randint(0, len(chars))
        noise = rng.choice('{}[],:"\\ 0-1.eE+tfnNI\x00\x1fa')
        if op == 0 and chars and at < len(chars):
            del chars[at]
        elif op == 1:
            chars.insert(at, noise)
        elif chars and at < len(chars):
            chars[at] = noise
    return "".join(chars)


@pytest.mark.parametrize("seed", SEEDS)
def test_broken_documents_fail_like_json(seed: int) -> None:
    rng = random.Random(1000 + seed)
    failures = 0
    for value in _corpus(seed, finite=False):
        text = _mutate(rng, json.dumps(value))
        try:
            expected = json.loads(text)
        except ValueError as e:
            failures += 1
            with pytest.raises(ValueError) as got:
                fastjson.loads(text)
            # The error path is json's own: same class, same line and column.
            assert type(got.value) is type(e) and str(got.value) == str(e), text
            continue
        assert _same(fastjson.loads(text), expected), text
    assert failures > 20  # the mutations do produce broken documents


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{",
        "[1,]",
        '{"a":1,}',
        "{'a': 1}",
        "nul",
        "True",
        "nan",
        "-NaN",
        "+1",
        "01",
        "1.",
        ".5",
        "1e",
        '"\\x41"',
        '"\\u12"',
        '"a\nb"',
        '"tab\there"',
        "[1] [2]",
        "1 2",
        "\ufeff[1]",
        "1" * 5000,
        "{1: 2}",
        '{"a" 1}',
        "[" * 10 + "]" * 9,
    ],
)
def test_invalid_documents_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ValueError) as got:
        fastjson.loads(text)
    assert str(got.value) == str(expected.value)


def test_specials_read_like_json() -> None:
    text = '{"a": NaN, "b": Infinity, "c": -Infinity, "a": 2, "big": 123456789012345678901234}'
    assert _same(fastjson.loads(text), json.loads(text))
    assert fastjson.loads(text)["a"] == 2  # duplicate keys: the last one wins, as in json
    assert math.isnan(fastjson.loads("NaN"))
    # Escapes, surrogate pairs, and a lone surrogate, all as json reads them.
    for doc in ('"\\ud83d\\ude00"', '"\\ud800"', '"\\u0000\\"\\\\\\/\\b\\f\\n\\r\\t"'):
        assert _same(fastjson.loads(doc), json.loads(doc))


def test_bytes_in_every_encoding_json_reads() -> None:
    value = {"k": ["é", 1, None]}
    text = json.dumps(value)
    for raw in (
        text.encode("utf-8-sig"),
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        text.encode("utf-32-be"),
        bytearray(text.encode()),
    ):
        assert fastjson.loads(raw) == json.loads(raw) == value
    with pytest.raises(ValueError):
        fastjson.loads(b'"\xff"')


def test_keys_are_written_like_json() -> None:
    keys = {True: 1, False: 2, None: 3, 7: 4, -1.5: 5, "s": 6, math.inf: 7, math.nan: 8}
    assert fastjson.dumps(keys) == _ref(keys)
    assert fastjson.dumps(keys, indent=1) == _ref(keys, 1)
    with pytest.raises(TypeError):
        fastjson.dumps({(1, 2): 3})
    with pytest.raises(TypeError):
        fastjson.dumps({"a": {1, 2}})


def test_non_finite_floats_are_written_as_null() -> None:
    # The chosen difference from json.dumps (which writes NaN, not JSON, and json.dumps with
    # allow_nan=False raises): state files and --format json stay readable by any parser.
    assert fastjson.dumps([math.nan, math.inf, -math.inf]) == "[null,null,null]"
    assert json.loads(fastjson.dumps({"x": math.nan})) == {"x": None}


def test_tuples_and_subclasses_like_json() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    value = {"t": (1, (2,)), "e": Level.HIGH, "f": 2.5}
    assert fastjson.dumps(value) == _ref(value)
