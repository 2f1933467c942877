"""`events` as runc prints it (docs/OCI_CLI.md): the stats JSON's shape against runc's own on
the same bundle, and an "oom" event when the kernel's OOM killer hits the box (v1 here:
cgroup.event_control with an eventfd; the v2 inotify path is unit-tested only)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique
from tests.integration.test_oci_contract import runc_spec_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def shape(data: dict[str, Any]) -> dict[str, list[str]]:
    """The keys runc prints whatever the values (cpu usage: percpu on v1 is never empty)."""
    return {
        "data": list(data),
        "cpu.usage": list(data["cpu"]["usage"]),
        "cpuset": list(data["cpuset"]),
        "memory": [k for k in data["memory"] if k != "cache"],  # omitted when 0
        "memory.usage": [k for k in data["memory"]["usage"] if k in ("limit", "failcnt")],
    }


def test_stats_has_runcs_shape(tb: TB, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = runc_spec_bundle(tmp_path / "b", busybox_rootfs, ["sleep", "30"])
    runc_root, name = tmp_path / "runc-root", unique("ev")
    got: dict[str, dict[str, Any]] = {}
    for kind, base in (("runc", ["runc", "--root", str(runc_root)]), ("tuibox", tb.argv())):
        log = ["--log", str(tmp_path / f"{kind}.log")]
        subprocess.run(
            [*base, *log, "run", "-d", "--bundle", str(bundle), name],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            out = subprocess.run(
                [*base, "events", "--stats", name], capture_output=True, text=True, check=True
            )
        finally:
            subprocess.run([*base, "delete", "--force", name], check=False)
        event = json.loads(out.stdout)
        assert (event["type"], event["id"]) == ("stats", name)
        got[kind] = event["data"]
    assert shape(got["tuibox"]) == shape(got["runc"])
    cpu = got["tuibox"]["cpu"]["usage"]
    assert len(cpu["percpu"]) == os.cpu_count() == len(cpu["percpu_user"])
    assert sum(cpu["percpu"]) <= cpu["total"] + len(cpu["percpu"])
    assert got["tuibox"]["pids"] == {"current": 1}


def test_oom_kill_is_an_event(tb: TB) -> None:
    name = unique("oom")
    # `tail` of /dev/zero keeps one ever-growing line: it outgrows 16 MiB and is OOM-killed
    tb("run", "-d", "-m", "16m", "--memory-swap", "16m", "--image", "busybox", name,
       "sh", "-c", "sleep 1; tail /dev/zero; sleep 3")  # fmt: skip
    out = tb("events", "--interval", "1s", name, timeout=30).stdout
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("oom") >= 1 and kinds[0] == "stats", kinds
    assert {"type": "oom", "id": name} in events
    after = events[kinds.index("oom") + 1 :]
    # the peak (memory.max_usage_in_bytes) reached the limit before the kill
    peaks = [e["data"]["memory"]["usage"] for e in after]
    assert any(p.get("max") == p["limit"] == 16 << 20 for p in peaks), out[-2000:]
    tb("destroy", "--force", name)
