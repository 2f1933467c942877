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

    from tuibox.runtime.cgroups.group import BoxCgroup
    from tuibox.runtime.state import BoxRecord

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
    """runc's {"type": "stats", "id", "data": {cpu, cpuset, memory, pids, blkio, ...}} of one
    box, from its cgroup's own files (runtime/cgroups/runc_stats.py)."""
    from tuibox.runtime.cgroups.runc_stats import stats

    return {"type": "stats", "id": record.id, "data": stats(_cgroup(record))}


def _cgroup(record: BoxRecord) -> BoxCgroup:
    from tuibox.runtime.cgroups.group import BoxCgroup

    # a box without a cgroup of its own (none recorded) reads as all zeros
    return BoxCgroup.from_record(record.extra) or BoxCgroup("", {}, None)


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
    import select

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.cgroups.runc_stats import OomWatch
    from tuibox.runtime.guards import check

    interval = parse_duration(opts.interval)
    rt = Runtime(g.root)
    record = rt.get(opts.name)
    check("ps", opts.name, record.status)  # a live box, as ps

    def emit(event: dict[str, Any]) -> None:
        sys.stdout.write(fastjson.dumps(event) + "\n")
        sys.stdout.flush()

    emit(stats_event(record))
    if opts.stats:
        return 0
    try:
        watch: OomWatch | None = OomWatch(_cgroup(record))
    except OSError:
        watch = None  # the box's cgroup went away meanwhile: the status check below says so
    try:
        due = time.monotonic() + interval
        while True:
            wait = max(due - time.monotonic(), 0.0)
            if watch is not None and watch.fd >= 0:
                ready, _, _ = select.select([watch.fd], [], [], wait)
                for _ in range(watch.take() if ready else 0):
                    emit({"type": "oom", "id": record.id})
            else:
                time.sleep(wait)
            if time.monotonic() < due:
                continue
            due += interval
            record = rt.get(opts.name)
            if record.status == "stopped":
                return 0
            emit(stats_event(record))
    finally:
        if watch is not None:
            watch.close()


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "features": entry(FeaturesOptions, do_features),
    "events": entry(EventsOptions, do_events),
}
