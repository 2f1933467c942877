"""`exec --record` and `attach --record` on the real kernel: the session as an asciicast v2
file that Debian's `asciinema cat` accepts and prints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pexpect
import pytest

from tests.conftest import TB, unique

pytestmark = pytest.mark.root

needs_asciinema = pytest.mark.skipif(
    shutil.which("asciinema") is None, reason="asciinema not installed (scripts/setup.sh)"
)


def cast_lines(path: Path) -> tuple[dict[str, object], list[list[object]]]:
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def asciinema_cat(path: Path) -> str:
    # asciinema opens /dev/tty even to print: give it a terminal of its own.
    child = pexpect.spawn("asciinema", ["cat", str(path)], encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


@needs_asciinema
def test_exec_and_attach_record_what_the_session_showed(
    tb: TB, busybox_rootfs: Path, tmp_path: Path
) -> None:
    name = unique("rec")
    tb("run", "-d", "-t", "--rootfs", str(busybox_rootfs), name, "/bin/sh")

    # exec: --record implies a terminal; the header has the size, each chunk is an "o" event.
    cast = tmp_path / "exec.cast"
    out = tb("exec", "--record", str(cast), name, "echo", "recorded-$((6*7))-ok")
    assert "recorded-$((6*7))-ok" in out.stdout  # the user still sees it live
    header, events = cast_lines(cast)
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (80, 24)  # no terminal here: the default
    assert isinstance(header["timestamp"], int) and "TERM" in header["env"]  # type: ignore[operator]
    assert events and all(e[1] == "o" and isinstance(e[0], float) for e in events)
    assert (cast.stat().st_mode & 0o777) == 0o600
    assert "recorded-$((6*7))-ok" in asciinema_cat(cast)
    play = pexpect.spawn("asciinema", ["play", "-s", "20", str(cast)], encoding="utf-8", timeout=30)
    play.expect_exact("recorded-$((6*7))-ok")
    play.expect(pexpect.EOF)
    play.close()
    assert play.exitstatus == 0

    # attach: the console's output (the keeper replays its ring first) goes to the file too.
    cast2 = tmp_path / "attach.cast"
    argv = tb.argv("attach", "--record", str(cast2), name)
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(30, 100), encoding="utf-8", timeout=15)
    try:
        child.expect_exact("/ # ")
        child.sendline("echo attach-$((7*6))-seen")
        child.expect_exact("attach-42-seen")
        child.setwinsize(40, 120)
        child.sendline("echo after-resize")
        child.expect_exact("after-resize\r\n")
        child.sendcontrol("]")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    header, events = cast_lines(cast2)
    assert (header["width"], header["height"]) == (100, 30)
    assert ["r", "120x40"] in [e[1:] for e in events]
    shown = asciinema_cat(cast2)
    assert "attach-42-seen" in shown and "after-resize" in shown


def test_record_bad_input_is_one_line_and_leaves_nothing(
    tb: TB, busybox_rootfs: Path, tmp_path: Path
) -> None:
    name = unique("rec")
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "60")
    missing = tmp_path / "no-such-dir" / "x.cast"
    r = tb("exec", "--record", str(missing), name, "true", check=False)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("tuibox: error: ")
    assert "no such file or directory" in r.stderr
    r = tb("exec", "-d", "--record", str(tmp_path / "d.cast"), name, "true", check=False)
    assert r.returncode == 2 and "--record" in r.stderr
    # The box is not there: the file that was opened for it is removed again.
    gone = tmp_path / "gone.cast"
    r = tb("exec", "--record", str(gone), "no-such-box", "true", check=False)
    assert r.returncode != 0 and r.stderr.startswith("tuibox: error: ")
    assert not gone.exists()
    r = tb("attach", "--record", "", name, check=False)
    assert r.returncode == 2 and r.stderr.startswith("tuibox: error: ")
