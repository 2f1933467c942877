"""podman drives tuibox as its OCI runtime (issue 11): each case runs under runc and under
tuibox through the same podman, with the same expected outputs and exit codes, and leaves
nothing of the runtime's behind once podman has removed the container.

podman (Debian 12's 4.3) runs with private storage, run root, tmp dir, network config and a
private containers.conf; each runtime is a wrapper that gives it a private state root (podman
passes no --root to a runtime it does not know). The image is the suite's busybox rootfs,
imported: no registry is asked. Containers go under a cgroup parent of this session, removed
at its end; the network is always `none`."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

PODMAN = "/usr/bin/podman"
RUNTIMES = ("runc", "tuibox")
IMAGE = "localhost/tuibox-test-busybox"
REPO = Path(__file__).resolve().parents[2]


class Podman:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(base / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(base / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
        }

    def argv(self, *args: str) -> list[str]:
        b = self.base
        return [
            PODMAN,
            "--root", f"{b}/storage", "--runroot", f"{b}/run", "--tmpdir", f"{b}/tmp",
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
            "--events-backend", "file", "--network-config-dir", f"{b}/networks",
            *args,
        ]  # fmt: skip

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc

    def run(
        self, runtime: str, *args: str, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self(
            "--runtime", runtime, "run", "--network", "none", "--pull", "never",
            "--cgroup-parent", self.cgroup_parent, *args, check=check,
        )  # fmt: skip

    def state_root(self, runtime: str) -> Path:
        return self.base / f"{runtime}-state"


def _wrapper(path: Path, line: str) -> None:
    path.write_text(f"#!/bin/sh\n{line}\n")
    path.chmod(0o755)


def _cgroup_dirs(parent: str) -> list[Path]:
    return [
        Path(f"/sys/fs/cgroup/{h}{parent}")
        for h in os.listdir("/sys/fs/cgroup")
        if Path(f"/sys/fs/cgroup/{h}{parent}").is_dir()
    ]


def _remove_cgroup_tree(top: Path) -> None:
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        d.rmdir()
    top.rmdir()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Podman]:
    assert os.access(PODMAN, os.X_OK), "podman is not installed: run ./scripts/setup.sh"
    base = tmp_path_factory.mktemp("podman")
    parent = f"/tuibox-podman-{uuid.uuid4().hex[:8]}"
    pm = Podman(base, parent)
    for d in ("storage", "run", "tmp", "networks"):
        (base / d).mkdir()
    _wrapper(
        base / "tuibox",
        f"PYTHONPATH={REPO} exec {sys.executable} -m tuibox --root {pm.state_root('tuibox')} "
        f'--data-root {base}/tuibox-data "$@"',
    )
    _wrapper(base / "runc", f'exec /usr/sbin/runc --root {pm.state_root("runc")} "$@"')
    (base / "containers.conf").write_text(
        "[containers]\n"
        # this machine lacks CAP_SYS_RESOURCE: podman's default ulimits cannot be raised
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        "[engine.runtimes]\n"
        f'tuibox = ["{base}/tuibox"]\nrunc = ["{base}/runc"]\n'
    )
    (base / "registries.conf").write_text("unqualified-search-registries = []\n")
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{base}/run"\ngraphroot = "{base}/storage"\n'
    )
    archive = base / "busybox.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    pm("import", str(archive), IMAGE)
    try:
        yield pm
    finally:
        left = pm("ps", "-aq", check=False).stdout.split()
        if left:
            pm("rm", "-f", "-t", "0", *left, check=False)
        pm("rmi", "-af", check=False)
        for d in _cgroup_dirs(parent):
            _remove_cgroup_tree(d)
        subprocess.run(["umount", "-R", str(base / "storage")], capture_output=True)


def leftovers(pm: Podman, runtime: str) -> dict[str, object]:
    """What of the runtime's outlives podman's removal of every container."""
    root = pm.state_root(runtime)
    # dot-dirs are the root's own caches (.seccomp), not boxes
    names = os.listdir(root) if root.is_dir() else []
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
        str(p) for top in _cgroup_dirs(pm.cgroup_parent) for p in top.glob("libpod-*") if p.is_dir()
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
