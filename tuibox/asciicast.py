"""Terminal sessions as asciicast v2 files (what `asciinema rec` writes, `asciinema play` reads).

A header line (a JSON object: version 2, width, height, timestamp, env), then one JSON array per
event: `[seconds since the start, "o", text]` for output, "i" for typed input, "r" with
"COLSxROWS" for a resize. Standard library only: the CLI (`exec --record`, `attach --record`)
and the TUI's panes both write through `CastWriter`, and the TUI's player reads with `read_cast`.

Output is decoded as UTF-8 incrementally, so a character split across two reads is written
whole in the second event (asciicast events hold text, not bytes).
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

# Printed as-is by players; kept small (asciinema records SHELL and TERM).
_ENV_KEYS = ("SHELL", "TERM")


class CastError(ValueError):
    """A file that is not an asciicast v2 recording (the message names the file and line)."""


class CastHeader(NamedTuple):
    width: int
    height: int
    timestamp: int
    title: str
    env: dict[str, str]


class CastEvent(NamedTuple):
    time: float
    kind: str  # "o", "i", "r" or "m"
    data: str


class CastWriter:
    """Appends events to an asciicast v2 file as they happen; `close` when done.

    The file is created 0600 (a recording holds whatever the session showed) and written
    line by line without buffering, so a crash loses at most the event being written."""

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        *,
        title: str | None = None,
        env: dict[str, str] | None = None,
        term: str = "xterm-256color",
    ) -> None:
        self.path = path
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600
        )
        self._start = time.monotonic()
        self._decoders = {
            "o": codecs.getincrementaldecoder("utf-8")("replace"),
            "i": codecs.getincrementaldecoder("utf-8")("replace"),
        }
        if env is None:
            env = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
            env["TERM"] = term
        header: dict[str, Any] = {
            "version": 2,
            "width": max(1, int(width)),
            "height": max(1, int(height)),
            "timestamp": int(time.time()),
            "env": env,
        }
        if title:
            header["title"] = title
        self._line(header)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def _line(self, obj: object) -> None:
        fd = self._fd
        if fd is None:
            return
        data = (json.dumps(obj, ensure_ascii=False) + "\n").encode()
        while data:
            data = data[os.write(fd, data) :]

    def _event(self, kind: str, text: str) -> None:
        if text:
            self._line([round(self.elapsed(), 6), kind, text])

    def output(self, data: bytes) -> None:
        """What the program wrote to the terminal."""
        self._event("o", self._decoders["o"].decode(data))

    def input(self, data: bytes) -> None:
        """What the user typed (optional in the format; players ignore it)."""
        self._event("i", self._decoders["i"].decode(data))

    def resize(self, rows: int, columns: int) -> None:
        self._event("r", f"{columns}x{rows}")

    def close(self) -> None:
        if self._fd is None:
            return
        self._event("o", self._decoders["o"].decode(b"", final=True))
        fd, self._fd = self._fd, None
        os.close(fd)


def read_cast(path: str) -> tuple[CastHeader, list[CastEvent]]:
    """A recording's header and events. Raises `CastError` (or OSError) on a bad file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if not lines:
        raise CastError(f"{path}: empty file, not an asciicast recording")
    head = _json(path, 1, lines[0])
    if not isinstance(head, dict) or head.get("version") != 2:
        raise CastError(f"{path}: not an asciicast v2 file (no version 2 header)")
    try:
        width, height = int(head["width"]), int(head["height"])
    except (KeyError, TypeError, ValueError):
        raise CastError(f"{path}: header without a width and height") from None
    env = head.get("env")
    header = CastHeader(
        width,
        height,
        int(head.get("timestamp") or 0),
        str(head.get("title") or ""),
        {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
    )
    return header, list(_events(path, lines))


def _events(path: str, lines: list[str]) -> Iterator[CastEvent]:
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        item = _json(path, number, line)
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], int | float)
            or not isinstance(item[1], str)
            or not isinstance(item[2], str)
        ):
            raise CastError(f"{path}:{number}: not an event [time, kind, data]")
        yield CastEvent(float(item[0]), item[1], item[2])


def _json(path: str, number: int, line: str) -> object:
    try:
        return json.loads(line)
    except ValueError as e:
        raise CastError(f"{path}:{number}: invalid JSON ({e})") from None


def recording_name(box: str, mode: str, when: float | None = None) -> str:
    """A file name for a pane's recording: `<box>-<mode>-<UTC time>.cast`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    return f"{box}-{mode}-{stamp}.cast"
