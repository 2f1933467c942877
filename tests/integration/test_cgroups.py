"""Cgroups on the real kernel (v1 hierarchies here; v2 is covered by tests/unit/test_cgroups.py):
limits from flags and from config.json, OOM kill, pids limit, freezer, update, cgroupsPath,
the device allowlist, and clean-up after destroy and after a failed create."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, unique
from tests.integration import actions_helpers
from tests.integration.actions_helpers import (
    Boxes,
    assert_no_cgroup,
    cgpath,
    cgroup_dirs,
    proc_state,
    v1_file,
    wait_for,
)
from tuibox.runtime.cgroups.hierarchy import detect

pytestmark = pytest.mark.root
boxes = actions_helpers.boxes  # the fixture

# linux.resources as podman 4.3 writes it for --memory 64m --memory-swap 128m --cpus 0.5
# --pids-limit 100 (fixtures/podman-4.3/config.resources.json)
PODMAN_RESOURCES = {
    "devices": [{"allow": False, "access": "rwm"}],
    "memory": {"limit": 67108864, "swap": 134217728},
    "cpu": {"quota": 50000, "period": 100000},
    "pids": {"limit": 100},
}

needs_v1 = pytest.mark.skipif(
    not {"memory", "pids", "freezer", "cpu", "devices"} <= set(detect().v1),
    reason="these checks read v1 control files; v2 is unit-tested",
)


def test_box_gets_a_cgroup_in_every_hierarchy_and_destroy_removes_it(tb: TB, boxes: Boxes) -> None:
    name = boxes.run("--memory", "64m", "--cpus", "0.5", "--pids-limit", "100")
    path = cgpath(tb, name)
    for d in cgroup_dirs(path):
        assert os.path.isdir(d), d
    pid = boxes.pid(name)
    own = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"memory:{path}" in own and f"pids:{path}" in own
    info = boxes.info(name)
    assert info["cgroup"] == path
    assert info["limits"] == {"memory": 64 << 20, "cpus": 0.5, "pids": 100}
    tb("destroy", "--force", name)
    assert_no_cgroup(path)


@needs_v1
def test_limits_from_flags_reach_the_files(tb: TB, boxes: Boxes) -> None:
    name = boxes.run(
        "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--cpu-shares", "512",
        "--cpuset-cpus", "0", "--pids-limit", "100",
    )  # fmt: skip
    path = cgpath(tb, name)
    assert v1_file("memory", path, "memory.limit_in_bytes") == str(64 << 20)
    assert v1_file("memory", path, "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert v1_file("cpu", path, "cpu.cfs_quota_us") == "50000"
    assert v1_file("cpu", path, "cpu.cfs_period_us") == "100000"
    assert v1_file("cpu", path, "cpu.shares") == "512"
    assert v1_file("cpuset", path, "cpuset.cpus") == "0"
    assert v1_file("pids", path, "pids.max") == "100"


@needs_v1
def test_resources_and_absolute_cgroups_path_from_config(tb: TB, boxes: Boxes) -> None:
    top = unique("/tuibox-it")
    path = f"{top}/box"
    resources = PODMAN_RESOURCES
    name = boxes.run(linux={"cgroupsPath": path, "resources": resources})
    assert boxes.info(name)["cgroup"] == path
    assert v1_file("memory", path, "memory.limit_in_bytes") == str(64 << 20)
    assert v1_file("memory", path, "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert v1_file("cpu", path, "cpu.cfs_quota_us") == "50000"
    assert v1_file("pids", path, "pids.max") == "100"
    devices = v1_file("devices", path, "devices.list").splitlines()
    assert "a *:* rwm" not in devices and "c 1:3 rwm" in devices and "c 136:* rwm" in devices
    tb("destroy", "--force", name)
    assert_no_cgroup(path)
    assert_no_cgroup(top)  # the parent was made for the box, so it goes too


@needs_v1
def test_memory_hog_is_oom_killed_and_the_box_survives(tb: TB, boxes: Boxes) -> None:
    name = boxes.run("--memory", "64m", "--memory-swap", "64m")
    # $(...) keeps 200 MB of anonymous memory in the shell: charged to the box's memcg.
    hog = tb("exec", name, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ok",
             check=False)  # fmt: skip
    assert hog.returncode == 137, hog
    assert "ok" not in hog.stdout
    oom = v1_file("memory", cgpath(tb, name), "memory.oom_control")
    assert (
        "oom_kill 1" in oom.splitlines()
        or int(v1_file("memory", cgpath(tb, name), "memory.failcnt")) > 0
    )
    assert tb.state(name)["status"] == "running"  # the box's init and the host live on


@needs_v1
def test_pids_limit_stops_a_fork_loop(tb: TB, boxes: Boxes) -> None:
    name = boxes.run("--pids-limit", "20")
    loop = "for i in $(seq 1 40); do sleep 60 >/dev/null 2>&1 & done; echo looped"
    out = tb("exec", name, "sh", "-c", loop, check=False)
    assert "can't fork" in out.stderr, out
    current = int(v1_file("pids", cgpath(tb, name), "pids.current"))
    assert current <= 20
    assert int(v1_file("pids", cgpath(tb, name), "pids.events").split()[-1]) > 0


@needs_v1
def test_pause_freezes_and_resume_thaws(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    tb("exec", "-d", name, "sleep", "900")
    pids = [p["pid"] for p in boxes.ps(name)]
    assert len(pids) == 2
    tb("pause", name)
    assert tb.state(name)["status"] == "paused"
    assert v1_file("freezer", cgpath(tb, name), "freezer.state") == "FROZEN"
    assert all(proc_state(p) == "D" for p in pids)  # frozen tasks sleep uninterruptibly
    assert "paused" in tb("list").stdout
    assert "cannot exec in box" in tb.fails("exec", name, "true")
    assert "cannot pause" in tb.fails("pause", name)
    tb("resume", name)
    assert tb.state(name)["status"] == "running"
    assert v1_file("freezer", cgpath(tb, name), "freezer.state") == "THAWED"
    wait_for(lambda: all(proc_state(p) == "S" for p in pids))
    assert "cannot resume" in tb.fails("resume", name)
    tb("pause", name)
    tb("destroy", "--force", name)  # a paused box still dies (thawed after SIGKILL)
    assert_no_cgroup(cgpath(tb, name))


@needs_v1
def test_update_changes_a_running_box(tb: TB, boxes: Boxes) -> None:
    name = boxes.run("--memory", "64m")
    path = cgpath(tb, name)
    tb("update", name, "--memory", "128m", "--cpus", "0.25", "--pids-limit", "30")
    assert v1_file("memory", path, "memory.limit_in_bytes") == str(128 << 20)
    assert v1_file("cpu", path, "cpu.cfs_quota_us") == "25000"
    assert v1_file("pids", path, "pids.max") == "30"
    assert boxes.info(name)["limits"] == {"memory": 128 << 20, "cpus": 0.25, "pids": 30}
    tb("update", name, "--pids-limit", "-1")
    assert v1_file("pids", path, "pids.max") == "max"
    assert boxes.info(name)["limits"]["pids"] is None
    assert "--memory 'x'" in tb.fails("update", name, "--memory", "x")


@needs_v1
def test_device_allowlist(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    assert tb("exec", name, "sh", "-c", "head -c 4 /dev/urandom | wc -c").stdout.strip() == "4"
    # mknod is allowed for any node ("c *:* m"); using one outside the list is not.
    out = tb("exec", name, "sh", "-c", "mknod /dev/xmem c 1 1 && head -c 1 /dev/xmem", check=False)
    assert out.returncode != 0 and "Operation not permitted" in out.stderr, out


def test_failed_create_removes_its_cgroups(tb: TB, make_bundle: Callable[..., Path]) -> None:
    name = unique("fail")
    bundle = make_bundle(["true"])
    # cpuset.cpus is checked by the kernel when the cgroup is written: after creation began.
    err = tb.fails("run", "--bundle", str(bundle), "--cpuset-cpus", "250", name)
    assert "cpuset.cpus" in err
    assert name not in tb.names()
    assert_no_cgroup(cgpath(tb, name))
    # a failure inside the init (after the init joined the cgroup) is undone as well
    bundle = make_bundle(
        ["true"], process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1 << 30}]}
    )
    assert "rlimits" in tb.fails("run", "-d", "--bundle", str(bundle), name)
    assert name not in tb.names()
    assert_no_cgroup(cgpath(tb, name))


@needs_v1
def test_stop_of_a_paused_box_delivers_sigterm(tb: TB, boxes: Boxes) -> None:
    name = boxes.run(args=("sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.1; done"))
    tb("pause", name)
    t0 = time.monotonic()
    tb("stop", "--timeout", "20", name)
    assert time.monotonic() - t0 < 10  # thawed to take the SIGTERM, not killed at the timeout
    assert tb("wait", name).stdout == "9\n"


def test_oom_kill_is_recorded_and_a_normal_exit_is_not(tb: TB, boxes: Boxes) -> None:
    # tail keeps /dev/zero's endless "line" in memory until the memory cgroup's OOM killer
    # takes it: the kernel's own verdict, read from the cgroup when the box stops.
    flags = ("--memory", "32m", "--memory-swap", "32m")
    hog = boxes.run(*flags, args=("tail", "/dev/zero"))
    proc = tb("wait", hog)
    assert proc.stdout == "137\n"
    assert "OOM killer" in proc.stderr
    assert boxes.info(hog)["oom_killed"] is True
    assert (tb.root / hog / "exit").read_text() == "137 oom\n"
    fine = boxes.run(*flags, args=("true",))
    proc = tb("wait", fine)
    assert proc.stdout == "0\n" and proc.stderr == ""
    assert boxes.info(fine)["oom_killed"] is False
    # a SIGKILL from outside is a 137 too, but not an OOM kill
    killed = boxes.run(*flags)
    os.kill(boxes.pid(killed), 9)
    assert tb("wait", killed).stdout == "137\n"
    assert boxes.info(killed)["oom_killed"] is False
