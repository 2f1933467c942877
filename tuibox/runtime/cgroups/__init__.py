"""A box's cgroups: one interface (`group.BoxCgroup`), v1 and v2 behind it, per controller.

    hierarchy.py   which hierarchy serves each controller; the box's cgroup path
    resources.py   linux.resources and the limit flags -> validated Resources -> file writes
    v1.py, v2.py   the version-specific files and quirks
    group.py       BoxCgroup: create, add pid, apply limits, freeze/thaw, stats, procs,
                   signal/kill all, destroy
    stage.py       the create/destroy Stage that box.py loads

This package's __init__ stays tiny: `state.live_status` calls `is_frozen` for every live box
in `list`, so it reads one file from the paths kept in the record and imports nothing else.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.cgroups.group import BoxCgroup
    from tuibox.runtime.state import BoxRecord


def is_frozen(record: BoxRecord) -> bool:
    """True when the box's freezer says FROZEN (v1) or `frozen 1` (v2)."""
    dirs = record.extra.get("cgroup_dirs")
    if not isinstance(dirs, dict):
        return False
    freezer = (dirs.get("v1") or {}).get("freezer")
    unified = dirs.get("unified")
    try:
        if freezer:
            return _read(os.path.join(freezer, "freezer.state")).strip() == b"FROZEN"
        if unified:
            return b"frozen 1" in _read(os.path.join(unified, "cgroup.events"))
    except OSError:
        return False
    return False


def oom_kills(text: str) -> int:
    """The `oom_kill` count of v2 `memory.events` or v1 `memory.oom_control`: one exact key
    among its neighbours (`oom`, `oom_group_kill`, `oom_kill_disable`); 0 when absent."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def oom_killed(record: BoxRecord) -> bool:
    """True when the kernel's OOM killer killed a process of the box (docker's OOMKilled:
    any process of the box, as the memory cgroup counts them). False once the cgroup is gone."""
    dirs = record.extra.get("cgroup_dirs")
    if not isinstance(dirs, dict):
        return False
    memory = (dirs.get("v1") or {}).get("memory")
    unified = dirs.get("unified")
    if memory:
        path = os.path.join(memory, "memory.oom_control")
    elif unified and "memory" in (dirs.get("v2_controllers") or ()):
        path = os.path.join(unified, "memory.events")
    else:
        return False
    try:
        return oom_kills(_read(path).decode()) > 0
    except (OSError, UnicodeDecodeError):
        return False


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def for_record(record: BoxRecord) -> BoxCgroup | None:
    """The box's cgroup as its record remembers it (None for a box made without one)."""
    from tuibox.runtime.cgroups.group import BoxCgroup

    return BoxCgroup.from_record(record.extra)
