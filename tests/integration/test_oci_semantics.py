"""OCI spec semantics engines rely on, each compared with runc 1.1 on the same bundle where
practical: `type: cgroup` mounts, the cgroup namespace, inherited namespaces, hooks, and a
config.json shaped like podman's for `podman run busybox echo hi`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique
from tests.integration.actions_helpers import assert_no_cgroup, cgpath
from tuibox.runtime import defaults
from tuibox.runtime.cgroups.hierarchy import detect

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("runc") is None, reason="compared with runc"),
]

OWN_NS = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
CGROUP_MOUNT = {
    "destination": "/sys/fs/cgroup",
    "type": "cgroup",
    "source": "cgroup",
    "options": ["ro", "nosuid", "noexec", "nodev"],
}
V1 = bool(detect().v1)


class Both:
    """Runs one bundle under tuibox and under runc (private --root each)."""

    def __init__(self, tb: TB, tmp: Path) -> None:
        self.tb = tb
        self.runc_root = tmp / "runc"

    def runc(self, bundle: Path, name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runc", "--root", str(self.runc_root), "run", name],
            cwd=bundle,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def run(
        self, bundle: Path
    ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        ours = self.tb("run", "--bundle", str(bundle), unique("t"), check=False)
        theirs = self.runc(bundle, unique("r"))
        return ours, theirs


@pytest.fixture
def both(tb: TB, tmp_path: Path) -> Iterator[Both]:
    b = Both(tb, tmp_path)
    yield b
    if b.runc_root.is_dir():  # `runc run` deletes its container; nothing may be left
        left = [p.name for p in b.runc_root.iterdir()]
        assert not left, f"runc containers left: {left}"


@pytest.fixture
def oci_bundle(tmp_path: Path, busybox_rootfs: Path) -> Callable[..., Path]:
    """A bundle the way engines write them: every namespace listed, runc's mounts."""

    def make(args: list[str], **fields: Any) -> Path:
        bundle = tmp_path / unique("bundle")
        bundle.mkdir()
        config: dict[str, Any] = {
            "ociVersion": "1.0.2",
            "root": {"path": str(busybox_rootfs), "readonly": True},
            "process": {
                "args": args,
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "user": {"uid": 0, "gid": 0},
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {
                    "destination": "/dev",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
                },
                {
                    "destination": "/sys",
                    "type": "sysfs",
                    "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"],
                },
                CGROUP_MOUNT,
            ],
            "linux": {"namespaces": OWN_NS},
        }
        for key, value in fields.items():
            if key in ("process", "linux"):
                config[key].update(value)
            else:
                config[key] = value
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    return make


# ---- mounts of type cgroup ---------------------------------------------------------------

# What a box shows of its cgroup mount: names, per-mount options and root, and whether the
# view is the box's own cgroup (its init is pid 1 in cgroup.procs there).
SHOW_CGROUPS = (
    "ls /sys/fs/cgroup; "
    "awk '$5 ~ \"^/sys/fs/cgroup\" {print $5, $6, $9}' /proc/self/mountinfo; "
    "for d in /sys/fs/cgroup/*/; do grep -qx 1 $d/cgroup.procs && echo own $d; done; "
    "touch /sys/fs/cgroup/pids/x 2>/dev/null || echo read-only"
)


@pytest.mark.skipif(not V1, reason="v1 view; the v2 one is unit-tested")
def test_cgroup_mount_v1_is_the_box_own_cgroups_read_only_as_runc(
    both: Both, oci_bundle: Callable[..., Path]
) -> None:
    ours, theirs = both.run(oci_bundle(["sh", "-c", SHOW_CGROUPS]))
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout
    assert "/sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime cgroup" in ours.stdout
    assert "own /sys/fs/cgroup/memory/" in ours.stdout and "read-only" in ours.stdout
    assert "unified" not in ours.stdout  # a hybrid host's cgroup2 is not shown (runc 1.1)


SHOW_CGROUPNS = (
    "cut -d: -f3 /proc/self/cgroup | sort -u; "
    "awk '$5 ~ \"^/sys/fs/cgroup/\" {print $4}' /proc/self/mountinfo | sort -u"
)


def test_cgroup_namespace_shows_the_box_cgroup_as_root_as_runc(
    both: Both, oci_bundle: Callable[..., Path]
) -> None:
    bundle = oci_bundle(
        ["sh", "-c", SHOW_CGROUPNS], linux={"namespaces": [*OWN_NS, {"type": "cgroup"}]}
    )
    ours, theirs = both.run(bundle)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout == "/\n/\n"
    # without one, the box sees where it is
    ours, theirs = both.run(oci_bundle(["sh", "-c", SHOW_CGROUPNS]))
    assert ours.stdout.startswith("/") and ours.stdout != "/\n/\n"


def test_cgroup_mount_and_namespace_with_exec_and_nothing_left(
    tb: TB, oci_bundle: Callable[..., Path]
) -> None:
    name = unique("cg")
    bundle = oci_bundle(["sleep", "600"], linux={"namespaces": [*OWN_NS, {"type": "cgroup"}]})
    tb("run", "-d", "--bundle", str(bundle), name)
    out = tb("exec", name, "sh", "-c", "cut -d: -f3 /proc/self/cgroup | sort -u").stdout
    assert out == "/\n"
    tb("destroy", "--force", name)
    assert_no_cgroup(cgpath(tb, name))


# ---- linux.namespaces absent -------------------------------------------------------------

SHOW_NS = "for n in net pid ipc uts mnt; do readlink /proc/self/ns/$n; done"


def test_namespaces_absent_inherit_all_but_mount_box_minimal_keeps_isolation(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    mine = [os.readlink(f"/proc/self/ns/{n}") for n in ("net", "pid", "ipc", "uts", "mnt")]
    inherit = make_bundle(["sh", "-c", SHOW_NS], linux={"namespaces": None})
    seen = tb("run", "--bundle", str(inherit), unique()).stdout.split()
    assert seen[:4] == mine[:4]  # the caller's net, pid, ipc, uts
    assert seen[4] != mine[4]  # a mount namespace of the box's own, always
    # no linux section at all (box's own minimal configs): every namespace is the box's
    seen = tb("run", "--bundle", str(make_bundle(["sh", "-c", SHOW_NS])), unique()).stdout
    assert not set(seen.split()) & set(mine)


# ---- hooks -------------------------------------------------------------------------------

HOOK = """#!/bin/sh
# kind, then: the state's status and pid, our mount namespace, what / holds
state=$(cat)
status=$(echo "$state" | sed 's/.*"status": *"\\([a-z]*\\)".*/\\1/')
pid=$(echo "$state" | sed 's/.*"pid": *\\([0-9]*\\).*/\\1/')
echo "$1 $status $pid $(readlink /proc/self/ns/mnt) $(ls / | grep -c hooks)" >> "$2"
"""


def test_hooks_run_in_order_where_and_with_the_state_the_spec_says(
    tb: TB, oci_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    d = tmp_path / "hooks"
    d.mkdir()
    (d / "hook.sh").write_text(HOOK)
    (d / "hook.sh").chmod(0o755)
    log = d / "log"

    def hook(kind: str, inside: bool = False) -> list[dict[str, Any]]:
        path, out = ("/hooks/hook.sh", "/hooks/log") if inside else (str(d / "hook.sh"), str(log))
        return [{"path": path, "args": ["hook.sh", kind, out], "timeout": 10}]

    kinds = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    hooks = {k: hook(k) for k in kinds} | {"startContainer": hook("startContainer", True)}
    bind = {"destination": "/hooks", "type": "bind", "source": str(d), "options": ["rbind"]}
    bundle = oci_bundle(["sleep", "600"], hooks=hooks, mounts=[*json_mounts(), bind])
    name = unique("hk")
    tb("run", "-d", "--bundle", str(bundle), name)
    pid = tb.state(name)["pid"]
    tb("destroy", "--force", name)
    host_mnt = os.readlink("/proc/self/ns/mnt")
    lines = [ln.split() for ln in log.read_text().splitlines()]
    assert [ln[0] for ln in lines] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    by = {ln[0]: ln[1:] for ln in lines}
    assert by["prestart"] == by["createRuntime"] == ["creating", str(pid), host_mnt, "0"]
    # createContainer: the box's mount namespace, before pivot_root (the host's / still)
    assert by["createContainer"][:2] == ["creating", str(pid)]
    assert by["createContainer"][2] != host_mnt and by["createContainer"][3] == "0"
    # startContainer: inside the box (its root holds /hooks)
    assert by["startContainer"][0] == "created" and by["startContainer"][3] == "1"
    assert by["poststart"] == ["running", str(pid), host_mnt, "0"]
    assert by["poststop"][0] == "stopped" and host_mnt in by["poststop"]  # no pid: stopped


def json_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        CGROUP_MOUNT,
    ]


@pytest.mark.parametrize(
    ("kind", "hook", "said"),
    [
        ("prestart", {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}, "exited 3"),
        ("createRuntime", {"path": "/nonexistent"}, "cannot run it: no such file"),
        (
            "createContainer",
            {"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1},
            "timed out after 1s",
        ),
    ],
)
def test_failing_hook_fails_create_as_runc_and_leaves_nothing(
    both: Both, oci_bundle: Callable[..., Path], kind: str, hook: dict[str, Any], said: str
) -> None:
    poststop = {"path": "/bin/sh", "args": ["sh", "-c", 'echo "$0" >> "$1"', "ran", "MARK"]}
    bundle = oci_bundle(["true"], hooks={kind: [hook], "poststop": [poststop]})
    marker = bundle / "poststop-ran"
    config = json.loads((bundle / "config.json").read_text().replace("MARK", str(marker)))
    (bundle / "config.json").write_text(json.dumps(config))
    name = unique("hf")
    err = both.tb.fails("run", "-d", "--bundle", str(bundle), name)
    assert f"hooks.{kind}[0]" in err and said in err, err
    assert marker.read_text() == "ran\n"  # a failed create ends with poststop, as runc
    assert both.tb.names() == []
    assert_no_cgroup(cgpath(both.tb, name))
    if kind == "createContainer":
        return  # runc 1.1 waits 30 s for the hook's child holding its output
    theirs = both.runc(bundle, unique("r"))
    assert theirs.returncode != 0 and marker.read_text() == "ran\nran\n"


def test_failing_poststart_and_poststop_are_warnings(
    both: Both, oci_bundle: Callable[..., Path]
) -> None:
    fail = [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]
    # runc 1.1 logs a failed poststop and goes on, as we do
    ours, theirs = both.run(oci_bundle(["sh", "-c", "echo ran"], hooks={"poststop": fail}))
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == "ran\n"
    assert ours.stderr == "tuibox: warning: hooks.poststop[0] /bin/sh: exited 4\n"
    # a failed poststart: a warning, as runtime-spec says (runc 1.1 kills the box instead)
    bundle = oci_bundle(["sh", "-c", "echo ran"], hooks={"poststart": fail, "poststop": fail})
    ours = both.tb("run", "--bundle", str(bundle), unique(), check=False)
    assert ours.returncode == 0 and ours.stdout == "ran\n", ours.stderr
    assert "tuibox: warning: hooks.poststart[0] /bin/sh: exited 4" in ours.stderr


def test_failing_start_container_hook_keeps_the_program_from_running(
    tb: TB, oci_bundle: Callable[..., Path]
) -> None:
    hook = [{"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]
    bundle = oci_bundle(["sh", "-c", "echo ran"], hooks={"startContainer": hook})
    proc = tb("run", "--bundle", str(bundle), unique(), check=False)
    assert proc.returncode != 0 and "ran" not in proc.stdout
    assert "hooks.startContainer[0] /bin/sh: exited 5" in proc.stderr


# ---- a config.json shaped like podman's ------------------------------------------------


def podman_config(rootfs: Path, userdata: Path, args: list[str], cgroup: str) -> dict[str, Any]:
    """podman 4.3's config.json for `podman run busybox echo hi` (private network namespace
    instead of a path to podman's; bind sources under `userdata`)."""
    for f in ("hostname", "resolv.conf", "hosts", ".containerenv"):
        (userdata / f).write_text("podman\n" if f == "hostname" else "")
    (userdata / "shm").mkdir()

    def bind(dest: str, src: str, *extra: str) -> dict[str, Any]:
        return {
            "destination": dest,
            "type": "bind",
            "source": str(userdata / src),
            "options": ["bind", "rprivate", *extra],
        }

    caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    ]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0, "umask": 18},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
                "container=podman",
                "HOME=/root",
                "HOSTNAME=023b56020269",
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000},
                {"type": "RLIMIT_NPROC", "hard": 32768, "soft": 32768},
            ],
            "oomScoreAdj": 0,
        },
        "root": {"path": str(rootfs)},
        "hostname": "023b56020269",
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            bind("/etc/hostname", "hostname"),
            bind("/etc/resolv.conf", "resolv.conf"),
            bind("/etc/hosts", "hosts"),
            bind("/dev/shm", "shm", "nosuid", "noexec", "nodev"),
            bind("/run/.containerenv", ".containerenv"),
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "annotations": {
            "io.container.manager": "libpod",
            "io.kubernetes.cri-o.TTY": "false",
            "io.podman.annotations.autoremove": "TRUE",
            "io.podman.annotations.init": "FALSE",
            "io.podman.annotations.privileged": "FALSE",
            "org.opencontainers.image.stopSignal": "15",
        },
        "linux": {
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 2048}},
            "cgroupsPath": cgroup,
            "namespaces": OWN_NS,
            "maskedPaths": [
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/fs/selinux",
                "/sys/dev/block",
            ],
            "readonlyPaths": [
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


PODMAN_PROBE = (
    "echo hi; hostname; cat /etc/hostname; ulimit -n; ls /sys/fs/cgroup | wc -l; "
    "cat /proc/sys/net/ipv4/ping_group_range; grep -c . /proc/keys; "
    "touch /proc/sys/x 2>/dev/null || echo ro-sys; exit 3"
)


@pytest.mark.parametrize(
    "args", [["echo", "hi"], ["sh", "-c", PODMAN_PROBE]], ids=["echo", "probe"]
)
def test_podman_shaped_config_runs_as_under_runc_and_leaves_nothing(
    both: Both, busybox_rootfs: Path, tmp_path: Path, args: list[str]
) -> None:
    bundle = tmp_path / "podman"
    (bundle / "userdata").mkdir(parents=True)
    cgroup = f"/tuibox-test-{unique('pod')}"
    config = podman_config(busybox_rootfs, bundle / "userdata", args, f"{cgroup}/ctr")
    (bundle / "config.json").write_text(json.dumps(config))
    try:
        ours, theirs = both.run(bundle)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (
            ours.stderr,
            theirs.stderr,
        )
        assert ours.stdout.startswith("hi\n")
        assert ours.stderr == theirs.stderr == ""
        assert both.tb.names() == []
        assert_no_cgroup(f"{cgroup}/ctr")
    finally:
        for d in (os.path.join(m, cgroup.lstrip("/")) for m in _mounts()):
            if os.path.isdir(d):
                os.rmdir(d)  # the parent both runtimes leave, as an engine's slice


def _mounts() -> set[str]:
    h = detect()
    return {*h.v1.values(), *([h.unified] if h.unified else []), "/sys/fs/cgroup/systemd"}


# ---- linux.resources.unified ---------------------------------------------------------------


def test_unified_keys_written_to_the_box_cgroup2_or_refused_for_a_v1_controller(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    h = detect()
    name = unique("un")
    if "memory" in h.v1:  # this hybrid host: memory is a v1 controller
        bundle = make_bundle(linux={"resources": {"unified": {"memory.high": "1G"}}})
        err = tb.fails("run", "-d", "--bundle", str(bundle), name)
        assert "linux.resources.unified.memory.high: the memory controller is on cgroup v1" in err
        assert tb.names() == []
        assert_no_cgroup(cgpath(tb, name))
    if h.unified is None:
        return
    unified = {"cgroup.max.descendants": "7"}
    bundle = make_bundle(["sleep", "600"], linux={"resources": {"unified": unified}})
    tb("run", "-d", "--bundle", str(bundle), name)
    path = os.path.join(h.unified, cgpath(tb, name).lstrip("/"), "cgroup.max.descendants")
    assert Path(path).read_text() == "7\n"
    tb("destroy", "--force", name)
    assert_no_cgroup(cgpath(tb, name))


# ---- a config.json shaped like docker's: the fields engines set, compared field by field ----

DOCKER_CAPS = list(defaults.CAPABILITIES)  # docker's default set, which tuibox's is
# moby's default device rules (oci/defaults.go and its devices allowlist)
DOCKER_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    *(
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))
    ),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]
# What a box shows of the fields: ids, oom score, rlimits, no_new_privs and capabilities,
# sysctls, every mount (point, options, propagation, type, super options), /dev, masking.
DOCKER_PROBE = (
    "id; cat /proc/self/oom_score_adj; ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu; "
    "grep -E 'NoNewPrivs|Cap(Eff|Bnd|Prm|Inh|Amb)' /proc/self/status; "
    "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward; "
    "awk '{print $5, $6, $7, $9, $NF}' /proc/self/mountinfo "
    "| sed 's/shared:[0-9]*/shared/; s/master:[0-9]*/master/'; "
    "ls -ln /dev | awk '{print $1, $3, $4, $5, $6, $NF}'; "
    "cat /proc/kcore 2>&1 | head -c 20; echo; ls /proc/acpi /sys/firmware | wc -l; "
    "touch /proc/sysrq-trigger; echo > /proc/sys/kernel/shmall; "
    "head -c 1 /dev/zero | wc -c; mknod /tmp/m c 1 1 && head -c 1 /tmp/m; echo end"
)


def docker_config(rootfs: Path, userdata: Path, propagation: str, cgroup: str) -> dict[str, Any]:
    for f in ("resolv.conf", "hostname", "hosts"):
        (userdata / f).write_text(f"{f}\n")

    def opts(*o: str) -> list[str]:
        return list(o)

    return {
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]},
            "args": ["sh", "-c", DOCKER_PROBE],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=abc"],
            "cwd": "/",
            "capabilities": {k: DOCKER_CAPS for k in ("bounding", "effective", "permitted")},
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
                {"type": "RLIMIT_NPROC", "hard": 500, "soft": 400},
            ],
            "noNewPrivileges": True,
            "oomScoreAdj": 500,
        },
        "root": {"path": str(rootfs)},
        "hostname": "abc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": opts("nosuid", "strictatime", "mode=755", "size=65536k"),
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": opts(
                    "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"
                ),
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": opts("nosuid", "noexec", "nodev", "ro"),
            },
            CGROUP_MOUNT,
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": opts("nosuid", "noexec", "nodev"),
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": opts("nosuid", "noexec", "nodev", "mode=1777", "size=67108864"),
            },
            *(
                {
                    "destination": f"/etc/{f}",
                    "type": "bind",
                    "source": str(userdata / f),
                    "options": opts("rbind", "rprivate"),
                }
                for f in ("resolv.conf", "hostname", "hosts")
            ),
        ],
        # docker's network set-up is a prestart hook (libnetwork-setkey)
        "hooks": {"prestart": [{"path": "/bin/true", "args": ["libnetwork-setkey", "abc"]}]},
        "linux": {
            "sysctl": {"kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1"},
            "resources": {"devices": DOCKER_DEVICE_RULES, "blockIO": {"weight": 0}},
            "cgroupsPath": cgroup,
            "namespaces": [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")],
            "maskedPaths": [
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/devices/virtual/powercap",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
            "rootfsPropagation": propagation,
        },
    }


@pytest.mark.parametrize("propagation", ["private", "slave", "rslave", "shared"])
def test_docker_shaped_fields_as_runc(
    both: Both, busybox_rootfs: Path, tmp_path: Path, propagation: str
) -> None:
    bundle = tmp_path / "docker"
    (bundle / "userdata").mkdir(parents=True)
    cgroup = f"/tuibox-test-{unique('dk')}"
    config = docker_config(busybox_rootfs, bundle / "userdata", propagation, f"{cgroup}/ctr")
    (bundle / "config.json").write_text(json.dumps(config))
    try:
        ours, theirs = both.run(bundle)
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
        assert ours.stderr == theirs.stderr
        mine, runc = ours.stdout.splitlines(), theirs.stdout.splitlines()
        if propagation == "shared":
            # runc 1.1 leaves the root private whatever it is asked (its rootfs is a bind of
            # a dir whose parent mount it made private); tuibox makes it shared, as asked.
            root = [i for i, ln in enumerate(mine) if ln.startswith("/ ")]
            assert len(root) == 1 and " shared " in mine[root[0]], mine
            assert " shared " not in runc[root[0]]
            del mine[root[0]], runc[root[0]]
        assert mine == runc
        out = ours.stdout
        assert "uid=1000 gid=1000 groups=10(uucp),20" in out or "groups=10" in out, out
        assert "NoNewPrivs:\t1" in out and "\n500\n1024\n4096\n400\n500\n" in out
        assert "123456789\n1\n" in out and out.endswith("1\nend\n")
        assert both.tb.names() == []
        assert_no_cgroup(f"{cgroup}/ctr")
    finally:
        for d in (os.path.join(m, cgroup.lstrip("/")) for m in _mounts()):
            if os.path.isdir(d):
                os.rmdir(d)


def test_nofile_above_the_host_hard_limit_fails_as_runc_and_leaves_nothing(
    both: Both, oci_bundle: Callable[..., Path]
) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit to go above")
    rl = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]
    bundle = oci_bundle(["true"], process={"rlimits": rl})
    name = unique("rl")
    err = both.tb.fails("run", "-d", "--bundle", str(bundle), name)
    assert f"RLIMIT_NOFILE: cannot raise the hard limit from {hard} to {hard + 1}" in err
    assert both.tb.names() == []
    assert_no_cgroup(cgpath(both.tb, name))
    assert both.runc(bundle, unique("r")).returncode != 0


def test_run_without_hooks_loads_no_hook_runner(tb: TB, make_bundle: Callable[..., Path]) -> None:
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['tuibox'] + sys.argv[1:]\n"
        "from tuibox.cli import main\n"
        "rc = main()\n"
        "print('LOADED', [m for m in ('tuibox.runtime.hooks', 'json', 'subprocess', 'select')"
        " if m in sys.modules])\n"
    )

    def loaded(**fields: Any) -> str:
        argv = [sys.executable, "-c", code, "--root", str(tb.root), "run"]
        argv += ["--bundle", str(make_bundle(**fields)), unique()]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return proc.stdout.splitlines()[-1]

    assert loaded() == "LOADED []"
    hooked = loaded(hooks={"poststart": [{"path": "/bin/true"}]})
    assert "tuibox.runtime.hooks" in hooked


def test_every_rlimit_runc_knows_as_runc(both: Both, oci_bundle: Callable[..., Path]) -> None:
    import resource

    from tuibox.runtime.spec import RLIMITS

    rlimits = []
    for name, number in RLIMITS.items():
        _, hard = resource.getrlimit(number)
        soft = hard if hard == resource.RLIM_INFINITY else max(hard - 1, 0)
        # the spec's numbers are unsigned 64-bit; RLIM_INFINITY is their maximum
        big = 2**64 - 1
        rlimits.append(
            {
                "type": name,
                "soft": big if soft == resource.RLIM_INFINITY else soft,
                "hard": big if hard == resource.RLIM_INFINITY else hard,
            }
        )
    bundle = oci_bundle(["cat", "/proc/self/limits"], process={"rlimits": rlimits})
    ours, theirs = both.run(bundle)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout and len(ours.stdout.splitlines()) == 17


def test_cgroup_mount_onto_a_file_is_one_line_and_leaves_nothing(
    tb: TB, oci_bundle: Callable[..., Path]
) -> None:
    bad = {**CGROUP_MOUNT, "destination": "/bin/busybox"}
    bundle = oci_bundle(["true"], mounts=[*json_mounts(), bad])
    name = unique("bad")
    err = tb.fails("run", "-d", "--bundle", str(bundle), name)
    assert err == "tuibox: error: mounts: mount /bin/busybox: not a directory"
    assert tb.names() == []
    assert_no_cgroup(cgpath(tb, name))
