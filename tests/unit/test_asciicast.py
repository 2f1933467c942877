"""The asciicast v2 writer and reader (tuibox/asciicast.py), on files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuibox.asciicast import CastError, CastWriter, read_cast, recording_name


def test_events_round_trip_and_split_characters_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    w = CastWriter(str(path), 100, 30, title="t", env={"TERM": "xterm"})
    euro = "€".encode()
    w.output(b"hi " + euro[:1])  # a character cut between two reads
    w.output(euro[1:] + b"\r\n")
    w.input(b"ls\r")
    w.resize(40, 120)
    w.close()
    w.output(b"after close is ignored")
    header, events = read_cast(str(path))
    assert (header.width, header.height, header.title, header.env) == (
        100,
        30,
        "t",
        {"TERM": "xterm"},
    )
    assert [(e.kind, e.data) for e in events] == [
        ("o", "hi "),
        ("o", "€\r\n"),
        ("i", "ls\r"),
        ("r", "120x40"),
    ]
    times = [e.time for e in events]
    assert times == sorted(times)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["version"] == 2 and isinstance(first["timestamp"], int)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty file"),
        ('{"version": 1}\n', "not an asciicast v2"),
        ('{"version": 2}\n', "width and height"),
        ('{"version": 2, "width": 80, "height": 24}\n[1, "o"]\n', ":2: not an event"),
        ('{"version": 2, "width": 80, "height": 24}\n{oops\n', ":2: invalid JSON"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.cast"
    path.write_text(text)
    with pytest.raises(CastError, match=words):
        read_cast(str(path))


def test_recording_name_is_box_mode_and_utc_time() -> None:
    assert recording_name("web", "shell", 0) == "web-shell-19700101T000000Z.cast"
