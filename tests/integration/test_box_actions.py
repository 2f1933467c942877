"""Runtime actions on the real kernel: exec (plain, -t under a pty, -d, --process), ps,
stats, wait, kill by name/number/pid/all, destroy of a box without a PID namespace, and bad
input (one line, non-zero, nothing left behind).

(Named test_box_actions.py: tests/tui/test_actions.py already takes the module name.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from tests.conftest import REPO, TB, unique
from tests.integration import actions_helpers
from tests.integration.actions_helpers import (
    Boxes,
    assert_no_cgroup,
    cgpath,
    proc_state,
    wait_for,
)
from tuibox.runtime.ps import FIELDS as PS_FIELDS
from tuibox.runtime.stats import FIELDS as STATS_FIELDS

pytestmark = pytest.mark.root
boxes = actions_helpers.boxes  # the fixture
FIXTURES = Path("/work/shared/fixtures/podman-4.3")


# ---- exec ----------------------------------------------------------------------------------------


def test_exec_joins_the_box_pid_namespace(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    out = tb("exec", name, "sh", "-c", "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo").stdout
    pid, cmdline = out.splitlines()
    assert 1 < int(pid) < 100, out  # a box pid, not the host's
    assert cmdline.strip() == "sleep 1000"
    # and it is in the box's cgroup while it runs
    out = tb("exec", name, "sh", "-c", "cat /proc/self/cgroup").stdout
    assert f"memory:{cgpath(tb, name)}" in out


def test_exec_exit_status_env_workdir_and_user(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    assert tb("exec", name, "sh", "-c", "exit 5", check=False).returncode == 5
    assert "no such file" in tb.fails("exec", name, "/nonexistent", code=127)
    assert "permission denied" in tb.fails("exec", name, "/etc/passwd", code=126)
    out = tb(
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1001",
        name,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; echo $PATH",
    ).stdout.split()
    assert out[:4] == ["bar", "/tmp", "1000", "1001"]
    assert out[4].startswith("/usr/sbin")  # the box's environment underneath


def test_exec_stdin_only_with_i(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    assert tb("exec", "-i", name, "cat", input="hello\n").stdout == "hello\n"
    assert tb("exec", name, "cat", input="hello\n").stdout == ""


def test_exec_tty_reports_a_terminal_and_follows_resizes(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    argv = tb.argv("exec", "-it", name, "sh")
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(30, 100), encoding="utf-8", timeout=15)
    try:
        child.expect("# ")
        child.sendline("tty; stty size")
        child.expect(r"(/dev/pts/\d+)\r\n(\d+) (\d+)\r\n")
        assert child.match.groups() == ("/dev/pts/0", "30", "100")  # the box's own devpts
        child.setwinsize(40, 120)
        time.sleep(0.3)  # SIGWINCH reaches tuibox, which copies the size to the box's pty
        child.sendline("stty size")
        child.expect(r"(\d+) (\d+)\r\n")
        assert child.match.groups() == ("40", "120")
        child.sendline("exit 7")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 7


def test_exec_detached_then_ps_lists_it(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    t0 = time.monotonic()
    tb("exec", "-d", name, "sleep", "777")
    assert time.monotonic() - t0 < 5
    procs = boxes.ps(name)
    assert all(list(p) == list(PS_FIELDS) for p in procs)
    sleeper = next(p for p in procs if p["command"] == "sleep 777")
    init = next(p for p in procs if p["box_pid"] == 1)
    assert init["pid"] == boxes.pid(name) and init["command"] == "sleep 1000"
    assert sleeper["box_pid"] > 1 and sleeper["pid"] != sleeper["box_pid"]
    assert sleeper["user"] == "root" and sleeper["state"] in ("S", "R")
    assert sleeper["rss"] > 0 and sleeper["started"].endswith("Z")
    table = tb("ps", name).stdout
    assert "sleep 777" in table and table.startswith("PID")
    # An exec'd process's parent is outside the box's pid namespace: box ppid 0.
    assert sleeper["box_ppid"] == 0 and init["box_ppid"] == 0
    assert table.splitlines()[0].split()[:4] == ["PID", "BOX-PID", "PPID", "BOX-PPID"]


def test_exec_runc_process_json(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    process = FIXTURES / "process.exec-user-env-workdir.json"
    if not process.exists():
        pytest.skip("podman fixtures not present")
    out = tb("exec", "--process", str(process), name).stdout.splitlines()
    assert out[0].startswith("uid=1") and out[1:] == ["bar", "/tmp"]


def test_exec_pid_file_and_process_in_cgroup(tb: TB, boxes: Boxes, tmp_path: Path) -> None:
    name = boxes.run()
    pid_file = tmp_path / "exec.pid"
    tb("exec", "-d", "--pid-file", str(pid_file), name, "sleep", "500")
    pid = int(pid_file.read_text())
    assert pid in [p["pid"] for p in boxes.ps(name)]


# ---- wait, kill --------------------------------------------------------------------------------


def test_wait_prints_the_exit_status(tb: TB, boxes: Boxes) -> None:
    name = boxes.run(args=("sh", "-c", "sleep 0.3; exit 3"))
    assert tb("wait", name).stdout == "3\n"
    assert tb("wait", name).stdout == "3\n"  # a stopped box answers at once


def test_kill_by_name_and_number(tb: TB, boxes: Boxes) -> None:
    a, b = boxes.run(), boxes.run()
    tb("kill", a, "KILL")
    tb("kill", b, "9")
    assert tb("wait", a).stdout == "137\n"
    assert tb("wait", b).stdout == "137\n"
    assert tb.state(a)["status"] == "stopped"


def test_kill_pid_and_all(tb: TB, boxes: Boxes) -> None:
    name = boxes.run(args=("sh", "-c", "sleep 1001 & sleep 1002 & wait"))
    wait_for(lambda: len(boxes.ps(name)) == 3)
    target = next(p for p in boxes.ps(name) if p["command"] == "sleep 1001")
    tb("kill", "--pid", str(target["pid"]), name, "TERM")
    wait_for(lambda: all(p["command"] != "sleep 1001" for p in boxes.ps(name)))
    assert "is not in box" in tb.fails("kill", "--pid", "1", name, "KILL")
    tb("kill", "--all", name, "KILL")
    assert tb("wait", name).stdout == "137\n"


def test_destroy_without_pid_namespace_kills_every_process(tb: TB, boxes: Boxes) -> None:
    namespaces = [{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]
    name = boxes.run(
        args=("sh", "-c", "sleep 1003 & sleep 1004 & wait"), linux={"namespaces": namespaces}
    )
    wait_for(lambda: len(boxes.ps(name)) == 3)
    pids = [p["pid"] for p in boxes.ps(name)]
    assert all(p["box_pid"] == p["pid"] for p in boxes.ps(name))  # host pids: no pid ns
    tb("destroy", "--force", name)
    wait_for(lambda: all(proc_state(pid) in ("", "Z") for pid in pids), timeout=5)
    assert_no_cgroup(cgpath(tb, name))


# ---- stats ---------------------------------------------------------------------------------------


def test_stats_json_of_a_busy_box(tb: TB, boxes: Boxes) -> None:
    busy = boxes.run("--memory", "64m")
    idle = boxes.run()
    tb("exec", "-d", busy, "sh", "-c", "while :; do :; done")
    rows = json.loads(tb("stats", "--no-stream", "--format", "json", busy, idle).stdout)
    assert [r["id"] for r in rows] == [busy, idle]
    assert all(list(r) == list(STATS_FIELDS) for r in rows)
    hot, cold = rows
    assert hot["cpu_percent"] > 20, hot
    assert cold["cpu_percent"] < 20, cold
    assert hot["memory_limit"] == 64 << 20 and cold["memory_limit"] is None
    assert hot["pids"] == 2 and cold["pids"] == 1
    assert 0 < hot["memory_usage"] < 64 << 20
    assert hot["net_rx"] == 0  # its own network namespace has only lo
    every = json.loads(tb("stats", "--no-stream", "--format", "json").stdout)
    assert {busy, idle} <= {r["id"] for r in every}
    assert busy in tb("stats", "--no-stream", busy).stdout


# ---- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_one_line_and_leaves_nothing(
    tb: TB, boxes: Boxes, make_bundle: Callable[..., Path]
) -> None:
    name = boxes.run()
    assert "invalid signal 'FOO'" in tb.fails("kill", name, "FOO")
    bundle = make_bundle(["true"])
    for flags, words in (
        (("--memory", "12q"), "--memory '12q': not a size"),
        (("--cpus", "lots"), "--cpus 'lots'"),
        (("--pids-limit", "x"), "--pids-limit 'x'"),
    ):
        other = unique("bad")
        assert words in tb.fails("run", "--bundle", str(bundle), *flags, other)
        assert other not in tb.names()
        assert_no_cgroup(cgpath(tb, other))
    assert "does not exist" in tb.fails("exec", unique("nobox"), "true")
    stopped = boxes.run(args=("true",))
    wait_for(lambda: tb.state(stopped)["status"] == "stopped")
    assert "it is stopped, it must be running" in tb.fails("exec", stopped, "true")
    assert "cannot update box" in tb.fails("update", stopped, "--memory", "64m")
    assert "cannot pause" in tb.fails("pause", stopped)
    assert "nothing to change" in tb.fails("update", name)
    assert "exec: missing COMMAND" in tb.fails("exec", name)


# ---- start-up hygiene ----------------------------------------------------------------------------


def test_action_verbs_stay_lean(tb: TB, boxes: Boxes) -> None:
    """exec/ps/stats import no UI, no pyroute2, nor the slow stdlib modules the run path avoids."""
    name = boxes.run()
    code = (
        "import sys\n"
        "sys.argv = ['tuibox'] + sys.argv[1:]\n"
        "from tuibox.cli import main\n"
        "rc = main()\n"
        "heavy = ('textual', 'pyroute2', 'rich', 'argparse', 'json', 'contextlib', 'dataclasses',"
        " 'pathlib', 'signal', 'typing', 'platform', 're')\n"
        "print('LOADED', [m for m in heavy if m in sys.modules], rc)\n"
    )
    for verb in (("exec", name, "true"), ("ps", name), ("stats", "--no-stream", name)):
        # -I -S: as the `tuibox` launcher starts Python (site itself imports more)
        proc = subprocess.run(
            [sys.executable, "-IS", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
             + code, "--root", str(tb.root), *verb],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert "LOADED [] 0" in proc.stdout, (verb, proc.stdout, proc.stderr)
