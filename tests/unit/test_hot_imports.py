"""What each hot verb imports, held to a list: engines call `state` (and `kill`, `delete`)
many times per container, and every module is ~0.1-0.3 ms of a budget that runc's 4-5 ms
`state` sets (docs/BENCHMARKS.md). A verb that starts importing more fails here; a module
that leaves the path only needs removing from its list.

Each verb runs in a fresh interpreter (`-S`, as the launcher's `-IS`) on a state root made
by hand, so no root or kernel feature is needed: a stopped box, and a "running" one whose
init is a `sleep` of this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuibox.runtime import state as st
from tuibox.runtime.linux import proc

REPO = Path(__file__).resolve().parents[2]

# Every hot verb: the CLI's entry, its argument parser, the records and their errors.
COMMON = {
    "tuibox",
    "tuibox.cli",
    "tuibox.cli.args",
    "tuibox.runtime",
    "tuibox.runtime.plain",
    "tuibox.runtime.fastjson",
    "tuibox.runtime.errors",
    "tuibox.runtime.linux",
    "tuibox.runtime.linux.proc",
    "tuibox.runtime.state",
    "tuibox.runtime.queries",
    "tuibox.runtime.cgroups",  # its tiny __init__: is a live box paused (freezer.state)?
}
# state and list: cli/query.py and nothing of the lifecycle.
QUERY = COMMON | {"tuibox.cli.query"}
# kill and delete: the lifecycle's verbs and the Runtime facade, without the create path.
LIFECYCLE = COMMON | {
    "tuibox.cli.lifecycle",
    "tuibox.cli.limits",
    "tuibox.cli.network",
    "tuibox.runtime.actions",
    "tuibox.runtime.box",
    "tuibox.runtime.guards",
    "tuibox.runtime.units",
}
# delete: the monitors' finder and the stages with a teardown (cgroups here; no confine,
# seccomp or console: stages/order.py NO_TEARDOWN).
DELETE = LIFECYCLE | {
    "tuibox.runtime.process",
    "tuibox.runtime.process.monitor",
    "tuibox.runtime.process.warmer",
    "tuibox.runtime.stages",
    "tuibox.runtime.stages.base",
    "tuibox.runtime.stages.order",
    "tuibox.runtime.cgroups.fs",
    "tuibox.runtime.cgroups.group",
    "tuibox.runtime.cgroups.hierarchy",
    "tuibox.runtime.cgroups.resources",
    "tuibox.runtime.cgroups.stage",
    "tuibox.runtime.cgroups.v1",
    "tuibox.runtime.cgroups.v2",
}
# delete --force, as every engine removes a container: also the teardown from kernel facts
# (recovery.py; the writable layer's path comes from the image store's data root).
FORCE = DELETE | {"tuibox.runtime.recovery", "tuibox.runtime.images", "tuibox.runtime.images.store"}
ALLOWED = {"state": QUERY, "list": QUERY, "kill": LIFECYCLE, "delete": DELETE, "force": FORCE}

# Standard modules none of them may load: each costs milliseconds (json and typing pull in
# re and enum) or means the create path leaked in (ctypes).
FORBIDDEN = {
    "ctypes",
    "json",
    "re",
    "enum",
    "typing",
    "pathlib",
    "dataclasses",
    "contextlib",
    "argparse",
    "signal",
    "socket",
    "shutil",
    "subprocess",
    "threading",
}
# What a verb may add to the bare interpreter's modules (-S -c 'import os'): C modules and
# `__future__` (every module's annotations import).
STDLIB_OK = {"__future__", "_json", "fcntl", "select", "_signal", "time", "errno", "builtins"}

PROBE = """
import os, sys
sys.path.insert(0, {repo!r})
base = set(sys.modules)
from tuibox.cli import main
code = main({argv!r})
sys.stdout.flush()
print("\\nMODULES", code, " ".join(sorted(set(sys.modules) - base)))
"""


def _imports(argv: list[str]) -> tuple[int, set[str]]:
    code = PROBE.format(repo=str(REPO), argv=argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUIBOX_")}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES "))
    _, rc, *mods = line.split(" ")
    return int(rc), {m for m in mods if m}


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    states = st.StateRoot(tmp_path / "state")
    freezer = tmp_path / "freezer"
    freezer.mkdir()
    (freezer / "freezer.state").write_text("THAWED\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        boxes = (
            ("stopped", "stopped", 0),
            ("live", "running", sleeper.pid),
            ("engine", "stopped", 0),
        )
        for name, status, pid in boxes:
            states.make_box_dir(name)
            record = st.BoxRecord(
                name,
                status,
                str(tmp_path),
                str(tmp_path / "rootfs"),
                pid=pid,
                starttime=proc.start_time(pid) if pid else None,
                command=["sleep", "60"],
                # what a real box's record says: the stages its create used
                extra={"stages": ["confine", "cgroups", "seccomp"], "boot_id": st.boot_id()},
            )
            if name == "engine":  # made by an engine's create (docs/OCI_CLI.md)
                record.extra["engine"] = True
            if pid:  # a live box's status also asks its freezer
                record.extra["cgroup"] = "/tuibox/live"
                record.extra["cgroup_dirs"] = {"v1": {"freezer": str(freezer)}}
            states.write(record)
        yield tmp_path / "state", sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    ("verb", "words"),
    [
        ("state", ["state", "live"]),
        ("list", ["list", "--format", "json"]),
        ("kill", ["kill", "live", "KILL"]),
        ("delete", ["delete", "stopped"]),
        ("force", ["delete", "--force", "engine"]),
    ],
)
def test_a_hot_verb_imports_only_its_list(
    root: tuple[Path, subprocess.Popen[bytes]], verb: str, words: list[str]
) -> None:
    state_root, sleeper = root
    rc, loaded = _imports(
        ["--root", str(state_root), "--data-root", str(state_root.parent / "data"), *words]
    )
    assert rc == 0
    ours = {m for m in loaded if m == "tuibox" or m.startswith("tuibox.")}
    assert ours - ALLOWED[verb] == set(), f"{verb} imports more than its list"
    assert loaded & FORBIDDEN == set()
    assert {m for m in loaded - ours if not m.startswith("encodings")} <= STDLIB_OK
    # ... and each verb did its work with them.
    if verb == "kill":
        assert sleeper.wait(timeout=10) == -9
    if verb == "delete":
        assert not (state_root / "stopped").exists()
    if verb == "force":
        assert not (state_root / "engine").exists()


def test_the_lists_are_not_stale(root: tuple[Path, subprocess.Popen[bytes]]) -> None:
    # A list that names modules no verb loads any more would let one creep back unseen.
    state_root, _ = root
    _, q = _imports(
        ["--root", str(state_root), "--data-root", str(state_root.parent / "data"), "state", "live"]
    )
    assert q >= QUERY
    _, d = _imports(
        [
            "--root",
            str(state_root),
            "--data-root",
            str(state_root.parent / "data"),
            "delete",
            "stopped",
        ]
    )
    assert {m for m in d if m.startswith("tuibox")} == DELETE
