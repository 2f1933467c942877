"""Records are whole or absent (issue 12, item 1): a full state disk must not replace a good
state.json with a truncated one. Runs on a real, tiny tmpfs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

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
