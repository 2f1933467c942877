"""runc's command-line contract, driven as an engine drives it (docs/OCI_CLI.md).

A small supervisor (oci_supervisor.py, a process of its own that sets
PR_SET_CHILD_SUBREAPER, as conmon and containerd-shim do) runs `create` with pipes or a
console socket, starts the box, reaps the init and reads its output. Each case runs against
tuibox and against runc on the same `runc spec` bundle: same output, same exit codes, same
JSON keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

SUPERVISOR = Path(__file__).with_name("oci_supervisor.py")
RUNTIMES = ("tuibox", "runc")


def runc_spec_bundle(where: Path, rootfs: Path, args: list[str], terminal: bool = False) -> Path:
    """`runc spec`'s own config.json, with only the rootfs, args and terminal changed."""
    where.mkdir(parents=True)
    subprocess.run(["runc", "spec"], cwd=where, check=True)
    config = where / "config.json"
    data = json.loads(config.read_text())
    data["root"]["path"] = str(rootfs)
    data["process"]["args"] = args
    data["process"]["terminal"] = terminal
    config.write_text(json.dumps(data))
    return where


class Engine:
    """One runtime (tuibox or runc) with a private root, driven through the supervisor."""

    def __init__(self, kind: str, tb: TB, work: Path) -> None:
        self.kind = kind
        self.tb = tb
        self.work = work
        self.root = tb.root if kind == "tuibox" else work / "runc-root"
        self.log = work / "runtime.log"

    def argv(self) -> list[str]:
        if self.kind == "tuibox":
            return [sys.executable, "-m", "tuibox", "--data-root", str(self.tb.data_root)]
        return ["runc"]

    def run(self, *args: str, log: bool = True) -> subprocess.CompletedProcess[str]:
        extra = ["--log", str(self.log), "--log-format", "json"] if log else []
        return subprocess.run(
            [*self.argv(), "--root", str(self.root), *extra, *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )

    def supervise(self, bundle: Path, mode: str) -> dict[str, Any]:
        work = self.work / unique("sup")
        work.mkdir()
        conf = {
            "rt": self.argv(),
            "root": str(self.root),
            "log": str(self.log),
            "bundle": str(bundle),
            "id": unique("oci"),
            "mode": mode,
            "work": str(work),
        }
        proc = subprocess.run(
            [sys.executable, str(SUPERVISOR), json.dumps(conf)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        out: dict[str, Any] = json.loads(proc.stdout)
        return out

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture(params=RUNTIMES)
def engine(request: pytest.FixtureRequest, tb: TB, tmp_path: Path) -> Iterator[Engine]:
    e = Engine(request.param, tb, tmp_path)
    yield e
    if e.kind == "runc" and e.root.exists():
        for name in os.listdir(e.root):
            e.run("delete", "--force", name, log=False)


def test_create_start_under_a_subreaper(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(
        engine.work / "b",
        busybox_rootfs,
        [
            "sh",
            "-c",
            "echo out-$((1+1)); echo err >&2; grep -E 'Cap(Prm|Amb)' /proc/self/status; exit 3",
        ],
    )
    r = engine.supervise(bundle, "plain")
    assert r["create_rc"] == 0, r
    # Nothing of the runtime is left once create returned: the init is the caller's child.
    assert r["children_after_create"] == [r["pid"]]
    created = r["state_created"]
    assert created["status"] == "created" and created["pid"] == r["pid"]
    assert set(created) == {
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    }
    assert created["bundle"] == str(bundle) and created["rootfs"] == str(busybox_rootfs)
    assert r["start_rc"] == 0
    # The caller's fds 0-2 reached the program; the caller reaped it and has its status.
    # runc spec's capabilities: ambient ones not in inheritable are left out, as by runc.
    assert r["output"] == "out-2\nerr\nCapPrm:\t0000000020000420\nCapAmb:\t0000000000000000\n"
    assert r["exit"] == 3
    assert r["state_after"]["status"] == "stopped"
    assert r["delete_rc"] == 0, r["delete_err"]
    assert engine.log_lines() == []


def test_console_socket_gets_the_pty_master(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(
        engine.work / "b",
        busybox_rootfs,
        ["sh", "-c", "tty; echo hello-$((40+2)); exit 4"],
        terminal=True,
    )
    r = engine.supervise(bundle, "console")
    assert r["create_rc"] == 0, r
    assert r["children_after_create"] == [r["pid"]]
    assert r["console_fds"] == 1 and r["console_msg"] == "/dev/ptmx"
    assert "/dev/pts/0" in r["output"] and "hello-42" in r["output"], r["output"]
    assert r["exit"] == 4
    assert r["delete_rc"] == 0


def test_detached_exec_keeps_the_callers_stdio(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["sleep", "100"])
    r = engine.supervise(bundle, "exec")
    assert r["create_rc"] == 0 and r["start_rc"] == 0, r
    assert r["ps"] == [r["pid"]]  # runc's ps --format json: host pids
    assert r["exec_rc"] == 0
    assert r["exec_exit"] == 5 and r["exec_output"] == "exec-out\nexec-err\n"
    assert r["exit"] == -9  # killed; reaped by the supervisor
    assert r["delete_rc"] == 0


def test_exec_tty_master_goes_to_the_console_socket(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["sleep", "100"])
    r = engine.supervise(bundle, "exec-tty")
    assert r["create_rc"] == 0 and r["start_rc"] == 0, r
    assert r["exec_rc"] == 0, r["exec_err"]
    assert r["console_fds"] == 1
    assert "/dev/pts/" in r["exec_output"] and "tty-42" in r["exec_output"], r["exec_output"]
    assert r["exec_exit"] == 7
    assert r["delete_rc"] == 0


def test_preserve_fds_reach_the_program(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["sh", "-c", "echo via-3 >&3"])
    r = engine.supervise(bundle, "preserve")
    assert r["create_rc"] == 0, r
    assert r["exit"] == 0 and r["fd3"] == "via-3\n"
    assert r["delete_rc"] == 0


def test_a_failing_create_is_a_json_line_in_the_log(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["/nonexistent"])
    r = engine.supervise(bundle, "plain")
    assert r["create_rc"] != 0
    lines = engine.log_lines()
    errors = [ln for ln in lines if ln["level"] == "error"]
    assert errors, lines
    assert set(errors[-1]) == {"level", "msg", "time"}
    assert "/nonexistent" in errors[-1]["msg"]
    if engine.kind == "tuibox":
        assert engine.tb.names() == []  # a failed create leaves nothing


def test_delete_force_of_an_unknown_id(engine: Engine) -> None:
    assert engine.run("delete", "--force", "no-such-box").returncode == 0
    assert engine.run("delete", "no-such-box").returncode != 0
    if engine.kind == "tuibox":  # tuibox's own verb (the TUI's) still reports it
        assert engine.run("destroy", "--force", "no-such-box").returncode == 125


def test_no_pivot_runs_the_box(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["sh", "-c", "echo ok"])
    name = unique("np")
    proc = engine.run("run", "--no-pivot", "--bundle", str(bundle), name)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


def test_bad_engine_options_are_one_line(tb: TB, busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = runc_spec_bundle(tmp_path / "b", busybox_rootfs, ["true"])
    b = str(bundle)
    assert "descriptor 3 is not open" in tb.fails(
        "create", "--preserve-fds", "1", "--bundle", b, unique("bad")
    )
    assert "must be a number" in tb.fails("create", "--preserve-fds", "x", "--bundle", b, "y")
    assert "needs -t and -d" in tb.fails("exec", "--console-socket", "/s", "nobox", "true")
    assert "needs --console-socket" in tb.fails("exec", "-t", "-d", "nobox", "true")
    terminal = runc_spec_bundle(tmp_path / "t", busybox_rootfs, ["sh"], terminal=True)
    assert "process.terminal needs --console-socket" in tb.fails(
        "--log", str(tmp_path / "log"), "create", "--bundle", str(terminal), unique("tty")
    )
    assert "--interval '5'" in tb.fails("events", "--interval", "5", "nobox")
    assert tb.names() == []


def test_foreground_run_writes_the_pid_file(engine: Engine, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(engine.work / "b", busybox_rootfs, ["sh", "-c", "exit 2"])
    pid_file = engine.work / "run.pid"
    proc = engine.run("run", "--pid-file", str(pid_file), "--bundle", str(bundle), unique("fg"))
    assert proc.returncode == 2, proc.stderr
    assert int(pid_file.read_text()) > 1


def test_features_and_version_have_runcs_shape(tb: TB) -> None:
    ours = json.loads(tb("features").stdout)
    theirs = json.loads(
        subprocess.run(["runc", "features"], capture_output=True, text=True, check=True).stdout
    )
    assert set(ours) == set(theirs)
    assert set(ours["linux"]) <= set(theirs["linux"])
    assert "pid" in ours["linux"]["namespaces"] and "CAP_KILL" in ours["linux"]["capabilities"]
    assert "SCMP_ACT_ERRNO" in ours["linux"]["seccomp"]["actions"]
    assert {"rbind", "ro", "nosuid", "rprivate"} <= set(ours["mountOptions"])
    version = tb("--version").stdout.splitlines()
    assert version[0].startswith("tuibox version ")
    assert any(line.startswith("spec: 1.") for line in version)


def test_bad_global_flags_are_one_line(tb: TB) -> None:
    assert "--log-format 'xml'" in tb.fails("--log-format", "xml", "list", code=2)
    assert "--rootless 'maybe'" in tb.fails("--rootless", "maybe", "list", code=2)
    assert "unknown global option --bogus" in tb.fails("--bogus", "list", code=2)
    assert "takes no value" in tb.fails("--debug=1", "list", code=2)
    # runc's global flags an engine passes are accepted
    for flags in (["--debug"], ["--systemd-cgroup"], ["--rootless", "false"], ["--rootless=auto"]):
        tb(*flags, "list")
    assert tb.names() == []


def test_systemd_cgroup_path_is_mapped(tb: TB, busybox_rootfs: Path, tmp_path: Path) -> None:
    bundle = runc_spec_bundle(tmp_path / "b", busybox_rootfs, ["sleep", "100"])
    data = json.loads((bundle / "config.json").read_text())
    tag = unique("t").replace("-", "")
    data["linux"]["cgroupsPath"] = f"tuiboxtest-{tag}.slice:box:one"
    (bundle / "config.json").write_text(json.dumps(data))
    name = unique("sd")
    pid_file = tmp_path / "pid"
    # Engine mode: the init keeps our stdio, so no pipe of ours may be its stdout.
    subprocess.run(
        tb.argv(
            "--systemd-cgroup", "create", "--bundle", str(bundle), "--pid-file", str(pid_file), name
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=True,
    )
    try:
        with open(f"/proc/{int(pid_file.read_text())}/cgroup") as f:
            lines = f.read().splitlines()
        # runc's systemd naming: each dash of a slice name is one level of nesting.
        want = f"/tuiboxtest.slice/tuiboxtest-{tag}.slice/box-one.scope"
        assert any(ln.endswith(want) for ln in lines), lines
    finally:
        tb("delete", "--force", name)
    assert not [
        d
        for d in os.listdir("/sys/fs/cgroup")
        if os.path.exists(f"/sys/fs/cgroup/{d}/tuiboxtest.slice")
    ]
    bad = dict(data)
    bad["linux"] = {**data["linux"], "cgroupsPath": "a:b"}
    (bundle / "config.json").write_text(json.dumps(bad))
    assert "slice:prefix:name" in tb.fails(
        "--systemd-cgroup", "create", "--bundle", str(bundle), unique("sd")
    )
    assert tb.names() == []


def test_own_boxes_keep_their_monitor(tb: TB, busybox_rootfs: Path) -> None:
    """Without --log or --pid-file, create is tuibox's own: a monitor records the exit."""
    name = unique("own")
    tb("create", "--rootfs", str(busybox_rootfs), name, "sh", "-c", "echo logged; exit 6")
    tb("start", name)
    assert tb("wait", name).stdout.split()[-1] == "6"
    assert tb("logs", name).stdout == "logged\n"
    tb("destroy", name)


def test_an_engine_box_stopped_has_no_exit_status_of_ours(
    tb: TB, busybox_rootfs: Path, tmp_path: Path
) -> None:
    """Its reaper (here pid 1, as nobody else is a subreaper) has the status; state, list
    and wait say stopped and unknown at once, without waiting for a record nobody writes."""
    bundle = runc_spec_bundle(tmp_path / "b", busybox_rootfs, ["sh", "-c", "exit 9"])
    name = unique("eng")
    subprocess.run(
        tb.argv("create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), name),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=True,
    )
    tb("start", name)
    start = time.monotonic()
    assert tb("wait", name).stdout == "unknown\n"
    assert time.monotonic() - start < 3
    assert tb.state(name)["status"] == "stopped"
    row = json.loads(tb("list", "--format", "json").stdout)[0]
    assert (row["status"], row["exit_status"], row["log"]) == ("stopped", None, None)
    tb("delete", name)
