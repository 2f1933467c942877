"""Real engines (podman, dockerd, containerd) driving tuibox or runc as their OCI runtime.

Each engine is started at most once per session, on first use, with every piece of its storage
and state under a temp dir; it is stopped by pid when the session ends. The busybox image the
engines run is the suite's busybox rootfs, packed as a `docker save` archive and loaded without
any registry. tuibox is reached through a launcher written for THIS checkout (the one the tests
import), as scripts/setup.sh writes .venv/bin/tuibox for a user.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RUNTIMES = ("runc", "tuibox")
IMAGE = "localhost/busybox:latest"
RUNC = "/usr/sbin/runc"
# podman's CNI network for the bridge case (only ever up inside Podman.isolated)
BRIDGE_NET = "tbbridge"
BRIDGE_SUBNET = f"10.254.{os.getpid() % 200 + 20}.0/24"


def engine_id() -> str:
    return "tbe" + uuid.uuid4().hex[:10]


def write_launcher(path: Path) -> Path:
    """The `tuibox` command as scripts/setup.sh writes it, pointing at this checkout."""
    path.write_text(
        f"#!{sys.executable} -IS\n"
        "import os, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tuibox.cli import main\n"
        "code = main()\n"
        "try:\n"
        "    sys.stdout.flush()\n"
        "    sys.stderr.flush()\n"
        "except OSError:\n"
        "    pass\n"
        "os._exit(code)\n"
    )
    path.chmod(0o755)
    return path


def write_image_archive(rootfs: Path, dest: Path) -> Path:
    """A one-layer `docker save` archive of `rootfs`, tagged IMAGE: podman, docker and ctr
    all load this format."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for entry in sorted(rootfs.rglob("*")):
            info = t.gettarinfo(str(entry), arcname=str(entry.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                with open(entry, "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "tuibox tests: busybox rootfs"}],
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [IMAGE], "Layers": ["layer/layer.tar"]}]
    ).encode()
    with tarfile.open(dest, "w") as out:
        for name, data in (
            ("layer/layer.tar", layer_bytes),
            (config_name, config),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            out.addfile(info, io.BytesIO(data))
    return dest


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM to a daemon we started, SIGKILL if it is still there after `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{proc.args!r} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def processes_naming(word: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmd:
            found.append(f"{pid}: {cmd}")
    return found


def cgroups_naming(word: str) -> list[str]:
    found = []
    for top in Path("/sys/fs/cgroup").iterdir():
        for dirpath, dirnames, _ in os.walk(top):
            found += [f"{dirpath}/{d}" for d in dirnames if word in d]
    return found


def mounts_naming(*words: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln for ln in f if any(w in ln for w in words)]


def assert_nothing_left(cid: str, state_root: Path, timeout: float = 10) -> None:
    """Nothing of container `cid` is left: no process naming it (conmon, a shim, tuibox), no
    mount, no cgroup, and no state under the runtime's root."""

    def left() -> list[str]:
        out = [f"process {p}" for p in processes_naming(cid)]
        out += [f"mount {m}" for m in mounts_naming(cid)]
        out += [f"cgroup {c}" for c in cgroups_naming(cid)]
        if state_root.is_dir():
            out += [f"state {p}" for p in state_root.iterdir() if cid in p.name]
        return out

    deadline = time.monotonic() + timeout
    while (remaining := left()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not remaining, "left behind:\n" + "\n".join(remaining)


# What the engines make on the host whatever they are told (dockerd's trust key and plugin
# dir, the shims' fifos and sockets, podman's and dockerd's and ctr's parent cgroups).
# /etc/docker may be there already (Debian's docker-registry keeps its config.yml in it): then
# only the key dockerd writes goes.
HOST_PATHS = (
    "/etc/docker",
    "/etc/docker/key.json",
    "/run/docker",
    "/run/containerd",
    "/run/runc",
    "/run/libpod",
)
PARENT_CGROUPS = ("docker", "libpod_parent", "tuibox-tests")  # ctr: /<namespace>/<id>


def _parent_cgroups() -> set[Path]:
    return {
        top / name
        for top in Path("/sys/fs/cgroup").iterdir()
        for name in PARENT_CGROUPS
        if (top / name).is_dir()
    }


def _rmdir_tree(top: Path) -> None:
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        d.rmdir()
    top.rmdir()


@pytest.fixture(scope="session")
def engines_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every engine's base; set up before and torn down after all of them: what they made on
    the host outside it is removed then, when this session made it."""
    paths = {p for p in HOST_PATHS if os.path.lexists(p)}
    cgroups = _parent_cgroups()
    yield tmp_path_factory.mktemp("engines")
    for p in HOST_PATHS:
        if p not in paths and os.path.lexists(p):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
    for d in _parent_cgroups() - cgroups:
        _rmdir_tree(d)  # fails (a test error) if a process was left in it


@pytest.fixture(scope="session")
def tuibox_launcher(engines_dir: Path) -> Path:
    return write_launcher(engines_dir / "tuibox")


@pytest.fixture(scope="session")
def image_archive(busybox_rootfs: Path, engines_dir: Path) -> Path:
    return write_image_archive(busybox_rootfs, engines_dir / "busybox.tar")


def run(argv: list[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,  # type: ignore[call-overload]
    )


class Podman:
    """podman with private storage, run dir, tmp dir, network config and events file.

    Each runtime is a containers.conf entry naming a wrapper that adds the runtime's private
    --root: podman 4.3 passes no --root of its own (runc would use /run/runc), and a
    --runtime-flag is not carried into the exit command conmon runs later.
    """

    def __init__(self, base: Path, launcher: Path) -> None:
        self.base = base
        self.state = {rt: base / f"state-{rt}" for rt in RUNTIMES}
        targets = {"runc": RUNC, "tuibox": str(launcher)}
        conf_runtimes = []
        for rt in RUNTIMES:
            wrapper = base / f"{rt}-wrapper"
            wrapper.write_text(f'#!/bin/sh\nexec {targets[rt]} --root {self.state[rt]} "$@"\n')
            wrapper.chmod(0o755)
            conf_runtimes.append(f'{rt} = ["{wrapper}"]')
        self.calls = 0
        for d in ("net", "tmp"):
            (base / d).mkdir()
        (base / "containers.conf").write_text(
            "[containers]\n"
            # hard rlimits cannot be raised on a host without CAP_SYS_RESOURCE
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{base}/events.log"\n'
            'runtime = "runc"\n'
            # podman passes --log/--log-format json (and reads errors from it) only to these
            'runtime_supports_json = ["crun", "runc", "tuibox"]\n'
            "[engine.runtimes]\n" + "\n".join(conf_runtimes) + "\n"
            "[network]\n"
            'network_backend = "cni"\n'
            f'network_config_dir = "{base}/net"\n'
        )
        (base / "storage.conf").write_text(
            '[storage]\ndriver = "overlay"\n'
            f'graphroot = "{base}/root"\nrunroot = "{base}/runroot"\n'
        )
        (base / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.env = dict(
            os.environ,
            CONTAINERS_CONF=str(base / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(base / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(base / "registries.conf"),
            TMPDIR=str(base / "tmp"),
        )

    def argv(self, runtime: str, *args: str) -> list[str]:
        return [
            "/usr/bin/podman",
            "--root",
            f"{self.base}/root",
            "--runroot",
            f"{self.base}/runroot",
            "--tmpdir",
            f"{self.base}/tmp",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--network-config-dir",
            f"{self.base}/net",
            "--runtime",
            runtime,
            *args,
        ]

    def __call__(
        self, runtime: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(runtime, *args), timeout=timeout, env=self.env)

    def ok(self, runtime: str, *args: str) -> str:
        p = self(runtime, *args)
        assert p.returncode == 0, f"podman {' '.join(args)} -> {p.returncode}\n{p.stderr}"
        return p.stdout

    def bridge_network(self) -> str:
        """A CNI bridge network of this podman's own, made on first use: its conflist lands
        in the private network config dir; the bridge itself only ever exists inside
        `isolated` namespaces. Returns the gateway's address."""
        if not (self.base / "net" / f"{BRIDGE_NET}.conflist").exists():
            # a /24 no host route is likely to use; the bridge never reaches the host anyway
            self.ok("runc", "network", "create", "--disable-dns", "--subnet", BRIDGE_SUBNET,
                    BRIDGE_NET)  # fmt: skip
        return BRIDGE_SUBNET.rsplit(".", 1)[0] + ".1"

    def isolated(
        self, runtime: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """podman in a network namespace and mount namespace of its own.

        CNI writes host state with every container on a bridge: the bridge and veths,
        iptables chains, net.ipv4.ip_forward, IPAM leases and result caches in /var/lib/cni,
        netns files in /run/netns. In a fresh network namespace the links, rules and sysctls
        die with the namespace; /var/lib and /run get a writable overlay whose upper layer is
        a temp dir of ours, so new files land there and never on the host. conmon, and the
        `podman container cleanup` it runs when the container exits, stay in both namespaces.
        """
        self.calls += 1
        layers = self.base / f"isolated-{self.calls}"
        script = (
            "set -e\n"
            'for d in /var/lib /run; do u="$0$d"; mkdir -p "$u/upper" "$u/work"; '
            'mount -t overlay tbisolated -o "lowerdir=$d,upperdir=$u/upper,workdir=$u/work" '
            '"$d"; done\n'
            "ip link set lo up\n"
            'exec "$@"\n'
        )
        argv = [
            "unshare", "--mount", "--net", "--fork", "--propagation", "private",
            "sh", "-c", script, str(layers), *self.argv(runtime, *args),
        ]  # fmt: skip
        return run(argv, timeout=timeout, env=self.env)

    def full_id(self, runtime: str, name: str) -> str:
        return self.ok(runtime, "inspect", "--format", "{{.Id}}", name).strip()

    def shutdown(self) -> None:
        # containers left by a failed test: remove them so no conmon or mount outlives us
        self("runc", "rm", "-a", "-f", "-t", "0", timeout=120)
        # podman keeps the overlay home mounted (private) for the life of the storage
        for ln in reversed(mounts_naming(str(self.base))):
            subprocess.run(["umount", "-l", ln.split()[4]], check=False)


@pytest.fixture(scope="session")
def podman(engines_dir: Path, tuibox_launcher: Path, image_archive: Path) -> Iterator[Podman]:
    # podman refuses a runroot longer than 50 characters: pytest's temp paths are longer
    base = Path(tempfile.mkdtemp(prefix="tbpod", dir="/tmp"))
    p = Podman(base, tuibox_launcher)
    loaded = p("runc", "load", "-i", str(image_archive), timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    try:
        yield p
    finally:
        p.shutdown()
        shutil.rmtree(base, ignore_errors=True)


class Docker:
    """dockerd (with its own containerd) on a private data root, exec root and socket."""

    def __init__(self, base: Path, launcher: Path) -> None:
        self.base = base
        self.sock = base / "docker.sock"
        self.exec_root = base / "exec"
        (base / "config").mkdir()
        (base / "daemon.json").write_text("{}\n")
        self.log = base / "dockerd.log"
        argv = [
            "/usr/sbin/dockerd",
            "--config-file",
            str(base / "daemon.json"),
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(self.exec_root),
            "--pidfile",
            str(base / "dockerd.pid"),
            "-H",
            f"unix://{self.sock}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--storage-driver=overlay2",
            "--add-runtime",
            f"tuibox={launcher}",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        wait_for(self.sock, self.proc, self.log)
        self.env = dict(os.environ, DOCKER_CONFIG=str(base / "config"))
        deadline = time.monotonic() + 30
        while self("version").returncode != 0:
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.1)

    def state_root(self, runtime: str) -> Path:
        return self.exec_root / f"runtime-{runtime}" / "moby"

    def argv(self, *args: str) -> list[str]:
        # /usr/local/bin/docker may be another client: the Debian one matches the daemon
        return ["/usr/bin/docker", "-H", f"unix://{self.sock}", *args]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*args), timeout=timeout, env=self.env)

    def ok(self, *args: str) -> str:
        p = self(*args)
        assert p.returncode == 0, f"docker {' '.join(args)} -> {p.returncode}\n{p.stderr}"
        return p.stdout

    def shutdown(self) -> None:
        self("rm", "-f", *self("ps", "-aq").stdout.split(), timeout=60)
        stop(self.proc, timeout=30)
        for ln in reversed(mounts_naming(str(self.base))):
            subprocess.run(["umount", "-l", ln.split()[4]], check=False)


@pytest.fixture(scope="session")
def docker(engines_dir: Path, tuibox_launcher: Path, image_archive: Path) -> Iterator[Docker]:
    base = engines_dir / "docker"
    base.mkdir()
    d = Docker(base, tuibox_launcher)
    try:
        loaded = d("load", "-i", str(image_archive), timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        yield d
    finally:
        d.shutdown()


class Containerd:
    """containerd on a private root, state dir and socket; `ctr` in a namespace of ours."""

    NAMESPACE = "tuibox-tests"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.address = base / "containerd.sock"
        self.state = base / "state"
        (base / "config.toml").write_text(
            "version = 2\n"
            f'root = "{base}/root"\n'
            f'state = "{self.state}"\n'
            # the CRI plugin would look for CNI configs and a sandbox image: not ours to test
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.address}"\n'
            "[ttrpc]\n"
            f'  address = "{base}/containerd.ttrpc.sock"\n'
            "[debug]\n"
            '  address = ""\n'
        )
        self.log = base / "containerd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["/usr/bin/containerd", "--config", str(base / "config.toml")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_for(self.address, self.proc, self.log)

    def runc_root(self, runtime: str) -> Path:
        return self.base / f"runc-root-{runtime}"

    def argv(self, *args: str) -> list[str]:
        return ["/usr/bin/ctr", "--address", str(self.address), "-n", self.NAMESPACE, *args]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*args), timeout=timeout)

    def shutdown(self) -> None:
        for cid in self("containers", "ls", "-q").stdout.split():
            self("tasks", "kill", "-s", "KILL", cid)
            self("tasks", "delete", cid)
            self("containers", "delete", cid)
        stop(self.proc)
        for ln in reversed(mounts_naming(str(self.base))):
            subprocess.run(["umount", "-l", ln.split()[4]], check=False)


@pytest.fixture(scope="session")
def containerd(engines_dir: Path, image_archive: Path) -> Iterator[Containerd]:
    base = engines_dir / "containerd"
    base.mkdir()
    c = Containerd(base)
    try:
        loaded = c("images", "import", str(image_archive), timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        yield c
    finally:
        c.shutdown()
