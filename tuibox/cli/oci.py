"""runc's verbs that only engines call: `features` and `events` (docs/OCI_CLI.md).

Both print runc's JSON shapes, built from what tuibox really does: `features` from the tables
the runtime itself uses (mount options, namespaces, capabilities, seccomp), so it cannot
claim more than the loader accepts; `events --stats` from the same cgroup sample as `stats`.
"""

from __future__ import annotations

import os
import sys
import time

from tuibox.cli import Globals
from tuibox.cli.args import Arg, Command, Opt, Options, entry
from tuibox.runtime import fastjson
from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tuibox.runtime.state import BoxRecord

# runc reports a v1 memory cgroup without a limit as this (the page-rounded max int64).
NO_LIMIT = 9223372036854771712
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class FeaturesOptions(Options):
    COMMAND = Command("features", "Print what this runtime supports (OCI runtime-spec 1.1).")
    __slots__ = ()


class EventsOptions(Options):
    COMMAND = Command(
        "events",
        "Print a box's resource usage as runc's events JSON: once with --stats, else every\n"
        "interval until the box stops.",
        (
            Opt(("--stats",), "stats", help="print one stats event and exit"),
            Opt(("--interval",), "interval", "DURATION", default="5s", help="e.g. 5s, 500ms"),
        ),
        (Arg("name", "the box's name"),),
    )
    __slots__ = ("interval", "name", "stats")
    stats: bool
    interval: str
    name: str


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


# ---- features ----------------------------------------------------------------------------------


def features() -> dict[str, Any]:
    """runtime-spec 1.1's features document for this host and this tuibox."""
    from tuibox.runtime import spec as spec_mod
    from tuibox.runtime.cgroups.hierarchy import detect
    from tuibox.runtime.defaults import CAPABILITY_NAMES
    from tuibox.runtime.linux import mounts
    from tuibox.runtime.linux import syscalls as sc
    from tuibox.runtime.seccomp.profile import ACTIONS, ARCHES, OPS

    options = sorted({*mounts._FLAGS, *mounts.PROPAGATION, "defaults"})
    hier = detect()
    # Hooks are listed only once the loader takes them (today it refuses them: spec.py).
    hooks = [] if "hooks" in spec_mod.REFUSED_FIELDS else list(HOOKS)
    enabled = {"enabled": True}
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": f"1.{spec_mod.KNOWN_MINOR}.0",
        "hooks": hooks,
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(sc.NAMESPACE_FLAGS),
            "capabilities": [n for n in CAPABILITY_NAMES if n],
            "cgroup": {
                "v1": bool(hier.v1),
                "v2": hier.unified is not None,
                # Paths in systemd's form are mapped to cgroupfs (--systemd-cgroup); no D-Bus.
                "systemd": False,
                "systemdUser": False,
            },
            "seccomp": {
                "enabled": True,
                "actions": sorted(ACTIONS),
                "operators": sorted(OPS),
                "archs": sorted(ARCHES),
            },
            "apparmor": enabled if os.path.isdir("/sys/kernel/security/apparmor") else {},
            "selinux": enabled if os.path.isdir("/sys/fs/selinux") else {},
        },
        "annotations": {"org.tuibox.version": _version()},
    }


def _version() -> str:
    from tuibox import __version__

    return __version__


def do_features(opts: FeaturesOptions, g: Globals) -> int:
    sys.stdout.write(fastjson.dumps(features(), indent=4) + "\n")
    return 0


# ---- events ------------------------------------------------------------------------------------


def stats_event(record: BoxRecord) -> dict[str, Any]:
    """runc's {"type": "stats", "id", "data": {cpu, memory, pids, blkio, ...}} of one box."""
    from tuibox.runtime.stats import sample

    now = sample(record)
    cpu = mem = pids = read = write = 0
    limit = NO_LIMIT
    if now is not None:
        cg = now.cg
        cpu, mem, pids = cg.cpu_ns, cg.memory_usage, cg.pids
        read, write = cg.block_read, cg.block_write
        limit = cg.memory_limit if cg.memory_limit is not None else NO_LIMIT
    usage = {"limit": limit, "usage": mem, "max": 0, "failcnt": 0}
    io = [
        {"major": 0, "minor": 0, "op": "Read", "value": read},
        {"major": 0, "minor": 0, "op": "Write", "value": write},
        {"major": 0, "minor": 0, "op": "Total", "value": read + write},
    ]
    return {
        "type": "stats",
        "id": record.id,
        "data": {
            "cpu": {
                "usage": {"total": cpu, "percpu": [], "kernel": 0, "user": 0},
                "throttling": {},
            },
            "memory": {"usage": usage, "swap": {}, "kernel": {}, "raw": {}},
            "pids": {"current": pids},
            "blkio": {"ioServiceBytesRecursive": io},
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": None,
        },
    }


def parse_duration(text: str) -> float:
    """Go's durations as runc takes them: 5s, 500ms, 1m, 1.5s."""
    bad = SpecError(f"--interval {text!r}: must be a duration like 5s or 500ms")
    suffix = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), None)
    if suffix is None:
        raise bad
    try:
        value = (
            float(text[: -len(suffix)]) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[suffix]
        )
    except ValueError:
        raise bad from None
    if value <= 0:
        raise SpecError(f"--interval {text!r}: must be positive")
    return value


def do_events(opts: EventsOptions, g: Globals) -> int:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.guards import check

    interval = parse_duration(opts.interval)
    rt = Runtime(g.root)
    record = rt.get(opts.name)
    check("ps", opts.name, record.status)  # a live box, as ps
    while True:
        sys.stdout.write(fastjson.dumps(stats_event(record)) + "\n")
        sys.stdout.flush()
        if opts.stats:
            return 0
        time.sleep(interval)
        record = rt.get(opts.name)
        if record.status == "stopped":
            return 0


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "features": entry(FeaturesOptions, do_features),
    "events": entry(EventsOptions, do_events),
}
