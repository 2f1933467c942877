"""JSON without the json package's import cost.

`import json` pulls in `re` and `enum` (~10 ms here, a third of runc's whole `run`). The C
accelerator `_json` that json itself uses has a scanner and a string encoder; this module
drives them directly. On a parse error it defers to the json package, which is only imported
then, so the message (line and column) is the standard one.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context)  # type: ignore[arg-type]  # duck-typed context


def loads(text: str | bytes | bytearray) -> Any:
    if isinstance(text, (bytes, bytearray)):
        if text[:3] == b"\xef\xbb\xbf" or b"\x00" in text[:4]:
            # A BOM or UTF-16/32: json detects the encoding; rare enough to pay its import.
            import json

            return json.loads(text)
        # As json.loads does for UTF-8 bytes: lone surrogates written as UTF-8 survive.
        text = text.decode("utf-8", "surrogatepass")
    end = len(text)
    i = 0
    while i < end and text[i] in _WS:
        i += 1
    try:
        obj, j = _scan(text, i)
    except (StopIteration, ValueError, SystemError):
        # SystemError: without json.decoder imported, _json cannot build its own error
        obj, j = None, -1
    if j >= 0:
        while j < end and text[j] in _WS:
            j += 1
        if j == end:
            return obj
    import json  # the error path only: json builds the message with line and column

    return json.loads(text)


_encode_str = _json.encode_basestring_ascii


def _float(obj: float) -> str:
    # Not JSON, so never written (json.dumps would write NaN): null, as JavaScript does.
    if obj != obj or obj in (float("inf"), float("-inf")):
        return "null"
    return float.__repr__(obj)


def _key(k: object) -> str:
    """A dict key as json.dumps writes it: True -> "true", 1.5 -> "1.5", None -> "null"."""
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    if isinstance(k, float):
        if k != k:
            return "NaN"
        if k in (float("inf"), float("-inf")):
            return "Infinity" if k > 0 else "-Infinity"
        return float.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def dumps(obj: Any, indent: int | None = None) -> str:
    parts: list[str] = []
    _emit(obj, parts, indent, 0)
    return "".join(parts)


def _emit(obj: Any, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(obj, str):
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        out.append("{")
        pad = "\n" + " " * (indent * (level + 1)) if indent is not None else ""
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(pad)
            out.append(_encode_str(_key(k)))
            out.append(": " if indent is not None else ":")
            _emit(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + " " * (indent * level))
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        out.append("[")
        pad = "\n" + " " * (indent * (level + 1)) if indent is not None else ""
        for n, v in enumerate(obj):
            if n:
                out.append(",")
            out.append(pad)
            _emit(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + " " * (indent * level))
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")
