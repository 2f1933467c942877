"""Engines that drive tuibox as their OCI runtime (issue 11), each with private storage:
podman (no daemon) and containerd (started once per session, stopped by pid). Each runtime
runs behind a wrapper giving it a private state root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNTIMES = ("runc", "tuibox")
IMAGE = "localhost/tuibox-test-busybox"
REPO = Path(__file__).resolve().parents[2]

PODMAN = "/usr/bin/podman"


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


def cgroup_dirs(parent: str) -> list[Path]:
    return [
        Path(f"/sys/fs/cgroup/{h}{parent}")
        for h in os.listdir("/sys/fs/cgroup")
        if Path(f"/sys/fs/cgroup/{h}{parent}").is_dir()
    ]


def _remove_cgroup_tree(top: Path) -> None:
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        d.rmdir()
    top.rmdir()


def start_podman(
    tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path
) -> Iterator[Podman]:
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
        for d in cgroup_dirs(parent):
            _remove_cgroup_tree(d)
        subprocess.run(["umount", "-R", str(base / "storage")], capture_output=True)


CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"


class Containerd:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.sock = str(base / "containerd.sock")
        self.cgroup_parent = cgroup_parent

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [CTR, "--address", self.sock, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc

    def run(self, runtime: str, name: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        """`ctr run --rm` of the busybox image with `runtime` as the shim's runc binary."""
        return self.ctr(
            "run", "--rm", "--runc-binary", str(self.base / runtime),
            "--runc-root", str(self.state_root(runtime)),
            "--cgroup", f"{self.cgroup_parent}/{name}",
            f"{IMAGE}:latest", name, *cmd, check=False,
        )  # fmt: skip

    def state_root(self, runtime: str) -> Path:
        return self.base / f"{runtime}-state"


def start_containerd(tmp_path_factory: pytest.TempPathFactory, pm: Podman) -> Iterator[Containerd]:
    """containerd with its own root, state and socket, started once, stopped by pid. Its shim
    keeps fifos and sockets under /run/containerd whatever the config says: removed at the
    end when this session made that dir."""
    assert os.access(CONTAINERD, os.X_OK), "containerd is not installed: run ./scripts/setup.sh"
    base = tmp_path_factory.mktemp("containerd")
    parent = f"/tuibox-ctr-{uuid.uuid4().hex[:8]}"
    cd = Containerd(base, parent)
    made_run_dir = not os.path.exists("/run/containerd")
    (base / "config.toml").write_text(
        "version = 2\n"
        f'root = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{cd.sock}"\n'
        f'[ttrpc]\n  address = "{cd.sock}.ttrpc"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
    )
    _wrapper(
        base / "tuibox",
        f'PYTHONPATH={REPO} exec {sys.executable} -m tuibox --data-root {base}/tuibox-data "$@"',
    )
    _wrapper(base / "runc", 'exec /usr/sbin/runc "$@"')
    with open(base / "containerd.log", "wb") as log:
        daemon = subprocess.Popen(
            [CONTAINERD, "--config", str(base / "config.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while cd.ctr("version", check=False).returncode != 0:
            assert daemon.poll() is None, (base / "containerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd did not answer in 30 s"
            time.sleep(0.1)
        archive = base / "busybox-oci.tar"
        pm("save", "--format", "oci-archive", "-o", str(archive), IMAGE)
        cd.ctr("images", "import", "--base-name", IMAGE, "--digests", str(archive))
        yield cd
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["umount", "-R", str(base / "root")], capture_output=True)
        for d in cgroup_dirs(parent):
            _remove_cgroup_tree(d)
        if made_run_dir:
            shutil.rmtree("/run/containerd", ignore_errors=True)


DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, the daemon's own version


class Docker:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.host = f"unix://{base}/docker.sock"

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [DOCKER, "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc

    def run(
        self, runtime: str, *args: str, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self("run", "--runtime", runtime, "--network", "none", *args, check=check)

    def state_root(self, runtime: str) -> Path:
        # dockerd 20.10 gives every runtime runc's `--root <exec root>/runtime-runc/moby`
        return self.base / "exec" / "runtime-runc" / "moby"


def start_docker(tmp_path_factory: pytest.TempPathFactory, pm: Podman) -> Iterator[Docker]:
    """dockerd with its own data root, exec root, socket and containerd, no bridge and no
    iptables, started once, stopped by pid. It writes /etc/docker/key.json and /run/docker
    whatever it is told: both removed at the end when this session made them."""
    assert os.access(DOCKERD, os.X_OK), "docker.io is not installed: run ./scripts/setup.sh"
    base = tmp_path_factory.mktemp("docker")
    parent = f"/tuibox-docker-{uuid.uuid4().hex[:8]}"
    dk = Docker(base, parent)
    made = [p for p in ("/etc/docker", "/run/docker") if not os.path.exists(p)]
    (base / "daemon.json").write_text("{}\n")
    _wrapper(  # the marker: dockerd gives every runtime runc's root, so it cannot tell
        base / "tuibox",
        f": > {base}/tuibox-called\n"
        f'PYTHONPATH={REPO} exec {sys.executable} -m tuibox --data-root {base}/tuibox-data "$@"',
    )
    with open(base / "dockerd.log", "wb") as log:
        daemon = subprocess.Popen(
            [
                DOCKERD, "--data-root", f"{base}/data", "--exec-root", f"{base}/exec",
                "--pidfile", f"{base}/docker.pid", "-H", dk.host,
                "--config-file", f"{base}/daemon.json", "--cgroup-parent", parent,
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--userland-proxy=false", "--add-runtime", f"tuibox={base}/tuibox",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while dk("version", check=False).returncode != 0:
            assert daemon.poll() is None, (base / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dockerd did not answer in 60 s"
            time.sleep(0.2)
        archive = base / "busybox-docker.tar"
        pm("save", "--format", "docker-archive", "-o", str(archive), IMAGE)
        dk("load", "-i", str(archive))
        yield dk
    finally:
        left = dk("ps", "-aq", check=False).stdout.split()
        if left:
            dk("rm", "-f", *left, check=False)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["umount", "-R", f"{base}/data"], capture_output=True)
        subprocess.run(["umount", "-R", f"{base}/exec"], capture_output=True)
        for d in cgroup_dirs(parent):
            _remove_cgroup_tree(d)
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
