"""Fault injection (issue 12): the CLI SIGKILLed at every named point of create and destroy
(TUIBOX_FAULT=POINT, `box.fault`), for a plain, a --network, a -t and an --image box;
afterwards `destroy --force` (and, separately, `gc --yes`) must leave the host exactly as it
was: mounts, links, nft rules, cgroups, leases, writable layers, processes, state. And
host-side SIGKILLs of a box's init and of its reaper (monitor, or keeper of a -t box): `list`
and `wait` tell the truth, and `destroy` leaves the host as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TB, mountinfo, unique
from tests.integration.test_network import free_subnet, links, ruleset

pytestmark = pytest.mark.root

CREATE_POINTS = ("mkdir", "record", "cgroups", "network", "console", "fork", "attach", "ready")
DESTROY_POINTS = ("destroy-kill", "destroy-teardown")


def cgroups(root: Path) -> set[str]:
    from tuibox.runtime.cgroups.hierarchy import default_leaf, detect

    h = detect()
    prefix = default_leaf("", str(root)).rpartition("/")[2]
    out = set()
    for mount in {*h.v1.values(), *([h.unified] if h.unified else [])}:
        try:
            out |= {f"{mount}:{e}" for e in os.listdir(f"{mount}/tuibox") if e.startswith(prefix)}
        except OSError:
            pass
    return out


def leases(root: Path) -> set[str]:
    found = set()
    for sub in (".userns", ".network"):
        for d, _dirs, files in os.walk(root / sub):
            found |= {f"{d}/{f}" for f in files if f.endswith(".lease") or "/leases" in d}
    return found


def processes(marker: str) -> set[str]:
    """Our CLI, monitors, keepers (their argv names the root) and the boxes' shells (marker):
    pid, name and parent of each, so that a failure says which process was left."""
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                comm, _, rest = f.read().partition(" (")[2].rpartition(")")
            state, ppid = rest.split()[:2]
        except OSError:
            continue
        if marker.encode() in cmd and state != "Z":
            out.add(f"{pid} {comm} (parent {ppid})")
    return out


def own_tables(bridge: str | None) -> list[str]:
    """nft tables of this test's bridge (other sessions may be testing networks meanwhile)."""
    if bridge is None:
        return []
    text = ruleset()
    return [t for t in text.split("\ntable ") if f"tuibox-{bridge}" in t.split("{")[0]]


def own_links(tb: TB, names: list[str], bridge: str | None) -> set[str]:
    from tuibox.runtime.network.veth import host_name

    mine = {host_name(str(tb.root), n, 0) for n in names} | {bridge}
    return links() & mine


def host(tb: TB, tmp: Path, names: list[str], bridge: str | None = None) -> dict[str, object]:
    return {
        "mounts": sorted(ln for ln in mountinfo().splitlines() if str(tmp) in ln),
        "links": own_links(tb, names, bridge),
        "nft": own_tables(bridge),
        "cgroups": cgroups(tb.root),
        "leases": leases(tb.root),
        "layers": sorted(os.listdir(tb.data_root / "boxes"))
        if (tb.data_root / "boxes").is_dir()
        else [],
        "processes": processes(str(tmp)),
        "state": tb.names(),
    }


@pytest.fixture
def network(tb: TB, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bridge = "tbf" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("TUIBOX_BRIDGE", bridge)
    monkeypatch.setenv("TUIBOX_SUBNET", free_subnet())
    try:
        yield bridge
    finally:
        tb.cleanup()
        tb("network", "rm", "default", check=False)
        if bridge in links():
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        table = f"tuibox-{bridge}"
        if table in ruleset():
            subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)


def killed(tb: TB, point: str, *args: str) -> int:
    env = {**os.environ, "TUIBOX_FAULT": point}
    proc = subprocess.run(
        tb.argv(*args), env=env, capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode in (0, -signal.SIGKILL), (point, proc.returncode, proc.stderr)
    return proc.returncode


def sweep(tb: TB, how: str, name: str) -> None:
    if how == "destroy":
        if (tb.root / name).exists():
            out = tb("destroy", "--force", name, check=False)
            assert out.returncode == 0, (name, out.stderr)
    else:
        out = tb("gc", "--yes", check=False)
        assert out.returncode == 0, (name, out.stdout, out.stderr)


def run_faults(
    tb: TB, tmp: Path, create: Callable[[str], list[str]], kind: str, bridge: str | None = None
) -> None:
    skipped = {
        "plain": {"network", "console"},
        "image": {"network", "console"},
        "net": {"console"},
        "terminal": {"network"},
    }[kind]
    names = [unique(f"{p[:3]}{h[0]}") for h in ("destroy", "gc") for p in CREATE_POINTS]
    names += [unique(f"{p[8:11]}{h[0]}") for h in ("destroy", "gc") for p in DESTROY_POINTS]
    todo = iter(names)
    # A first box brings what outlives boxes by design (a network's bridge) into being.
    warm = unique("w")
    tb(*create(warm))
    tb("destroy", "--force", warm)
    before = host(tb, tmp, names, bridge)
    for how in ("destroy", "gc"):
        for point in CREATE_POINTS:
            name = next(todo)
            rc = killed(tb, point, *create(name))
            # a point of a stage this kind does not use is never reached
            assert (rc == 0) == (point in skipped), (kind, point, rc)
            if rc == 0 and how == "gc":
                tb("destroy", "--force", name)  # the point is not on this kind's path
            sweep(tb, how, name)
            assert host(tb, tmp, names, bridge) == before, (kind, how, point)
            # the name can be used again
            tb(*create(name))
            tb("destroy", "--force", name)
        for point in DESTROY_POINTS:
            name = next(todo)
            tb(*create(name))
            env = {**os.environ, "TUIBOX_FAULT": point}
            proc = subprocess.run(tb.argv("destroy", "--force", name), env=env, timeout=30)
            assert proc.returncode == -signal.SIGKILL, (point, proc.returncode)
            sweep(tb, how, name)
            assert host(tb, tmp, names, bridge) == before, (kind, how, point)


def test_faults_plain(tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_faults(tb, tmp_path, lambda n: ["create", "--bundle", bundle, n], "plain")


def test_faults_network(
    tb: TB, network: str, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_faults(
        tb,
        tmp_path,
        lambda n: ["create", "--bundle", bundle, "--network", "default", n],
        "net",
        network,
    )


def test_faults_terminal(tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_faults(tb, tmp_path, lambda n: ["create", "-t", "--bundle", bundle, n], "terminal")


def test_faults_image(tb: TB, tmp_path: Path) -> None:
    # the writable layer under the data root is made in `_plan`, between the intent and the
    # next record: the points after it check that `destroy --force`/gc find it anyway
    program = ["sh", "-c", "sleep 1000", str(tmp_path)]
    run_faults(tb, tmp_path, lambda n: ["create", "--image", "busybox", n, *program], "image")


# ---- host-side SIGKILL of a box's init and of its reaper


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def listed(tb: TB, name: str) -> dict[str, object]:
    rows = json.loads(tb("list", "--format", "json").stdout)
    return next(r for r in rows if r["id"] == name)


def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def run_reaper_kills(tb: TB, tmp: Path, run: Callable[[str], list[str]], reaper: str) -> None:
    """Boxes of one kind: the init of one and the reaper (monitor or keeper) of two others
    SIGKILLed from the host; each then ends as the user would see it, and is destroyed (the
    third while it still runs, with --force)."""
    warm = unique("w")
    tb(*run(warm))
    tb("destroy", "--force", warm)
    init_box, reaper_box, orphan = unique("init"), unique("reap"), unique("orph")
    names = [init_box, reaper_box, orphan]
    before = host(tb, tmp, names, os.environ.get("TUIBOX_BRIDGE"))
    for name in names:
        tb(*run(name))

    # The init killed: its reaper records 137, for list and wait alike.
    os.kill(tb.state(init_box)["pid"], signal.SIGKILL)
    assert tb("wait", init_box, timeout=15).stdout == "137\n"
    row = listed(tb, init_box)
    assert (row["status"], row["exit_status"], row["pid"]) == ("stopped", 137, 0), row

    # The reaper killed: the box goes on; once its init dies nobody knows its status.
    init = tb.state(reaper_box)["pid"]
    parent = parent_of(init)
    # one process, whatever its role: a -t box's monitor is its console keeper too
    assert Path(f"/proc/{parent}/comm").read_text() == "tuibox-monitor\n"
    os.kill(parent, signal.SIGKILL)
    until(lambda: gone(parent), f"the {reaper} is gone")
    row = listed(tb, reaper_box)
    assert (row["status"], row["exit_status"], row["pid"]) == ("running", None, init), row
    if reaper == "keeper":  # its socket is left, and nobody listens: gc says so
        sock = str(tb.root / reaper_box / "console.sock")
        items = json.loads(tb("gc", "--format", "json").stdout)["items"]
        assert [(i["kind"], i["path"]) for i in items] == [("socket", sock)], items
        assert "console keeper does not answer" in tb.fails("attach", reaper_box)
    os.kill(init, signal.SIGKILL)  # from the host too: no tuibox process sees it
    until(lambda: gone(init), "the init is gone")
    wait = tb("wait", reaper_box, timeout=15)
    assert wait.stdout == "unknown\n" and "exit status is unknown" in wait.stderr, wait
    row = listed(tb, reaper_box)
    assert (row["status"], row["exit_status"]) == ("stopped", None), row

    for name in (init_box, reaper_box):
        tb("destroy", name)  # both stopped: no --force needed
    orphan_init = tb.state(orphan)["pid"]
    os.kill(parent_of(orphan_init), signal.SIGKILL)
    tb("destroy", "--force", orphan)  # running, with nobody to reap it but the host's init
    assert gone(orphan_init)
    assert host(tb, tmp, names, os.environ.get("TUIBOX_BRIDGE")) == before
    assert tb("gc").stdout == "no debris\n"


def test_reaper_kills_plain(tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_reaper_kills(tb, tmp_path, lambda n: ["run", "-d", "--bundle", bundle, n], "monitor")


def test_reaper_kills_network(
    tb: TB, network: str, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_reaper_kills(
        tb,
        tmp_path,
        lambda n: ["run", "-d", "--bundle", bundle, "--network", "default", n],
        "monitor",
    )


def test_reaper_kills_terminal(tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    run_reaper_kills(tb, tmp_path, lambda n: ["run", "-d", "-t", "--bundle", bundle, n], "keeper")
