"""OCI semantics without root: the cgroup mount's plan (from kernel-shaped mountinfo and
/proc/self/cgroup), the hooks' parsing and runner, the linux.namespaces rule."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime import defaults, hooks
from tuibox.runtime.errors import SpecError
from tuibox.runtime.linux.cgroup_mount import plan_view
from tuibox.runtime.spec import parse_spec
from tuibox.runtime.spec_model import Hook, Namespace

# ---- cgroup mounts -----------------------------------------------------------------------

# This host (hybrid: v1 hierarchies plus cgroup2 at /sys/fs/cgroup/unified), as the kernel
# writes mountinfo, with a co-mounted cpu,cpuacct as Debian/Ubuntu v1 hosts have.
HYBRID_MOUNTINFO = "".join(
    [
        "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n",
        "28 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n",
        "29 28 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - "
        "cgroup2 cgroup2 rw,nsdelegate\n",
        "30 28 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - "
        "cgroup cgroup rw,xattr,name=systemd\n",
        "33 28 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - "
        "cgroup cgroup rw,cpu,cpuacct\n",
        "34 28 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - "
        "cgroup cgroup rw,memory\n",
        "35 28 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - "
        "cgroup cgroup rw,net_cls,net_prio\n",
        "90 34 0:32 /tuibox/other /srv/box/sys/fs/cgroup/memory ro,nosuid - "
        "cgroup cgroup rw,memory\n",
    ]
)
HYBRID_CGROUP = """\
12:net_cls,net_prio:/tuibox/b
4:memory:/tuibox/b
3:cpu,cpuacct:/tuibox/b
1:name=systemd:/user.slice/session-1.scope
0::/tuibox/b
"""


def test_v1_view_binds_each_hierarchy_at_the_box_cgroup_with_co_mount_symlinks() -> None:
    view = plan_view(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert view.v2_dir is None  # a hybrid host's cgroup2 mount is not shown (runc 1.1)
    assert view.binds == [
        ("systemd", "/sys/fs/cgroup/systemd/user.slice/session-1.scope", []),
        ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/tuibox/b", ["cpu", "cpuacct"]),
        # the first mount of a hierarchy is the host's; a box's bind of it comes later
        ("memory", "/sys/fs/cgroup/memory/tuibox/b", []),
        ("net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio/tuibox/b", ["net_cls", "net_prio"]),
    ]


def test_v1_view_under_a_mount_whose_root_is_not_slash() -> None:
    # Inside a container the hierarchy is mounted at its own cgroup: paths are relative.
    info = "40 39 0:32 /tuibox/b /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
    view = plan_view(info, "4:memory:/tuibox/b/inner\n")
    assert view.binds == [("memory", "/sys/fs/cgroup/memory/inner", [])]
    # a cgroup outside what the mount shows cannot be bound: left out
    assert plan_view(info, "4:memory:/elsewhere\n").binds == []


# A pure v2 host (Debian 12, Fedora): one cgroup2 mount, /proc/self/cgroup has one line.
V2_MOUNTINFO = (
    "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
)


def test_v2_view_is_the_box_cgroup_directory() -> None:
    view = plan_view(V2_MOUNTINFO, "0::/tuibox/3c39a106-b\n")
    assert view.binds == []
    assert view.v2_mount == "/sys/fs/cgroup"
    assert view.v2_dir == "/sys/fs/cgroup/tuibox/3c39a106-b"
    assert plan_view(V2_MOUNTINFO, "0::/\n").v2_dir == "/sys/fs/cgroup"


def test_escaped_mount_points() -> None:
    info = "33 28 0:31 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,pids\n"
    assert plan_view(info, "7:pids:/b\n").binds == [("my dir", "/sys/fs/cgroup/my dir/b", [])]


# ---- linux.namespaces --------------------------------------------------------------------

BASE: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"args": ["/bin/sh"], "cwd": "/"},
}


def spec_of(**top: Any) -> Any:
    return parse_spec({**BASE, **top}, "/b")


def test_namespaces_rule() -> None:
    # no linux section (box's own minimal configs): box's isolation
    spec = spec_of()
    assert spec.linux.namespaces == defaults.NAMESPACES and spec.default_namespaces
    # a linux section without namespaces: inherited (runtime-spec), but for the mount one
    assert spec_of(linux={}).linux.namespaces == (Namespace("mount"),)
    assert spec_of(linux={"namespaces": None}).linux.namespaces == (Namespace("mount"),)
    # a list without mount gets one; a list with it is kept as given
    given = spec_of(linux={"namespaces": [{"type": "pid"}, {"type": "cgroup"}]})
    assert given.linux.namespaces == (Namespace("pid"), Namespace("cgroup"), Namespace("mount"))
    joined = spec_of(linux={"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]})
    assert joined.linux.namespaces == (Namespace("mount", "/proc/1/ns/mnt"),)


def test_inherited_uts_refuses_a_hostname() -> None:
    with pytest.raises(SpecError):
        spec_of(linux={}, domainname="example.org")


# ---- hooks: parsing ----------------------------------------------------------------------


def test_hooks_parse_every_kind_in_order() -> None:
    spec = spec_of(
        hooks={
            "prestart": [{"path": "/usr/bin/a", "args": ["a", "-x"], "env": ["K=v"]}],
            "poststop": [{"path": "/b", "timeout": 5}, {"path": "/c"}],
            "createRuntime": [],
        }
    )
    assert spec.hooks == {
        "prestart": (Hook("/usr/bin/a", ("a", "-x"), ("K=v",)),),
        "poststop": (Hook("/b", timeout=5), Hook("/c")),
    }
    assert spec_of(hooks={}).hooks == {} and spec_of().hooks == {}


@pytest.mark.parametrize(
    ("hooks_field", "message"),
    [
        ({"prestart": [{"args": []}]}, "hooks.prestart[0].path: is required"),
        ({"poststart": [{"path": "rel/x"}]}, "hooks.poststart[0].path: must be an absolute path"),
        ({"poststop": [{"path": "/x", "timeout": 0}]}, "timeout: must be greater than zero"),
        ({"poststop": [{"path": "/x", "timeout": -1}]}, "timeout: must be a non-negative"),
        ({"createContainer": [{"path": "/x", "args": "a"}]}, "args: must be a list of strings"),
        ({"startContainer": {"path": "/x"}}, "hooks.startContainer: must be a list of objects"),
        ([], "hooks: must be an object"),
    ],
)
def test_bad_hooks_are_one_line(hooks_field: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_of(hooks=hooks_field)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_hook_kind_is_warned() -> None:
    assert spec_of(hooks={"preStart": [{"path": "/x"}]}).unsupported == ("hooks.preStart",)


# ---- hooks: the runner -------------------------------------------------------------------


def test_runner_gives_state_on_stdin_args_and_env(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = f'printf "%s|%s|%s|" "$0" "$1" "$K" > {out}; cat >> {out}'
    hook = Hook("/bin/sh", ("sh", "-c", script, "zero", "arg1"), ("K=v",))
    state = hooks.state_json("1.0.2", "b", "creating", 42, "/bundle", {"a": "b"})
    hooks.run_hooks("createRuntime", (hook,), state)
    head, _, body = out.read_text().rpartition("|")
    assert head == "zero|arg1|v"
    assert json.loads(body) == {
        "ociVersion": "1.0.2",
        "id": "b",
        "status": "creating",
        "pid": 42,
        "bundle": "/bundle",
        "annotations": {"a": "b"},
    }


def test_runner_failure_timeout_and_missing_program() -> None:
    state = hooks.state_json("1.0.2", "b", "stopped", 1, "/b", {})
    assert "pid" not in json.loads(state)
    failing = Hook("/bin/sh", ("sh", "-c", "echo nope >&2; exit 3"))
    with pytest.raises(hooks.HookError, match=r"hooks.prestart\[0\] /bin/sh: exited 3: nope"):
        hooks.run_hooks("prestart", (failing,), state)
    slow = Hook("/bin/sh", ("sh", "-c", "sleep 31.7; true"), timeout=1)
    began = time.monotonic()
    with pytest.raises(hooks.HookError, match="timed out after 1s"):
        hooks.run_hooks("createContainer", (slow,), state)
    assert time.monotonic() - began < 5
    # the hook's children went with it (its own process group)
    ps = os.popen("ps -eo args").read()
    assert "sleep 31.7" not in ps
    with pytest.raises(hooks.HookError, match="cannot run it: no such file"):
        hooks.run_hooks("createRuntime", (Hook("/nonexistent/hook"),), state)


def test_runner_warn_only_kinds_go_on(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    mark = tmp_path / "second"
    first = Hook("/bin/sh", ("sh", "-c", "exit 2"))
    second = Hook("/bin/sh", ("sh", "-c", f"touch {mark}"))
    hooks.run_hooks("poststop", (first, second), b"{}")
    assert mark.exists()
    assert "tuibox: warning: hooks.poststop[0] /bin/sh: exited 2" in capfd.readouterr().err


def test_runner_does_not_wait_for_a_daemon_holding_its_output() -> None:
    # The hook exits at once; its background child keeps stdout open for 30 s.
    hook = Hook("/bin/sh", ("sh", "-c", "sleep 30 & exit 0"))
    began = time.monotonic()
    hooks.run_hooks("poststart", (hook,), b"{}")
    assert time.monotonic() - began < 5


def test_record_round_trip() -> None:
    spec = spec_of(
        hooks={
            "poststop": [{"path": "/x", "args": ["x"], "timeout": 3}],
            "prestart": [{"path": "/p"}],
        }
    )
    kept = json.loads(json.dumps(hooks.to_record(spec.hooks)))
    assert list(kept) == ["poststop"]  # only what runs after create is kept
    assert hooks.from_record(kept, "poststop") == spec.hooks["poststop"]
    assert hooks.from_record(None, "poststop") == () and hooks.from_record({"x": 1}, "x") == ()
    assert os.path.exists("/bin/sh")


def test_runner_passes_no_fd_but_0_to_2(tmp_path: Path) -> None:
    out = tmp_path / "fds"
    leak = os.open("/dev/null", os.O_RDONLY)  # inheritable, as an engine's may be
    os.set_inheritable(leak, True)
    try:
        hooks.run_hooks(
            "prestart", (Hook("/bin/sh", ("sh", "-c", f"ls /proc/self/fd > {out}")),), b"{}"
        )
    finally:
        os.close(leak)
    # 0-2, and the fd ls opens to read the directory
    assert len(out.read_text().split()) == 4, out.read_text()
