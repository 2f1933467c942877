"""A detached box's log (issue 12): on the data root, not the state root; capped by
--log-max-size and rotated to box.log.1; the last line before exit kept; a full log disk never
stalls the program nor loses its exit status; destroy, destroy --force and gc remove it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TB, tb_at, unique

pytestmark = pytest.mark.root

MIB = 1 << 20
# 30000 numbered lines of 100 bytes (~3 MB), then LAST: busybox sh, no image needed
CHATTY = 'i=0; while [ $i -lt 30000 ]; do printf "%05d %094d\\n" $i 0; i=$((i+1)); done; echo LAST'
# ~20 lines every 50 ms (100 KB/s): a follower sees several rotations of a 64 KiB log
STEADY = (
    "i=0; while [ $i -lt 1600 ]; do j=0; while [ $j -lt 20 ]; do "
    'printf "%05d %094d\\n" $i 0; i=$((i+1)); j=$((j+1)); done; sleep 0.05; done; echo LAST'
)


def log_files(tb: TB, name: str) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in tb.layer(name).iterdir()}


def numbers(text: str) -> list[int]:
    return [int(line[:5]) for line in text.splitlines() if line[:5].isdigit()]


def test_capped_rotated_followed_and_removed(tb: TB, make_bundle: Callable[..., Path]) -> None:
    steady, chatty, tty = unique("follow"), unique("cap"), unique("tty")
    tb(
        "run",
        "-d",
        "--log-max-size",
        "64k",
        "--bundle",
        str(make_bundle(["sh", "-c", STEADY])),
        steady,
    )
    follower = subprocess.Popen(tb.argv("logs", "-f", steady), stdout=subprocess.PIPE, text=True)
    bundle = make_bundle(["sh", "-c", CHATTY])
    tb("run", "-d", "--log-max-size", "1m", "--bundle", str(bundle), chatty)
    tb("run", "-d", "-t", "--log-max-size", "2k", "--bundle", str(bundle), tty)
    for name in (chatty, tty):
        assert tb("wait", name, timeout=120).stdout == "0\n"

    # at most 2x the cap, in two files, the newest output last, the line before exit kept
    sizes = log_files(tb, chatty)
    assert set(sizes) == {"box.log", "box.log.1"}
    assert sizes["box.log.1"] == MIB and sizes["box.log"] <= MIB, sizes
    out = tb("logs", chatty).stdout
    assert out.endswith("29999 " + "0" * 94 + "\nLAST\n")
    got = numbers(out.partition("\n")[2])  # the first line may be cut by the rotation
    assert got == list(range(got[0], 30000)) and len(out) == sum(sizes.values())
    # where it lives: the data root (the record says so), nothing of it in the state root
    (row,) = [r for r in json.loads(tb("list", "--format", "json").stdout) if r["id"] == chatty]
    assert row["log"] == str(tb.layer(chatty) / "box.log")
    assert not [p for p in tb.root.rglob("box.log*")]

    # a terminal box: its keeper caps the log the same way
    sizes = log_files(tb, tty)
    assert sizes["box.log.1"] == 2048 and sizes["box.log"] <= 2048, sizes
    assert tb("logs", tty).stdout.replace("\r", "").endswith("29999 " + "0" * 94 + "\nLAST\n")

    # `logs -f` across rotations: every line once, in order, up to the last
    text, _ = follower.communicate(timeout=120)
    assert follower.returncode == 0
    followed = numbers(text)
    assert followed == list(range(1600)) and text.endswith("LAST\n")
    assert log_files(tb, steady)["box.log.1"] == 64 * 1024

    for name in (steady, chatty, tty):
        tb("destroy", name)
        assert not tb.layer(name).exists()


def test_bad_log_max_size_is_one_line_and_leaves_nothing(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["true"]))
    for value in ("abc", "-5k", "1.5.2m", ""):
        for verb in (("create",), ("run", "-d")):
            line = tb.fails(*verb, "--log-max-size", value, "--bundle", bundle, unique("bad"))
            assert f"--log-max-size {value!r}: not a size" in line
    assert tb.names() == []
    assert not (tb.data_root / "boxes").exists() or not any((tb.data_root / "boxes").iterdir())


def test_no_cap_and_orphaned_or_unreadable_log_dirs_go(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["sh", "-c", CHATTY]))
    uncapped, orphan, damaged = unique("nocap"), unique("orph"), unique("dmg")
    tb("run", "-d", "--log-max-size", "-1", "--bundle", bundle, uncapped)
    assert tb("wait", uncapped, timeout=120).stdout == "0\n"
    assert log_files(tb, uncapped) == {"box.log": 30000 * 101 + 5}  # one file, all of it

    # a box dir deleted behind tuibox's back: gc finds its log dir (and cgroup) by name
    tb("run", "-d", "--bundle", bundle, orphan)
    tb("wait", orphan, timeout=120)
    subprocess.run(["rm", "-rf", str(tb.root / orphan)], check=True)
    items = json.loads(tb("gc", "--format", "json").stdout)["items"]
    assert {"kind": "layer", "box": orphan, "path": str(tb.layer(orphan)), "action": "remove"} in (
        items
    )
    tb("gc", "--yes")
    assert not tb.layer(orphan).exists()

    # an unreadable record: destroy --force derives the log dir from the name and the roots
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "60"])), damaged)
    (tb.root / damaged / "state.json").write_bytes(b"garbage")
    assert tb.layer(damaged).is_dir()
    tb("destroy", "--force", damaged)
    assert not tb.layer(damaged).exists()


@pytest.fixture
def tiny_data(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs as the data root: the log's disk fills at once."""
    mnt = tmp_path / "tinydata"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], check=True
    )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_log_disk_neither_stalls_the_program_nor_loses_its_exit(
    tmp_path: Path, tiny_data: Path, make_bundle: Callable[..., Path]
) -> None:
    # head's writes succeed (the pump takes them) so it exits 3; writing to the full disk
    # itself it would fail (exit 4), and a pump that waited for room would never end
    program = "head -c 20000000 /dev/zero && echo done && exit 3; exit 4"
    with tb_at(tmp_path / "state", tiny_data, tmp_path) as tb:
        name = unique("full")
        started = time.monotonic()
        tb(
            "run",
            "-d",
            "--log-max-size",
            "-1",
            "--bundle",
            str(make_bundle(["sh", "-c", program])),
            name,
        )
        assert tb("wait", name, timeout=60).stdout == "3\n"
        assert time.monotonic() - started < 20
        assert 0 < tb.layer(name).joinpath("box.log").stat().st_size <= 64 * 1024
        assert tb("logs", name).stdout.startswith("\0")
        tb("destroy", name)
        assert not tb.layer(name).exists()


def test_a_create_killed_after_making_the_log_dir_leaves_nothing(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["sleep", "60"]))
    for point, recover in (("confine", "destroy"), ("fork", "gc"), ("ready", "destroy")):
        name = unique("fault")
        env_run = subprocess.run(
            tb.argv("run", "-d", "--bundle", bundle, name),
            env={**os.environ, "TUIBOX_FAULT": point},
            capture_output=True,
            timeout=60,
        )
        assert env_run.returncode == -9, env_run
        assert tb.layer(name).is_dir()  # made, named in the first record
        if recover == "destroy":
            tb("destroy", "--force", name)
        else:
            tb("gc", "--yes")
        assert not tb.layer(name).exists(), point
