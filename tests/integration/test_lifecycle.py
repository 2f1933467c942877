"""The runtime core on the real kernel: isolation, state machine, exit codes, clean-up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, mountinfo, unique

pytestmark = pytest.mark.root


def run_out(tb: TB, bundle: Path, *cmd: str, name: str | None = None) -> str:
    proc = tb("run", "--bundle", str(bundle), name or unique(), *cmd)
    return proc.stdout


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_program_is_pid_1_and_sees_only_its_processes(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    out = run_out(tb, make_bundle(), "sh", "-c", "echo $$; ps -o pid,comm; true")
    lines = out.strip().splitlines()
    assert lines[0] == "1"
    pids = [ln.split()[0] for ln in lines[2:]]
    # sh itself (1) and ps: nothing of the host.
    assert pids[0] == "1" and len(pids) == 2, out


def test_hostname_from_spec_else_box_name(tb: TB, make_bundle: Callable[..., Path]) -> None:
    assert run_out(tb, make_bundle(hostname="spec-host"), "hostname").strip() == "spec-host"
    name = unique("hn")
    assert run_out(
        tb, make_bundle(), "sh", "-c", "hostname; cat /etc/hostname", name=name
    ).split() == [name, name]


def test_default_mounts_and_devices(tb: TB, make_bundle: Callable[..., Path]) -> None:
    out = run_out(tb, make_bundle(), "cat", "/proc/self/mountinfo")
    targets = {ln.split()[4]: ln for ln in out.splitlines()}
    for path in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/tmp"):
        assert path in targets, f"{path} not mounted: {out}"
    assert " ro," in targets["/sys"] or targets["/sys"].split()[5].startswith("ro")
    assert "ptmxmode=666" in targets["/dev/pts"]
    devs = run_out(
        tb,
        make_bundle(),
        "sh",
        "-c",
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; "
        "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done",
    )
    lines = devs.splitlines()
    expect = {
        "null": "1:3",
        "zero": "1:5",
        "full": "1:7",
        "random": "1:8",
        "urandom": "1:9",
        "tty": "5:0",
    }
    for ln, (dev, rdev) in zip(lines, expect.items(), strict=False):
        assert ln == f"/dev/{dev} character special file {rdev} 666", ln
    assert lines[6:] == [
        "pts/ptmx",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
    ]


def test_user_env_and_cwd_exactly_from_spec(tb: TB, make_bundle: Callable[..., Path]) -> None:
    bundle = make_bundle(
        process={
            "user": {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]},
            "env": ["PATH=/bin", "ONLY=this"],
            "cwd": "/tmp",
        }
    )
    out = run_out(
        tb,
        bundle,
        "sh",
        "-c",
        "grep -E '^(Uid|Gid|Groups)' /proc/self/status; tr '\\0' '\\n' < /proc/1/environ; pwd",
    )
    lines = out.splitlines()
    assert lines[0].split()[1:] == ["1000"] * 4
    assert lines[1].split()[1:] == ["1001"] * 4
    assert lines[2].split()[1:] == ["5", "7"]
    assert lines[3:5] == ["PATH=/bin", "ONLY=this"] and lines[5] == "/tmp"


def test_rlimits_applied(tb: TB, make_bundle: Callable[..., Path]) -> None:
    bundle = make_bundle(process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]})
    assert run_out(tb, bundle, "sh", "-c", "ulimit -n; ulimit -Hn").split() == ["123", "456"]


def test_raising_hard_rlimit_beyond_host_is_a_clear_error(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this host allows unlimited NOFILE; nothing to refuse")
    bundle = make_bundle(
        process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": hard + 1}]}
    )
    line = tb.fails("run", "--bundle", str(bundle), unique())
    assert "RLIMIT_NOFILE" in line
    assert tb.names() == []


def test_bundle_relative_root_and_box_example_config(
    tb: TB, tmp_path: Path, busybox_rootfs: Path
) -> None:
    bundle = tmp_path / "boxbundle"
    bundle.mkdir()
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    # box's own example: only ociVersion, root.path, hostname and process{args, env, cwd}.
    (bundle / "config.json").write_text(
        json.dumps(
            {
                "ociVersion": "1.0.0",
                "root": {"path": "rootfs"},
                "hostname": "box",
                "process": {
                    "args": ["/bin/sh", "-c", "hostname; echo ok"],
                    "env": ["PATH=/bin"],
                    "cwd": "/",
                },
            }
        )
    )
    proc = tb("run", unique(), cwd=bundle)
    assert proc.stdout.split() == ["box", "ok"]


def test_readonly_root_refuses_writes(
    tb: TB, make_bundle: Callable[..., Path], busybox_rootfs: Path
) -> None:
    bundle = make_bundle(root={"path": str(busybox_rootfs), "readonly": True})
    proc = tb(
        "run",
        "--bundle",
        str(bundle),
        unique(),
        "sh",
        "-c",
        "touch /newfile && echo wrote",
        check=False,
    )
    assert proc.returncode != 0 and "wrote" not in proc.stdout
    assert "read-only file system" in proc.stderr.lower()
    assert not (busybox_rootfs / "newfile").exists()


def test_host_mount_table_unchanged_after_destroy(tb: TB, make_bundle: Callable[..., Path]) -> None:
    before = mountinfo()
    name = unique()
    tb("create", "--bundle", str(make_bundle(["sleep", "100"])), name)
    tb("start", name)
    tb("destroy", "--force", name)
    assert mountinfo() == before
    assert not (tb.root / name).exists()


def test_create_waits_for_start_then_states_follow(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle = make_bundle(
        ["sh", "-c", "touch /out/ran; while [ ! -e /out/go ]; do sleep 0.05; done; exit 3"],
        mounts=[
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind", "rw"]},
        ],
    )
    name = unique()
    tb("create", "--bundle", str(bundle), name)
    st = tb.state(name)
    assert st["status"] == "created" and st["pid"] > 0 and st["id"] == name
    time.sleep(0.3)
    assert not (out / "ran").exists(), "the program ran before start"
    tb("start", name)
    wait_for(lambda: (out / "ran").exists())
    assert tb.state(name)["status"] == "running"
    line = tb.fails("start", name)
    assert "running" in line and "created" in line
    (out / "go").touch()
    wait_for(lambda: tb.state(name)["status"] == "stopped")
    listed = json.loads(tb("list", "--format", "json").stdout)
    assert [(b["id"], b["status"], b["exit_status"]) for b in listed] == [(name, "stopped", 3)]
    tb("destroy", name)
    assert tb.names() == []


def test_init_killed_from_outside_is_stopped(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name)
    pid = tb.state(name)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: tb.state(name)["status"] == "stopped")
    assert tb.state(name)["pid"] == 0
    assert json.loads(tb("list", "--format", "json").stdout)[0]["exit_status"] == 128 + 9


def test_exit_codes_propagate(tb: TB, make_bundle: Callable[..., Path]) -> None:
    bundle = make_bundle()
    assert (
        tb("run", "--bundle", str(bundle), unique(), "sh", "-c", "exit 7", check=False).returncode
        == 7
    )
    proc = tb("run", "--bundle", str(bundle), unique(), "/no/such/prog", check=False)
    assert proc.returncode == 127 and "no such file or directory" in proc.stderr
    proc = tb("run", "--bundle", str(bundle), unique(), "/etc/passwd", check=False)
    assert proc.returncode == 126 and "permission denied" in proc.stderr
    assert tb.names() == []


def test_two_boxes_do_not_see_each_other(tb: TB, make_bundle: Callable[..., Path]) -> None:
    a, b = unique("a"), unique("b")
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "101"])), a)
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "102"])), b)
    out = run_out(tb, make_bundle(), "ps", "-o", "args")
    assert "sleep" not in out
    host_a, host_b = tb.state(a)["pid"], tb.state(b)["pid"]
    assert os.readlink(f"/proc/{host_a}/ns/pid") != os.readlink(f"/proc/{host_b}/ns/pid")
    assert os.readlink(f"/proc/{host_a}/ns/mnt") != os.readlink(f"/proc/{host_b}/ns/mnt")


def test_detached_output_goes_to_logs(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sh", "-c", "echo out; echo err >&2"])), name)
    wait_for(lambda: tb.state(name)["status"] == "stopped")
    assert sorted(tb("logs", name).stdout.split()) == ["err", "out"]


def test_destroy_running_needs_force(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name)
    pid = tb.state(name)["pid"]
    line = tb.fails("destroy", name)
    assert "running" in line and "--force" in line
    tb("rm", "-f", name)
    assert tb.names() == []
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )


def test_mount_through_symlink_stays_inside_rootfs(
    tb: TB, tmp_path: Path, busybox_rootfs: Path
) -> None:
    outside = tmp_path / "host-side"
    outside.mkdir()
    rootfs = tmp_path / "evil-rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "evil").symlink_to(outside)  # absolute link to a host directory
    bundle = tmp_path / "evil-bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps(
            {
                "ociVersion": "1.0.2",
                "root": {"path": str(rootfs)},
                "process": {
                    "args": ["sh", "-c", "ls -d /evil/sub && echo inside"],
                    "env": ["PATH=/bin"],
                    "cwd": "/",
                },
                "mounts": [
                    {"destination": "/proc", "type": "proc", "source": "proc"},
                    {"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"},
                ],
            }
        )
    )
    proc = tb("run", "--bundle", str(bundle), unique())
    assert "inside" in proc.stdout
    assert list(outside.iterdir()) == [], "a mount point was created on the host"
    # the link resolved inside the rootfs: tmp_path's path was created under rootfs instead
    assert (rootfs / str(outside).lstrip("/") / "sub").is_dir()


def test_interactive_shell_on_a_terminal(tb: TB, make_bundle: Callable[..., Path]) -> None:
    pexpect = pytest.importorskip("pexpect")
    argv = tb.argv("run", "--bundle", str(make_bundle(["/bin/sh"])), unique())
    child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=10)
    try:
        child.sendline("echo $((6*7))")
        child.expect("42")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 5
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 65, "-lead", "sp ace"])
def test_bad_names_are_refused(tb: TB, make_bundle: Callable[..., Path], bad: str) -> None:
    tb.fails("run", "--bundle", str(make_bundle()), "--", bad, code=125)
    assert tb.names() == []
    assert not (tb.root.parent / "x").exists()


def test_bad_input_leaves_nothing(tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]) -> None:
    before = mountinfo()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "config.json" in tb.fails("run", unique(), cwd=empty)
    (empty / "config.json").write_text("{not json")
    assert "invalid JSON" in tb.fails("run", unique(), cwd=empty)
    (empty / "config.json").write_text(
        json.dumps(
            {
                "ociVersion": "1.0.0",
                "root": {"path": "nope"},
                "process": {"args": ["sh"], "cwd": "/"},
            }
        )
    )
    assert "root.path" in tb.fails("run", unique(), cwd=empty)
    (empty / "config.json").write_text(
        json.dumps(
            {
                "ociVersion": "1.0.0",
                "root": {"path": "/"},
                "process": {"args": ["sh"], "cwd": "relative"},
            }
        )
    )
    assert "config.json: process.cwd: must be an absolute path" in tb.fails(
        "run", unique(), cwd=empty
    )
    assert "does not exist" in tb.fails("start", "ghost")
    assert "does not exist" in tb.fails("destroy", "ghost")
    assert "does not exist" in tb.fails("state", "ghost")
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name)
    assert "already in use" in tb.fails(
        "run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name
    )
    tb("destroy", "-f", name)
    assert tb.fails("frobnicate").startswith("tuibox: error: unknown command")
    assert tb.names() == []
    assert mountinfo() == before


def test_run_keep_leaves_a_stopped_box(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique()
    assert (
        tb(
            "run", "--keep", "--bundle", str(make_bundle()), name, "sh", "-c", "exit 4", check=False
        ).returncode
        == 4
    )
    st = json.loads(tb("list", "--format", "json").stdout)
    assert [(b["id"], b["status"], b["exit_status"]) for b in st] == [(name, "stopped", 4)]


def test_no_textual_or_pyroute2_on_the_run_path(tb: TB, make_bundle: Callable[..., Path]) -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['tuibox'] + sys.argv[1:]\n"
        "from tuibox.cli import main\n"
        "rc = main()\n"
        "bad = [m for m in ('textual', 'pyroute2', 'rich', 'argparse') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--root",
            str(tb.root),
            "run",
            "--bundle",
            str(make_bundle()),
            unique(),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_unimplemented_fields_give_one_warning_line(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    # (fields that do not weaken isolation; the others are refused: test_spec_fields.py)
    bundle = make_bundle(
        process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE"}},
        linux={"personality": {"domain": "LINUX"}},
    )
    proc = tb("run", "--bundle", str(bundle), unique(), "true")
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("tuibox: warning:")]
    assert len(warnings) == 1, proc.stderr
    assert "process.ioPriority" in warnings[0] and "linux.personality" in warnings[0]


def test_newer_minor_version_runs_with_a_warning(tb: TB, make_bundle: Callable[..., Path]) -> None:
    proc = tb("run", "--bundle", str(make_bundle(ociVersion="1.9.0")), unique(), "true")
    assert "1.9.0" in proc.stderr and "warning" in proc.stderr
    assert "2.0.0" in tb.fails("run", "--bundle", str(make_bundle(ociVersion="2.0.0")), unique())


@pytest.mark.parametrize(
    ("propagation", "shown"), [("rshared", "shared:"), ("runbindable", "unbindable")]
)
def test_shared_or_unbindable_root_propagation_is_set_after_pivot_root(
    tb: TB, make_bundle: Callable[..., Path], propagation: str, shown: str
) -> None:
    # pivot_root refuses a shared parent, and a shared "/" before it would carry the box's
    # mounts to the host: the propagation is applied once the box's root is "/".
    bundle = make_bundle(
        ["sh", "-c", "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo"],
        linux={"rootfsPropagation": propagation},
    )
    out = tb("run", "--bundle", str(bundle), unique()).stdout
    assert out.startswith(shown), out


def test_init_killed_from_outside_wait_says_137(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name)
    os.kill(tb.state(name)["pid"], signal.SIGKILL)
    assert tb("wait", name).stdout == "137\n"


def test_monitor_killed_then_box_stopped_exit_is_unknown(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    # The monitor is the only process that can reap the init; once it is SIGKILLed the host's
    # init reaps it and nobody knows the status: said as "unknown", never a made-up number.
    name = unique()
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "100"])), name)
    pid = tb.state(name)["pid"]
    with open(f"/proc/{pid}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{monitor}/stat") or _zombie(monitor))
    tb("kill", name, "KILL")
    wait_for(lambda: tb.state(name)["status"] == "stopped")
    proc = tb("wait", name)
    assert proc.stdout == "unknown\n"
    assert "exit status is unknown" in proc.stderr
    assert json.loads(tb("list", "--format", "json").stdout)[0]["exit_status"] is None
    tb("destroy", name)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
