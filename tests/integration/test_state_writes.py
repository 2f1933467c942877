"""Records are whole or absent (issue 12, item 1): a full state disk must not replace a good
state.json with a truncated one. Runs on a real, tiny tmpfs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TB, unique
from tuibox.runtime.state import atomic_write

pytestmark = pytest.mark.root


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def fill(fs: Path, leave: int) -> None:
    """Fill the file system, then free `leave` bytes: a bigger write is then cut short."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(fs / "filler", os.path.getsize(fs / "filler") - leave)


def test_a_full_disk_leaves_the_old_record_whole(small_fs: Path) -> None:
    record = small_fs / "state.json"
    old = b'{"id": "a", "status": "running"}\n'
    atomic_write(str(record), old)
    fill(small_fs, 8192)
    error = ""
    try:
        atomic_write(str(record), b"{" + b'"k": "v", ' * 2000 + b"}")
    except OSError as e:
        error = str(e)
    assert record.read_bytes() == old
    assert "cannot write" in error and "no space left" in error, error
    # No temp file is left to fill the disk further.
    assert sorted(os.listdir(small_fs)) == ["filler", "state.json"]


# ---- which writes are fsync'ed (docs/RELIABILITY.md, "What an fsync is for") -------------

FSYNC_PROBE = """
import os, sys
synced = []
real = os.fsync
def counting(fd):
    synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).split(".")[0])
    real(fd)
os.fsync = counting
from tuibox.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\nSYNCED", code, " ".join(synced))
"""


def _fsyncs(tb: TB, *args: str) -> list[str]:
    """The files (name before the first dot: temp files are `state.json.<pid>.tmp`) the CLI
    process itself fsync'ed while running `args` (its forks, the monitor, count apart)."""
    # Files, not pipes: an engine-mode box keeps the CLI's stdio for itself.
    out, err = tb.root.parent / "probe.out", tb.root.parent / "probe.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.run(
            [sys.executable, "-c", FSYNC_PROBE, *tb.argv(*args)[3:]],
            stdout=o,
            stderr=e,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 0, err.read_text()
    line = next(ln for ln in out.read_text().splitlines() if ln.startswith("SYNCED "))
    _, code, *files = line.split(" ")
    assert code == "0", err.read_text()
    return [f for f in files if f]


def test_fsync_only_what_must_survive_a_power_cut(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    # A foreground run's box dies with its CLI: none of its records is worth an fsync.
    assert _fsyncs(tb, "run", "--bundle", str(make_bundle(["true"])), unique()) == []
    # --keep: the box outlives the run, so its exit status is durable.
    kept = unique()
    assert _fsyncs(tb, "run", "--keep", "--bundle", str(make_bundle(["true"])), kept) == ["exit"]
    # A detached box outlives the CLI: every record is durable.
    name = unique()
    bundle = make_bundle(["sleep", "100"])
    assert _fsyncs(tb, "create", "--bundle", str(bundle), name) == ["state", "state", "state"]
    # An engine's box (its create given runc's --pid-file) is never started again and dies
    # with a power loss: neither its records nor its pid file are synced (as runc).
    engine, pid_file = unique(), tmp_path / "pid"
    synced = _fsyncs(tb, "create", "--pid-file", str(pid_file), "--bundle", str(bundle), engine)
    assert synced == []
    assert int(pid_file.read_text()) == tb.state(engine)["pid"]
    tb("destroy", "-f", name, engine)
    tb("destroy", kept)
