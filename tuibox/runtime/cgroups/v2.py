"""cgroup v2: one directory in the unified hierarchy.

A controller works in a v2 cgroup only when every ancestor enables it in
cgroup.subtree_control, so creating a box's cgroup may enable controllers on the way down
(never in a cgroup that holds processes: v2 forbids that, and it is someone else's then).
Freezing (cgroup.freeze) and, from 5.14, cgroup.kill are core files present in every cgroup.
"""

from __future__ import annotations

import os

from tuibox.runtime.cgroups import fs
from tuibox.runtime.cgroups.resources import Write
from tuibox.runtime.errors import CgroupError, CgroupUnsupported


def _enable(directory: str, controllers: list[str]) -> None:
    control = os.path.join(directory, "cgroup.subtree_control")
    enabled = set((fs.try_read(control) or "").split())
    missing = [f"+{c}" for c in controllers if c not in enabled]
    if missing:
        fs.write(control, " ".join(missing))


def make(unified: str, path: str, controllers: list[str], made: list[str]) -> None:
    """mkdir -p of a v2 cgroup, enabling `controllers` in each ancestor before its child
    exists (the kernel offers a child only what its parent's subtree_control enables)."""
    for _attempt in range(3):
        d = unified.rstrip("/") or "/"
        try:
            for part in [p for p in path.split("/") if p]:
                if controllers:
                    _enable(d, controllers)
                d = os.path.join(d, part)
                try:
                    fs.mkdir(d)
                except FileExistsError:
                    continue
                made.append(d)
            return
        except FileNotFoundError:
            continue  # another box's destroy removed a shared empty parent: walk again
    raise CgroupError(f"cannot create cgroup {unified}{path}: its parents keep disappearing")


def apply(directory: str, writes: list[Write], enabled: frozenset[str]) -> None:
    for controller, name, value in writes:
        if controller not in enabled:
            raise CgroupUnsupported(
                f"{name}: the {controller} controller is not available in this host's cgroup v2"
            )
        fs.write(os.path.join(directory, name), value)


def freeze(directory: str, frozen: bool) -> None:
    fs.write(os.path.join(directory, "cgroup.freeze"), "1" if frozen else "0")


def is_frozen(directory: str) -> bool:
    events = fs.keyed(fs.try_read(os.path.join(directory, "cgroup.events")) or "")
    return events.get("frozen") == 1


def kill(directory: str) -> bool:
    """SIGKILL everything at once through cgroup.kill; False where the kernel lacks it."""
    path = os.path.join(directory, "cgroup.kill")
    if not os.path.exists(path):
        return False
    fs.write(path, "1")
    return True


def parse_io_stat(text: str) -> tuple[int, int]:
    """(bytes read, bytes written) from io.stat lines '8:0 rbytes=1 wbytes=2 rios=...'."""
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def memory_stats(directory: str) -> tuple[int, int | None]:
    usage = fs.read_int(os.path.join(directory, "memory.current"))
    stat = fs.try_read(os.path.join(directory, "memory.stat")) or ""
    usage -= min(usage, fs.key(stat, "inactive_file"))
    raw = (fs.try_read(os.path.join(directory, "memory.max")) or "max").strip()
    return usage, None if raw == "max" else int(raw)


def cpu_usage_ns(directory: str) -> int:
    return fs.key(fs.try_read(os.path.join(directory, "cpu.stat")) or "", "usage_usec") * 1000


def io_stats(directory: str) -> tuple[int, int]:
    text = fs.try_read(os.path.join(directory, "io.stat"))
    return parse_io_stat(text) if text else (0, 0)
