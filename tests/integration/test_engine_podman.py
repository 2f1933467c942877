"""podman drives tuibox as its OCI runtime (issue 11): each case runs under runc and under
tuibox through the same podman, with the same expected outputs and exit codes, and leaves
nothing of the runtime's behind once podman has removed the container.

podman (Debian 12's 4.3) runs with private storage, run root, tmp dir, network config and a
private containers.conf (tests/integration/engines.py); each runtime is a wrapper that gives
it a private state root (podman passes no --root to a runtime it does not know). The image is
the suite's busybox rootfs, imported: no registry is asked. Containers go under a cgroup
parent of this session, removed at its end; the network is always `none`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.engines import IMAGE, RUNTIMES, Podman, cgroup_dirs

pytestmark = pytest.mark.root


def leftovers(pm: Podman, runtime: str) -> dict[str, object]:
    """What of the runtime's outlives podman's removal of every container."""
    root = pm.state_root(runtime)
    # dot-dirs are the root's own caches (.seccomp), not boxes
    assert root.is_dir(), f"{runtime} was never called"
    names = os.listdir(root)
    boxes = sorted(n for n in names if n[0] != "." and (root / n).is_dir())
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmd:
            procs.append(pid)
    with open("/proc/self/mountinfo") as f:
        mounts = [ln for ln in f if f"{root}/" in ln]
    cgroups = [
        str(p) for top in cgroup_dirs(pm.cgroup_parent) for p in top.glob("libpod-*") if p.is_dir()
    ]
    return {"boxes": boxes, "processes": procs, "mounts": mounts, "cgroups": cgroups}


CLEAN = {"boxes": [], "processes": [], "mounts": [], "cgroups": []}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_rm_prints_and_exits_as_the_program(podman: Podman, runtime: str) -> None:
    out = podman.run(runtime, "--rm", IMAGE, "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    out = podman.run(runtime, "--rm", IMAGE, "sh", "-c", "echo to-err >&2; exit 3")
    assert (out.returncode, out.stdout) == (3, ""), out.stderr
    assert "to-err" in out.stderr
    out = podman.run(runtime, "--rm", IMAGE, "/no/such/program")
    assert out.returncode == 127, out.stderr
    assert "/no/such/program" in out.stderr  # the runtime's own message reaches the user
    assert leftovers(podman, runtime) == CLEAN


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_detached_container_logs_execs_stops_and_goes(podman: Podman, runtime: str) -> None:
    program = "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"
    cid = podman.run(runtime, "-d", IMAGE, "sh", "-c", program, check=True).stdout.strip()
    try:
        assert podman("wait", "--condition", "running", cid).returncode == 0
        state = podman("inspect", "--format", "{{.State.Status}} {{.State.Pid}}", cid).stdout
        status, pid = state.split()
        assert status == "running" and Path(f"/proc/{pid}").is_dir()
        ex = podman("exec", cid, "sh", "-c", "echo in-exec; exit 5", check=False)
        assert (ex.returncode, ex.stdout) == (5, "in-exec\n"), ex.stderr
        ex = podman("exec", "-u", "1000", "-e", "A=b", "-w", "/bin", cid, "sh", "-c",
                    "id -u; echo $A; pwd")  # fmt: skip
        assert ex.stdout == "1000\nb\n/bin\n"
        podman("stop", "-t", "10", cid)
        assert podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip() == "0"
        assert podman("logs", cid).stdout == "started\nbye\n"
    finally:
        podman("rm", "-f", cid, check=False)
    assert leftovers(podman, runtime) == CLEAN


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rm_f_of_a_running_container_leaves_nothing(podman: Podman, runtime: str) -> None:
    cid = podman.run(runtime, "-d", IMAGE, "sleep", "1000", check=True).stdout.strip()
    podman("rm", "-f", "-t", "0", cid)
    assert podman("ps", "-aq").stdout.split() == []
    assert leftovers(podman, runtime) == CLEAN


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_signals_pause_top_stats_and_wait(podman: Podman, runtime: str) -> None:
    program = (
        "trap 'echo got-hup' HUP; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 7"
    )
    cid = podman.run(runtime, "-d", IMAGE, "sh", "-c", program, check=True).stdout.strip()
    try:
        podman("wait", "--condition", "running", cid)
        podman("kill", "-s", "HUP", cid)
        podman("pause", cid)
        assert podman("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "paused"
        podman("unpause", cid)
        assert podman("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "running"
        top = podman("top", cid, "pid", "args").stdout
        assert "while" in top or "sh -c" in top, top
        mem = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", cid).stdout
        assert "B /" in mem, mem  # usage / limit, read from the cgroup the runtime made
        podman("kill", "-s", "KILL", cid)
        assert podman("wait", cid).stdout.strip() == "137"
        assert "got-hup" in podman("logs", cid).stdout
    finally:
        podman("rm", "-f", cid, check=False)
    assert leftovers(podman, runtime) == CLEAN


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_init_privileged_and_limits(podman: Podman, runtime: str) -> None:
    out = podman.run(runtime, "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline")
    # podman binds catatonit at /run/podman-init as pid 1, the program its child
    assert out.stdout.startswith("/run/podman-init\x00--\x00sh"), (out.stdout, out.stderr)
    caps = "grep CapEff /proc/self/status"
    plain = podman.run(runtime, "--rm", IMAGE, "sh", "-c", caps)
    privileged = podman.run(runtime, "--rm", "--privileged", IMAGE, "sh", "-c", caps)
    assert plain.stdout == "CapEff:\t00000000a80425fb\n", plain.stderr  # podman 4.3 default set
    assert privileged.stdout != plain.stdout and privileged.returncode == 0
    limits = podman.run(
        runtime, "--rm", "--memory", "64m", "--cpus", "0.5", IMAGE, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    )  # fmt: skip
    assert limits.stdout.split() == ["67108864", "50000"], limits.stderr
    assert leftovers(podman, runtime) == CLEAN


def _on_a_pty(argv: list[str], env: dict[str, str], send: bytes) -> tuple[int, bytes]:
    """Run argv with a pty as its terminal, type `send`, return (exit code, all it printed)."""
    import pty
    import select
    import subprocess
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)  # fmt: skip
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side is gone
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b"READY" in out:
                os.write(master, send)
                sent = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(30), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_it_and_exec_it_through_a_terminal(podman: Podman, runtime: str) -> None:
    args = ["--runtime", runtime, "run", "-it", "--rm", "--network", "none", "--pull", "never"]
    code, out = _on_a_pty(
        podman.argv(*args, IMAGE, "sh", "-c", "echo READY; read line; echo got-$line; tty; exit 4"),
        podman.env,
        b"hello\r",
    )
    assert code == 4, out
    assert b"got-hello" in out and b"/dev/pts/0" in out, out
    cid = podman.run(runtime, "-d", IMAGE, "sleep", "1000", check=True).stdout.strip()
    try:
        code, out = _on_a_pty(
            podman.argv("exec", "-it", cid, "sh", "-c", "echo READY; read x; tty; exit 6"),
            podman.env,
            b"go\r",
        )
        assert code == 6 and b"/dev/pts/" in out, out
    finally:
        podman("rm", "-f", "-t", "0", cid, check=False)
    assert leftovers(podman, runtime) == CLEAN
