"""What engine mode spares each container (docs/OCI_CLI.md, "Engine mode"): no fsync of its
record or pid file, and a `delete --force` of a finished create that trusts its record (no
/proc scan for monitors, no recovery sweep). An engine pays create, start and delete for
every container it runs: `podman run --rm` is three runtime calls.

A driver process plays conmon (a subreaper that reaps the init); each tuibox call runs
through a shim that counts the fsyncs tuibox makes and names what the verb looked at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# tuibox's CLI with os.fsync counted and the force-only paths of a destroy noted, each call
# appending one JSON line to the report file given first.
SHIM = """
import json, os, sys
report = sys.argv.pop(1)
seen = {"fsync": 0, "monitors_in": 0}
real_fsync = os.fsync
def fsync(fd):
    seen["fsync"] += 1
    real_fsync(fd)
os.fsync = fsync
import tuibox.runtime.process.monitor as monitor  # destroy imports the scan from there
real_scan = monitor.monitors_in
def monitors_in(d):
    seen["monitors_in"] += 1
    return real_scan(d)
monitor.monitors_in = monitors_in
from tuibox.cli import main
code = main()
seen["verb"] = next(a for a in sys.argv[1:] if a in ("create", "start", "delete"))
seen["recovery"] = "tuibox.runtime.recovery" in sys.modules
with open(report, "a") as f:
    f.write(json.dumps(seen) + "\\n")
sys.stdout.flush()
os._exit(code)
"""

DRIVER = """
import ctypes, json, os, subprocess, sys
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER, as conmon
rt, bundle, name, extra = json.loads(sys.argv[1])
null = os.open("/dev/null", os.O_RDWR)
def call(*args):
    return subprocess.run([*rt, *args], stdin=null, stdout=null, stderr=null).returncode
rcs = [call("create", "--bundle", bundle, *extra, name)]
rcs.append(call("start", name))
os.waitpid(-1, 0)
rcs.append(call("delete", "--force", name))
print(json.dumps(rcs))
"""


def lifecycle(tb: TB, tmp_path: Path, rootfs: Path, engine: bool) -> list[dict[str, Any]]:
    """create, start, reap, delete --force of `true`; one report per tuibox call."""
    bundle = tmp_path / unique("b")
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps(
            {
                "ociVersion": "1.0.2",
                "root": {"path": str(rootfs)},
                "process": {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"]},
                "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts")]},
            }
        )
    )
    report = tmp_path / unique("report")
    rt = [sys.executable, "-c", SHIM, str(report), "--root", str(tb.root)]
    rt += ["--data-root", str(tb.data_root)]
    # runc's flags (what every engine passes) are what puts create in engine mode
    extra = ["--pid-file", str(tmp_path / unique("pid"))] if engine else []
    if engine:
        rt += ["--log", str(tmp_path / "runtime.log"), "--log-format", "json"]
    name = unique("cost")
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([rt, str(bundle), name, extra])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [0, 0, 0]
    assert not (tb.root / name).exists()
    return [json.loads(line) for line in report.read_text().splitlines()]


def test_engine_mode_spares_fsyncs_and_the_force_sweep(
    tb: TB, tmp_path: Path, busybox_rootfs: Path
) -> None:
    calls = {c["verb"]: c for c in lifecycle(tb, tmp_path, busybox_rootfs, engine=True)}
    assert [calls[v]["fsync"] for v in ("create", "start", "delete")] == [0, 0, 0]
    assert calls["delete"]["monitors_in"] == 0 and not calls["delete"]["recovery"]


def test_own_boxes_keep_durable_records_and_the_force_sweep(
    tb: TB, tmp_path: Path, busybox_rootfs: Path
) -> None:
    calls = {c["verb"]: c for c in lifecycle(tb, tmp_path, busybox_rootfs, engine=False)}
    assert calls["create"]["fsync"] >= 2 and calls["start"]["fsync"] >= 1
    assert calls["delete"]["monitors_in"] == 1 and calls["delete"]["recovery"]
