"""The capped log's rotation and full-disk drops, the reader across rotations, and the
monitor's pump on a real child process. No root needed."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from tuibox.runtime.logfile import CappedLog, read_log
from tuibox.runtime.process.logpump import Pump


def files(tmp_path: Path) -> tuple[bytes, bytes]:
    log, old = tmp_path / "box.log", tmp_path / "box.log.1"
    return (old.read_bytes() if old.exists() else b""), log.read_bytes()


def test_rotation_keeps_two_files_each_under_the_cap(tmp_path: Path) -> None:
    log = CappedLog(str(tmp_path / "box.log"), 100)
    stream = bytes(i % 251 for i in range(1000))
    for i in range(0, 1000, 37):  # chunks that never line up with the cap
        log.write(stream[i : i + 37])
    log.close()
    old, new = files(tmp_path)
    assert len(old) == 100 and len(new) == 100
    assert old + new == stream[-200:]  # box.log.1 then box.log: the output as written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.log", "box.log.1"]


def test_one_write_larger_than_the_cap_is_cut_at_the_cap(tmp_path: Path) -> None:
    log = CappedLog(str(tmp_path / "box.log"), 10)
    log.write(b"abcdefghijKLMNOPQRSTuvwxy")
    old, new = files(tmp_path)
    assert (old, new) == (b"KLMNOPQRST", b"uvwxy")


def test_no_cap_never_rotates(tmp_path: Path) -> None:
    for cap in (-1, 0):
        path = tmp_path / f"cap{cap}"
        path.mkdir()
        log = CappedLog(str(path / "box.log"), cap)
        for _ in range(50):
            log.write(b"x" * 1000)
        log.close()
        assert [p.name for p in path.iterdir()] == ["box.log"]
        assert (path / "box.log").stat().st_size == 50_000


def test_an_existing_log_counts_towards_the_cap(tmp_path: Path) -> None:
    (tmp_path / "box.log").write_bytes(b"12345678")
    log = CappedLog(str(tmp_path / "box.log"), 10)
    log.write(b"abcd")
    assert files(tmp_path) == (b"12345678ab", b"cd")


class FullDisk(CappedLog):
    """write(2) on a disk with `room` bytes left (None: plenty): a short count, then ENOSPC."""

    __slots__ = ("room",)

    def __init__(self, path: str, max_size: int) -> None:
        self.room: int | None = None
        super().__init__(path, max_size)

    def _write(self, fd: int, data: memoryview) -> int:
        if self.room is None:
            return os.write(fd, data)
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.write(fd, data[: self.room])
        self.room -= n
        return n


def test_a_full_disk_drops_and_counts_then_says_so(tmp_path: Path) -> None:
    log = FullDisk(str(tmp_path / "box.log"), -1)
    log.write(b"before\n")
    log.room = 3
    log.write(b"lost-one\n")  # 3 bytes made it, 6 did not
    log.write(b"lost-two\n")  # nor the note saying so
    assert log.lost == 6 + 9 and log.dropped == 15
    log.room = None
    log.write(b"after\n")
    log.close()
    text = (tmp_path / "box.log").read_bytes()
    assert text == (
        b"before\nlos\n[tuibox: 15 bytes of output lost: the log could not be written]\nafter\n"
    )
    assert log.lost == 15 and log.dropped == 0


def test_a_log_that_cannot_be_opened_drops_without_raising(tmp_path: Path) -> None:
    log = CappedLog(str(tmp_path / "gone" / "box.log"), 10)
    log.write(b"x" * 25)
    assert log.lost == 25


def test_reader_gives_rotated_then_current_and_follows_rotations(tmp_path: Path) -> None:
    path = str(tmp_path / "box.log")
    log = CappedLog(path, 10)
    log.write(b"0123456789abcde")  # box.log.1 = 0..9, box.log = abcde
    assert b"".join(read_log(path)) == b"0123456789abcde"
    running = [True]
    reader = read_log(path, follow=True, running=lambda: running[0], poll=0.01)
    assert b"".join(next(reader) for _ in range(2)) == b"0123456789abcde"
    # two rotations before the reader looks again: the file in between is not skipped
    log.write(b"fghijKLMNOPQRSTuv")
    running[0] = False
    assert b"".join(reader) == b"fghijKLMNOPQRSTuv"


def test_reader_without_any_log_raises(tmp_path: Path) -> None:
    reader = read_log(str(tmp_path / "box.log"))
    try:
        next(reader)
    except FileNotFoundError:
        return
    raise AssertionError("no FileNotFoundError")


def test_pump_keeps_the_last_line_written_before_exit(tmp_path: Path) -> None:
    r, w = os.pipe2(os.O_CLOEXEC)
    program = (
        "import os\n"
        "for i in range(20000): os.write(1, b'line %05d ' % i + b'x' * 40 + b'\\n')\n"
        "os.write(1, b'LAST\\n'); os._exit(3)\n"
    )
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-c", program],
        dict(os.environ),
        file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)],
    )
    os.close(w)
    pump = Pump(r, str(tmp_path / "box.log"), 200_000)
    status = pump.until_exit(pid)
    assert os.waitstatus_to_exitcode(status) == 3
    old, new = files(tmp_path)  # before to_end: the drain already got everything
    assert new.endswith(b"line 19999 " + b"x" * 40 + b"\nLAST\n")
    assert len(old) == 200_000 and len(new) <= 200_000
    pump.to_end()
    assert files(tmp_path) == (old, new)


def test_the_runtime_default_data_root_is_the_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.images.store import default_data_root

    monkeypatch.delenv("TUIBOX_DATA", raising=False)
    assert Runtime("/tmp/x")._data_root() == default_data_root() == "/var/lib/tuibox"
    monkeypatch.setenv("TUIBOX_DATA", "/tmp/elsewhere")
    assert Runtime("/tmp/x")._data_root() == default_data_root() == "/tmp/elsewhere"
    assert Runtime("/tmp/x", "/tmp/given")._data_root() == "/tmp/given"
