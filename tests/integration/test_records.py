"""Records that survive faults (issue 12, items 2-5): a damaged record shows as `unknown` and
`destroy --force` still tears the box down from kernel facts; a deleted box dir is found by
`gc`; a leaked cgroup is never reused with its old limits; destroy reports what it could not
release and keeps the state to retry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, tb_at, unique
from tests.integration.test_faults import cgroups, processes

pytestmark = pytest.mark.root

DAMAGE: dict[str, Callable[[Path], None]] = {
    "wrong type": lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "pid": "x"})),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot json{"),
    "empty": lambda p: p.write_bytes(b""),
    "missing": lambda p: p.unlink(),
}


def running(tb: TB, bundle: str, name: str) -> None:
    tb("run", "-d", "--bundle", bundle, name)


def test_damaged_records_are_listed_and_destroyed_from_kernel_facts(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    names = {kind: unique("d") for kind in DAMAGE}
    good = unique("good")
    running(tb, bundle, good)
    for kind, name in names.items():
        running(tb, bundle, name)
        DAMAGE[kind](tb.root / name / "state.json")
    table = tb("list").stdout
    rows = {ln.split()[0]: ln for ln in table.splitlines()[1:]}
    assert "running" in rows[good]
    for name in names.values():
        assert rows[name].split()[1] == "unknown", table
    assert "field 'pid' is 'x', it must be an integer" in rows[names["wrong type"]]
    assert "state.json is not JSON" in rows[names["garbage"]]
    assert "state.json is empty" in rows[names["empty"]]
    assert "no state.json" in rows[names["missing"]]
    listed = {r["id"]: r for r in json.loads(tb("list", "--format", "json").stdout)}
    assert listed[names["empty"]]["status"] == "unknown"
    assert listed[names["empty"]]["problem"] == "state.json is empty"
    # Without --force: one clear line, nothing touched.
    line = tb.fails("destroy", names["garbage"])
    assert "record is unreadable" in line and "destroy --force" in line, line
    assert len(processes(str(tmp_path))) == 5
    for name in names.values():
        tb("destroy", "--force", name)
    assert tb.names() == [good]
    assert len(processes(str(tmp_path))) == 1  # only the good box's shell
    assert {c.rpartition("-")[2] for c in cgroups(tb.root)} == {good.rpartition("-")[2]}
    for name in names.values():  # every name can be used again
        running(tb, bundle, name)


def test_gc_finds_a_deleted_box_dir_and_spares_another_root(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    name = unique("gone")
    running(tb, bundle, name)
    with tb_at(tmp_path / "other", tmp_path / "data2", tmp_path / "other") as other:
        # the same box name in another state root: its cgroup must survive our gc
        running(other, bundle, name)
        subprocess.run(["rm", "-rf", str(tb.root / name)], check=True)
        assert tb("list", "-q").stdout == ""
        dry = json.loads(tb("gc", "--format", "json").stdout)
        # its cgroup, and its dir on the data root (its log), listed in that order
        assert [(i["kind"], i["box"]) for i in dry["items"]] == [
            ("cgroup", name),
            ("layer", name),
        ], dry
        assert len(processes(str(tmp_path))) == 2  # a dry run touches nothing
        tb("gc", "--yes")
        assert tb("gc").stdout == "no debris\n"
        assert cgroups(tb.root) == set()
        assert other.state(name)["status"] == "running"
        assert len(processes(str(tmp_path))) == 1
        running(tb, bundle, name)  # the name is free again


def test_a_leaked_cgroup_is_not_reused_with_its_old_limits(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    from tuibox.runtime.cgroups.hierarchy import box_path, detect

    name = unique("leak")
    mount = detect().v1.get("pids")
    if mount is None:
        pytest.skip("no v1 pids controller here")
    leaked = Path(mount + box_path(None, name, str(tb.root)))
    leaked.mkdir(parents=True)
    try:
        (leaked / "pids.max").write_text("7")
        bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000"]))
        tb("run", "-d", "--bundle", bundle, name)
        assert (leaked / "pids.max").read_text().strip() == "max"
    finally:
        tb("destroy", "--force", name, check=False)
        if leaked.exists():
            leaked.rmdir()


def test_destroy_reports_a_failed_teardown_and_keeps_the_state(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    name = unique("tear")
    tb("run", "-d", "--bundle", str(make_bundle(["/bin/true"])), name)
    tb("wait", name)
    cg = json.loads((tb.root / name / "state.json").read_text())["extra"]["cgroup_dirs"]
    blocker = Path(next(iter(cg["v1"].values()))) / "blocker"
    blocker.mkdir()  # a sub-cgroup: the box's cgroup cannot be removed
    try:
        start = time.monotonic()
        proc = tb("destroy", name, check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert lines and all(ln.startswith("tuibox: error: ") for ln in lines), lines
        assert f"box '{name}': teardown failed: cgroups: cannot remove cgroup" in lines[0]
        assert time.monotonic() - start < 15
        assert tb.state(name)["status"] == "stopped"  # kept, to retry
    finally:
        blocker.rmdir()
    tb("destroy", name)
    assert name not in tb.names()
    assert not os.path.exists(blocker.parent)


def test_gc_removes_a_keeper_socket_whose_keeper_died(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    name = unique("keep")
    tb("run", "-d", "-t", "--bundle", str(make_bundle(["/bin/sh", "-c", "sleep 1000"])), name)
    assert tb("gc").stdout == "no debris\n"  # a live keeper's socket is not debris
    pid = tb.state(name)["pid"]
    keeper = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    os.kill(keeper, 9)
    sock = tb.root / name / "console.sock"
    deadline = time.monotonic() + 5
    while Path(f"/proc/{keeper}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    dry = json.loads(tb("gc", "--format", "json").stdout)
    assert [(i["kind"], i["path"]) for i in dry["items"]] == [("socket", str(sock))], dry
    tb("gc", "--yes")
    assert not sock.exists() and tb.state(name)["status"] == "running"


def test_gc_bad_input_is_one_line_and_a_dry_run_makes_nothing(tb: TB) -> None:
    assert "--format 'xml': must be table or json" in tb.fails("gc", "--format", "xml")
    assert "unexpected argument 'now'" in tb.fails("gc", "now", code=2)
    assert tb("gc").stdout == "no debris\n"
    assert json.loads(tb("gc", "--yes", "--format", "json").stdout) == {
        "removed": True,
        "items": [],
        "failures": [],
    }
    assert not tb.root.exists()


def test_a_full_state_disk_fails_a_create_cleanly(
    tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    """ENOSPC at each write of a create (the claim, the intent, the next records): one line,
    and no dir, cgroup or process left."""
    state = tmp_path / "small"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)], check=True)
    try:
        bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
        with tb_at(state, tmp_path / "data", tmp_path) as t:
            failed = []
            filler = state / "filler"
            for free in range(4, 64, 4):  # less room each time a create needs, until it fits
                filler.unlink(missing_ok=True)
                filler.write_bytes(b"\0" * ((64 - free) * 1024))
                name = unique(f"full{free}")
                proc = t("run", "-d", "--bundle", bundle, name, check=False)
                if proc.returncode == 0:
                    break
                assert "no space left on device" in proc.stderr, proc.stderr
                assert len(proc.stderr.splitlines()) == 1, proc.stderr
                failed.append(free)
                assert t.names() == []
                assert cgroups(state) == set()
                assert processes(str(tmp_path)) == set()
            assert len(failed) >= 2, failed  # the claim and at least one record write
            assert t.names() == [name]  # with room enough, it works
            fd = os.open(state / "more", os.O_WRONLY | os.O_CREAT)  # now not a byte left
            try:
                while os.write(fd, b"\0" * 1024):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            t("destroy", "--force", name)  # a full disk never makes a box undestroyable
            assert t.names() == []
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_gc_releases_the_userns_lease_of_a_deleted_box(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    name = unique("ns")
    tb("run", "-d", "--userns", "auto", "--bundle", bundle, name)
    lease = tb.root / ".userns" / f"{name}.lease"
    assert lease.exists()
    subprocess.run(["rm", "-rf", str(tb.root / name)], check=True)
    dry = json.loads(tb("gc", "--format", "json").stdout)
    assert sorted(i["kind"] for i in dry["items"]) == ["cgroup", "layer", "userns-lease"], dry
    tb("gc", "--yes")
    assert not lease.exists() and processes(str(tmp_path)) == set()
    assert cgroups(tb.root) == set()


def test_gc_finds_the_writable_layer_of_a_deleted_image_box(tb: TB) -> None:
    name = unique("lay")
    tb("run", "--keep", "--image", "busybox", name, "sh", "-c", "echo x > /x")
    layer = tb.layer(name)
    assert (layer / "upper/x").read_text() == "x\n"
    assert oct(layer.stat().st_mode & 0o777) == "0o700"
    assert oct(layer.parent.stat().st_mode & 0o777) == "0o700"
    subprocess.run(["rm", "-rf", str(tb.root / name)], check=True)
    items = json.loads(tb("gc", "--format", "json").stdout)["items"]
    assert {"kind": "layer", "box": name, "path": str(layer), "action": "remove"} in items
    assert layer.exists()  # a dry run
    tb("gc", "--yes")
    assert not layer.exists()
    assert json.loads(tb("gc", "--format", "json").stdout)["items"] == []


@pytest.mark.parametrize("how", ["destroy", "gc"])
def test_an_unreadable_image_box_leaves_no_layer(tb: TB, how: str) -> None:
    """No record, so no `layer` field: the layer is derived from the name, the state root
    and the data root (`recovery._layers`), not left to gc (nor to a second gc)."""
    name = unique("lay")
    tb("run", "-d", "--image", "busybox", name, "sh", "-c", "echo x > /x; sleep 1000")
    layer = tb.layer(name)
    deadline = time.monotonic() + 10
    while not (layer / "upper/x").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (tb.root / name / "state.json").write_bytes(b"\x00garbage")
    if how == "destroy":
        tb("destroy", "--force", name)
    else:
        items = json.loads(tb("gc", "--format", "json").stdout)["items"]
        assert [(i["kind"], i["box"]) for i in items] == [("box", name)], items
        tb("gc", "--yes")
    assert not layer.exists()
    assert name not in tb.names() and cgroups(tb.root) == set()
    assert json.loads(tb("gc", "--format", "json").stdout)["items"] == []


@pytest.mark.parametrize("sig", [9, 15])
def test_foreground_run_killed_still_removes_its_box(
    tb: TB, make_bundle: Callable[..., Path], sig: int
) -> None:
    # SIGTERM is forwarded and the run cleans up itself; after a SIGKILL the init dies with
    # the CLI (PDEATHSIG) and `gc` removes the box the run would have removed.
    name = unique()
    # pid 1 of its namespace: SIGTERM reaches it only through a handler
    bundle = make_bundle(["sh", "-c", "trap 'exit 3' TERM; sleep 100 & wait"])
    cli = subprocess.Popen(
        tb.argv("run", "--bundle", str(bundle), name),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (tb.root / name).is_dir() or tb.state(name)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cli.send_signal(sig)
    cli.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (tb.root / name).is_dir() and tb.state(name)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    if sig == 15:
        assert cli.returncode == 3
        assert not (tb.root / name).exists()
        return
    items = json.loads(tb("gc", "--format", "json").stdout)["items"]
    assert {"kind": "box", "box": name}.items() <= items[0].items()
    tb("gc", "--yes")
    assert not (tb.root / name).exists()
    assert name not in cgroups(tb)


@pytest.mark.parametrize("force", [False, True])
def test_destroy_returns_only_once_the_monitor_is_gone(
    tb: TB, make_bundle: Callable[..., Path], force: bool
) -> None:
    """`ps` names a detached box's monitor, and nothing of the box outlives its destroy: the
    monitor (stopped here so that it cannot leave by itself) is waited for."""
    name = unique("mon")
    tb("run", "-d", "--bundle", str(make_bundle(["/bin/sh", "-c", "sleep 1000"])), name)
    init = tb.state(name)["pid"]
    with open(f"/proc/{init}/stat") as f:
        monitor = int(f.read().rpartition(")")[2].split()[1])
    assert Path(f"/proc/{monitor}/comm").read_text() == "tuibox-monitor\n"
    os.kill(monitor, signal.SIGSTOP)
    if force:  # and from kernel facts alone: the record is gone
        (tb.root / name / "state.json").unlink()
    else:  # killed first: a plain destroy refuses a running box
        tb("kill", name, "KILL")
    try:
        destroy = subprocess.Popen(
            tb.argv("destroy", *(["--force"] if force else []), name),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            destroy.wait(1.5)  # the box is dead by now; its monitor is not
    finally:
        os.kill(monitor, signal.SIGCONT)
    _, err = destroy.communicate(timeout=30)
    assert destroy.returncode == 0, err
    from tuibox.runtime.linux.proc import is_alive

    assert not is_alive(monitor, None)
    assert name not in tb.names()
