"""Escape 2 of issue 10 (the CVE-2021-41091 shape): what a box or an image writes must not be
reachable by the host's unprivileged users.

A box's writable layer and the image store hold files owned by host root, setuid ones
included; records hold a box's environment (passwords passed with -e). Each test puts its
state and data roots under a world-traversable directory, as /run and /var/lib are, then
tries, as `nobody`, what a local user would: run the setuid file, read the record.
(pytest's own tmp_path is 0700, which would hide the very hole these tests look for.)
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TB, tb_at, unique

pytestmark = pytest.mark.root

# setpriv execs its program with the caller's capabilities still in force, so the program is
# started by a shell that already runs as nobody: what a local user's own exec would do.
NOBODY = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
    "sh",
    "-c",
    'exec "$@"',
    "-",
]


@pytest.fixture
def open_tb() -> Iterator[TB]:
    """A TB whose roots sit in a 0755 directory, so only tuibox's own modes protect them."""
    top = Path(tempfile.mkdtemp(prefix="tuibox-perm-", dir="/tmp"))
    top.chmod(0o755)
    try:
        with tb_at(top / "state", top / "data", top) as t:
            yield t
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(top)], check=False)


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, *argv], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_root_box_dir_and_records_are_private(open_tb: TB) -> None:
    name = unique("perm")
    open_tb("run", "-d", "--image", "busybox", "-e", "DB_PASSWORD=hunter2", name, "sleep", "60")
    box = open_tb.root / name
    assert mode(open_tb.root) == 0o700
    assert mode(box) == 0o700
    state = box / "state.json"
    assert "hunter2" in state.read_text()  # the secret is there to be protected
    assert mode(state) == 0o600
    # the log is on disk, beside the writable layer, just as private
    assert mode(open_tb.layer(name)) == 0o700
    assert mode(open_tb.layer(name) / "box.log") == 0o600
    # As a local user: neither listing the root nor reading the record.
    assert as_nobody("cat", str(state)).returncode != 0
    assert as_nobody("ls", str(open_tb.root)).returncode != 0


def test_setuid_file_made_in_a_box_is_out_of_reach(open_tb: TB) -> None:
    name = unique("perm")
    # Box root makes a setuid-root copy of busybox in its writable layer.
    open_tb(
        "run",
        "-d",
        "--image",
        "busybox",
        name,
        "sh",
        "-c",
        "cp /bin/busybox /suid && chmod 4755 /suid && touch /made && sleep 60",
    )
    upper = open_tb.layer(name) / "upper"
    made = upper / "made"
    for _ in range(200):
        if made.exists():
            break
        subprocess.run(["sleep", "0.05"], check=True)
    suid = upper / "suid"
    st = suid.stat()
    assert st.st_uid == 0 and st.st_mode & stat.S_ISUID, "the box did not make the setuid file"
    # What a local user would try: run it, or even see it.
    run = as_nobody(str(suid), "true")
    assert run.returncode != 0
    assert "ermission denied" in run.stderr
    assert as_nobody("stat", str(suid)).returncode != 0


def test_setuid_file_of_an_image_is_out_of_reach(open_tb: TB, tmp_path: Path) -> None:
    # An image that ships a setuid-root file (any docker image may).
    tar_path = tmp_path / "suid.tar"
    with tarfile.open(tar_path, "w") as tar:
        data = b"#!/bin/sh\necho hi\n"
        info = tarfile.TarInfo("bin/suid")
        info.size = len(data)
        info.mode = 0o4755
        tar.addfile(info, io.BytesIO(data))
    img = unique("img")
    open_tb("image", "import", str(tar_path), img)
    suid = open_tb.data_root / "images" / img / "rootfs" / "bin" / "suid"
    st = suid.stat()
    assert st.st_uid == 0 and st.st_mode & stat.S_ISUID
    assert as_nobody("stat", str(suid)).returncode != 0
    assert mode(open_tb.data_root / "images") == 0o700
    open_tb("image", "rm", img)


def test_an_older_world_traversable_image_store_is_made_private(open_tb: TB) -> None:
    # A store left by an earlier tuibox (0711) is tightened on first use, not trusted as is.
    open_tb("image", "ls")  # builds nothing; makes sure the data root exists
    images = open_tb.data_root / "images"
    images.mkdir(parents=True, exist_ok=True)
    os.chmod(images, 0o711)
    name = unique("perm")
    open_tb("run", "--image", "busybox", name, "true")
    assert mode(images) == 0o700
