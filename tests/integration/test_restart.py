"""A box's lifecycle past `stopped`: start again, restart, restart policies, `tuibox boot`.

Every check runs on the real kernel with a private --root; networks are the test's own
bridge and subnet (test_network.py's `net` fixture, which checks that nothing is left).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_network import Net, _fetch, _free_port, assert_no_trace, host_veth, links, net, ruleset
from test_oci_contract import runc_spec_bundle

from tests.conftest import TB, unique
from tuibox.runtime.cgroups.hierarchy import default_leaf

pytestmark = pytest.mark.root
__all__ = ["net"]  # the fixture, used by name


def boxes(tb: TB) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for b in json.loads(tb("list", "--format", "json").stdout)}


def wait_for(what: Callable[[], bool], timeout: float = 15.0, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"not in time: {why}"
        time.sleep(0.05)


def record(tb: TB, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tb.root / name / "state.json").read_text())
    return data


def monitor_alive(tb: TB, name: str) -> bool:
    from tuibox.runtime.linux import proc

    known = record(tb, name)["extra"].get("monitor")
    return bool(known) and proc.is_alive(known[0], known[1])


def cgroup_dirs(tb: TB, name: str) -> list[Path]:
    """This box's cgroup directories that exist, in every hierarchy of this host."""
    leaf = default_leaf(name, str(tb.root))
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/{leaf}") if p.is_dir()]


def memory_limit(tb: TB, name: str) -> int:
    cg = boxes(tb)[name]["cgroup"]
    v1 = Path("/sys/fs/cgroup/memory") / cg.lstrip("/") / "memory.limit_in_bytes"
    v2 = Path("/sys/fs/cgroup/unified") / cg.lstrip("/") / "memory.max"
    return int((v1 if v1.exists() else v2).read_text())


def test_restart_and_start_keep_the_layer_address_ports_and_limits(tb: TB, net: Net) -> None:
    """Done when: a new pid, the same address and the same files in its writable layer,
    from `restart` and from `start` of the stopped box."""
    name, port = unique("rs"), _free_port()
    # The page is written once, into the writable layer; every later run serves that file.
    serve = (
        "test -f /www/index.html || { mkdir -p /www && echo made-by-$$-$RANDOM > "
        "/www/index.html; }; exec httpd -f -p 80 -h /www"
    )
    tb(
        "run", "-d", "--image", "busybox", "--network", "default", "--memory", "64m",
        "-p", f"127.0.0.1:{port}:80", "-e", "TOKEN=s3cret", name, "sh", "-c", serve,
    )  # fmt: skip
    first = boxes(tb)[name]
    page = _fetch(port)
    assert page.startswith(b"made-by-")
    # What the box is made again from: private, as records are (the env holds secrets).
    assert (tb.root / name / "request.json").stat().st_mode & 0o777 == 0o600
    assert "s3cret" in (tb.root / name / "request.json").read_text()

    tb("restart", "-t", "1", name)
    second = boxes(tb)[name]
    assert second["status"] == "running" and second["pid"] not in (0, first["pid"])
    assert not os.path.exists(f"/proc/{first['pid']}/cwd")  # the old init is gone
    for key in ("address", "ports", "limits", "image"):
        assert second[key] == first[key], key
    assert memory_limit(tb, name) == 64 * 1024 * 1024
    assert _fetch(port) == page  # the same file, through the same port
    assert tb("exec", name, "sh", "-c", "echo $TOKEN").stdout == "s3cret\n"

    tb("stop", "-t", "1", name)
    assert boxes(tb)[name]["status"] == "stopped"
    tb("start", name)
    third = boxes(tb)[name]
    assert third["status"] == "running" and third["pid"] not in (0, second["pid"])
    assert (third["address"], third["ports"]) == (first["address"], first["ports"])
    assert _fetch(port) == page
    assert third["created"] == first["created"]  # the same box, not a new one
    tb("destroy", "--force", name)
    assert_no_trace(tb, net, [name])
    assert not tb.layer(name).exists()


def test_a_failed_start_of_a_stopped_box_leaves_nothing(
    tb: TB, net: Net, busybox_rootfs: Path, tmp_path: Path
) -> None:
    """Its last run's cgroup, lease, port and veth are released; a start that fails early
    (its root is gone) or late (its program is gone) makes nothing that stays: the box is
    stopped, starts once the cause is gone, and destroys cleanly."""
    rootfs = tmp_path / "own-rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    bundle = runc_spec_bundle(tmp_path / "bundle", rootfs, ["sleep", "1000"])
    name, port = unique("ff"), _free_port()
    tb(
        "run", "-d", "--bundle", str(bundle), "--network", "default", "--memory", "64m",
        "-p", f"127.0.0.1:{port}:80", name,
    )  # fmt: skip
    address = boxes(tb)[name]["address"]
    tb("stop", "-t", "1", name)

    def nothing_held() -> None:
        assert boxes(tb)[name]["status"] == "stopped"
        assert cgroup_dirs(tb, name) == []
        assert host_veth(tb, name) not in links()
        assert not net.leases.exists() or os.listdir(net.leases) == []
        assert net.table not in ruleset()  # its last box left: the ports went with it

    moved = tmp_path / "moved-away"
    rootfs.rename(moved)
    assert "root.path" in tb.fails("start", name)
    nothing_held()
    moved.rename(rootfs)
    sleep = rootfs / "bin" / "sleep"
    target = os.readlink(sleep) if sleep.is_symlink() else None
    sleep.unlink()
    assert "sleep" in tb.fails("start", name)
    nothing_held()
    if target is not None:
        sleep.symlink_to(target)
    else:
        shutil.copy2(rootfs / "bin" / "busybox", sleep)
    tb("start", name)
    again = boxes(tb)[name]
    assert again["status"] == "running" and again["address"] == address
    tb("destroy", "--force", name)
    assert_no_trace(tb, net, [name])


def test_on_failure_3_restarts_three_times_then_stays_stopped(tb: TB, busybox_rootfs: Path) -> None:
    name = unique("of")
    tb(
        "run", "-d", "--restart", "on-failure:3", "--rootfs", str(busybox_rootfs), name,
        "sh", "-c", "echo run; exit 1",
    )  # fmt: skip

    def done() -> bool:
        box = boxes(tb)[name]
        return (
            box["status"] == "stopped"
            and box["restart"]["count"] == 3
            and not monitor_alive(tb, name)
        )

    # Backoffs of 100, 200 and 400 ms: well under two seconds on an idle machine.
    wait_for(done, why="3 restarts")
    time.sleep(0.6)  # a 4th would come 800 ms after the last exit; it must not
    box = boxes(tb)[name]
    assert box["status"] == "stopped" and box["exit_status"] == 1
    assert box["restart"] == {
        "policy": "on-failure", "max": 3, "count": 3, "last_exit": 1,
        "user_stopped": False, "error": None,
    }  # fmt: skip
    # the first run and 3 restarts (its last line may come a moment late: see below)
    wait_for(lambda: tb("logs", name).stdout == "run\n" * 4, why="the 4 runs' output")
    row = next(ln for ln in tb("list").stdout.splitlines() if ln.startswith(name))
    assert "3 (exit 1)" in row
    # A user's start begins the count afresh.
    tb("start", name)
    wait_for(done, why="3 more restarts")
    # Under load the last run's line can reach the log a moment after its monitor is seen
    # gone (not understood yet: see the session notes); every run's line must be there.
    wait_for(lambda: tb("logs", name).stdout == "run\n" * 8, why="the 8 runs' output")
    tb("destroy", name)


def test_always_restarts_a_crash_but_never_a_user_stop_or_kill(
    tb: TB, busybox_rootfs: Path
) -> None:
    name = unique("al")
    tb("run", "-d", "--restart", "always", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    first = boxes(tb)[name]["pid"]
    os.kill(first, signal.SIGKILL)  # from the host: a crash, as far as the policy knows

    def restarted() -> bool:
        box = boxes(tb)[name]
        return box["status"] == "running" and box["pid"] not in (0, first)

    wait_for(restarted, why="restart after a crash")
    box = boxes(tb)[name]
    assert (box["restart"]["count"], box["restart"]["last_exit"]) == (1, 137)

    tb("stop", "-t", "1", name)
    wait_for(lambda: not monitor_alive(tb, name), why="monitor leaves")
    time.sleep(0.4)  # longer than the next backoff (200 ms)
    box = boxes(tb)[name]
    assert box["status"] == "stopped" and box["restart"]["user_stopped"] is True

    tb("start", name)
    box = boxes(tb)[name]
    assert box["status"] == "running"
    assert (box["restart"]["count"], box["restart"]["user_stopped"]) == (0, False)
    tb("kill", name, "KILL")
    wait_for(lambda: not monitor_alive(tb, name), why="monitor leaves")
    time.sleep(0.3)
    assert boxes(tb)[name]["status"] == "stopped"
    tb("destroy", name)


def test_destroy_while_a_restart_waits_out_its_backoff(tb: TB, busybox_rootfs: Path) -> None:
    """A monitor sleeping before a restart leaves as soon as its box is being destroyed:
    the destroy does not wait for it (nor for a 5 s timeout)."""
    name = unique("bo")
    tb(
        "run", "-d", "--restart", "always", "--rootfs", str(busybox_rootfs), name,
        "sh", "-c", "exit 3",
    )  # fmt: skip
    wait_for(lambda: boxes(tb)[name]["restart"]["count"] >= 3, why="a few restarts")
    start = time.monotonic()
    tb("destroy", "--force", name)
    assert time.monotonic() - start < 3
    assert tb.names() == [] and cgroup_dirs(tb, name) == []


def test_boot_starts_always_and_unless_stopped_boxes(tb: TB, busybox_rootfs: Path) -> None:
    """Done when: `tuibox boot` after killing every init and monitor from the host starts the
    `always` boxes. The reboot itself is simulated the way RELIABILITY.md detects one: each
    record's boot id is another boot's."""
    names = {p: unique(p.split("-")[0][:6]) for p in ("always", "unless-stopped", "no")}
    stopped_by_user = unique("us")
    for policy, name in [*names.items(), ("unless-stopped", stopped_by_user)]:
        tb(
            "run", "-d", "--restart", policy, "--rootfs", str(busybox_rootfs), name,
            "sleep", "1000",
        )  # fmt: skip
    tb("stop", "-t", "1", stopped_by_user)
    old = {}
    for name in [*names.values(), stopped_by_user]:
        data = record(tb, name)
        old[name] = data["pid"]
        monitor = data["extra"].get("monitor")
        if monitor:  # the monitor first: otherwise it would restart the box at once
            os.kill(monitor[0], signal.SIGKILL)
        if data["pid"] and os.path.exists(f"/proc/{data['pid']}"):
            os.kill(data["pid"], signal.SIGKILL)
    wait_for(lambda: all(b["status"] == "stopped" for b in boxes(tb).values()), why="stopped")
    for name in old:  # another boot's records
        path = tb.root / name / "state.json"
        data = json.loads(path.read_text())
        data["extra"]["boot_id"] = "00000000-0000-0000-0000-000000000000"
        path.write_text(json.dumps(data))

    out = tb("boot").stdout.split()
    assert sorted(out) == sorted([names["always"], names["unless-stopped"]])
    now = boxes(tb)
    for name in out:
        assert now[name]["status"] == "running" and now[name]["pid"] not in (0, old[name])
    assert now[names["no"]]["status"] == now[stopped_by_user]["status"] == "stopped"
    assert tb("boot").stdout == ""  # nothing left to start
    tb("destroy", "--force", *names.values(), stopped_by_user)


def test_a_start_killed_half_way_leaves_a_stopped_box(tb: TB, busybox_rootfs: Path) -> None:
    name = unique("kh")
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    tb("stop", "-t", "0", name)
    proc = subprocess.run(
        tb.argv("start", name),
        env={**os.environ, "TUIBOX_FAULT": "attach"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL
    wait_for(lambda: boxes(tb)[name]["status"] == "stopped", why="stopped, not debris")
    assert json.loads(tb("gc", "--format", "json").stdout)["items"] == []
    tb("start", name)
    assert boxes(tb)[name]["status"] == "running"
    tb("destroy", "--force", name)
    assert cgroup_dirs(tb, name) == []


def test_bad_policies_and_verbs_are_one_line(tb: TB, busybox_rootfs: Path) -> None:
    rootfs = str(busybox_rootfs)
    for bad, words in (
        ("sometimes", "must be no, on-failure[:N], always or unless-stopped"),
        ("always:3", "only on-failure takes a count"),
        ("on-failure:x", "must be a whole number"),
        ("on-failure:-1", "must be a whole number"),
    ):
        line = tb.fails("run", "-d", "--restart", bad, "--rootfs", rootfs, unique("b"), "true")
        assert f"--restart {bad!r}" in line and words in line, line
    line = tb.fails("run", "--restart", "always", "--rootfs", rootfs, unique("b"), "true")
    assert "needs a detached box" in line
    assert "missing NAME" in tb.fails("restart", code=2)
    assert "does not exist" in tb.fails("restart", "nosuch")
    assert "--timeout 'x'" in tb.fails("restart", "-t", "x", "nosuch")
    assert tb.names() == []


def test_an_engine_box_is_not_started_again(tb: TB, busybox_rootfs: Path, tmp_path: Path) -> None:
    """Engine mode (runc's create): the engine owns the lifecycle, as with runc."""
    bundle = runc_spec_bundle(tmp_path / "b", busybox_rootfs, ["true"])
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
    wait_for(lambda: tb.state(name)["status"] == "stopped", why="stopped")
    assert "engine" in tb.fails("start", name)
    assert not (tb.root / name / "request.json").exists()
    tb("delete", name)
