"""cgroup v1: one directory per controller hierarchy.

Quirks handled here: a new cpuset cgroup starts with empty cpus/mems (no task may join until
they are copied from the parent); memory.limit_in_bytes may not exceed memory.memsw.limit_in_bytes
(so the order of the two writes depends on the direction of the change); the freezer goes
through FREEZING before FROZEN.
"""

from __future__ import annotations

import os

from tuibox.runtime.cgroups import fs
from tuibox.runtime.cgroups.resources import UNLIMITED, DeviceRule, Write
from tuibox.runtime.errors import CgroupError, CgroupUnsupported


def init_cpuset(made: list[str]) -> None:
    """Give every cpuset directory we created its parent's cpus and mems, outermost first."""
    for d in made:
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            mine = os.path.join(d, name)
            if not (fs.try_read(mine) or "").strip():
                fs.write(mine, (fs.try_read(os.path.join(parent, name)) or "").strip() or "\n")


def apply(dirs: dict[str, str], writes: list[Write]) -> None:
    memory = [w for w in writes if w[0] == "memory"]
    limit = next((w for w in memory if w[1] == "memory.limit_in_bytes"), None)
    swap = next((w for w in memory if w[1] == "memory.memsw.limit_in_bytes"), None)
    ordered = list(writes)
    if limit is not None and swap is None and "memory" in dirs:
        current = fs.try_read(os.path.join(dirs["memory"], "memory.memsw.limit_in_bytes"))
        if current is not None and int(current) < _as_int(limit[2]):
            raise CgroupError(
                f"memory limit {limit[2]} is above the box's memory+swap limit {int(current)}: "
                "change --memory-swap with it"
            )
    if limit is not None and swap is not None:
        # Raising both: memsw first (limit <= memsw must hold after each write); lowering: limit.
        current = fs.try_read(os.path.join(dirs["memory"], swap[1]))
        if current is not None and _as_int(limit[2]) > int(current):
            ordered.remove(swap)
            ordered.insert(ordered.index(limit), swap)
    for controller, name, value in ordered:
        d = dirs.get(controller)
        if d is None:
            raise CgroupUnsupported(
                f"{name}: the {controller} cgroup controller is not mounted on this host"
            )
        path = os.path.join(d, name)
        if name == "blkio.weight" and not os.path.exists(path):
            # Kernels with BFQ but without CFQ only have the bfq file.
            path = os.path.join(d, "blkio.bfq.weight")
        fs.write(path, value)


def _as_int(value: str) -> int:
    return UNLIMITED if value == "-1" else int(value)


def apply_devices(directory: str, rules: list[DeviceRule]) -> None:
    for rule in rules:
        name = "devices.allow" if rule.allow else "devices.deny"
        fs.write(os.path.join(directory, name), rule.v1())


def freeze(directory: str, frozen: bool) -> None:
    fs.write(os.path.join(directory, "freezer.state"), "FROZEN" if frozen else "THAWED")


def freezer_state(directory: str) -> str:
    """THAWED, FREEZING or FROZEN."""
    return (fs.try_read(os.path.join(directory, "freezer.state")) or "THAWED").strip()


def parse_blkio(text: str) -> tuple[int, int]:
    """(bytes read, bytes written) from blkio.throttle.io_service_bytes[_recursive]."""
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return read, write


def memory_stats(directory: str) -> tuple[int, int | None]:
    """(usage without inactive page cache, as docker shows it; limit or None)."""
    usage = fs.read_int(os.path.join(directory, "memory.usage_in_bytes"))
    stat = fs.try_read(os.path.join(directory, "memory.stat")) or ""
    usage -= min(usage, fs.key(stat, "total_inactive_file"))
    limit = fs.read_int(os.path.join(directory, "memory.limit_in_bytes"))
    return usage, None if limit >= UNLIMITED else limit


def cpu_usage_ns(directory: str) -> int:
    return fs.read_int(os.path.join(directory, "cpuacct.usage"))


def blkio_stats(directory: str) -> tuple[int, int]:
    for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
        text = fs.try_read(os.path.join(directory, name))
        if text is not None:
            return parse_blkio(text)
    return 0, 0
