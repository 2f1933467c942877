"""Where the cgroup hierarchies are, which version serves each controller, where a box goes.

Detected per controller at run time from /proc/self/mountinfo: a controller mounted as a v1
hierarchy is used there; otherwise it is used on the cgroup2 mount if that mount lists it in
cgroup.controllers. That covers pure v1, pure v2 and hybrid hosts (this one: every controller
on v1, a cgroup2 mount at /sys/fs/cgroup/unified holding only hugetlb).

A box's cgroup path is `linux.cgroupsPath` or `tuibox/<name>`. Relative and absolute paths
are both taken from the root of each hierarchy, not from the caller's own cgroup as runc does
for relative ones: the CLI may run inside a terminal's or a CI job's cgroup, and a box must
land in the same place whoever starts it (and not inside a cgroup someone else owns).
"""

from __future__ import annotations

import os

from tuibox.runtime.errors import SpecError
from tuibox.runtime.plain import Plain

# Real v1 controllers (named hierarchies such as name=systemd hold no controller: skipped).
V1_CONTROLLERS = frozenset(
    {
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    }
)
# What a box's limits and stats use, in v2 names (v2 folds cpuacct into cpu and blkio is io).
V2_WANTED = ("cpu", "cpuset", "io", "memory", "pids")


class Hierarchies(Plain):
    __slots__ = ("unified", "v1", "v2_controllers")

    def __init__(
        self,
        v1: dict[str, str],
        unified: str | None,
        v2_controllers: frozenset[str] = frozenset(),
    ) -> None:
        self.v1 = v1  # controller -> mount point (co-mounted controllers share one)
        self.unified = unified  # the cgroup2 mount point, if any
        self.v2_controllers = v2_controllers  # what the cgroup2 root offers

    def version(self, controller: str) -> int | None:
        if controller in self.v1:
            return 1
        if self.unified is not None and controller in self.v2_controllers:
            return 2
        return None


def unescape_mountinfo(field: str) -> str:
    """A mountinfo field as the path it names."""
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> tuple[dict[str, str], str | None]:
    """(v1 controller -> mount point, cgroup2 mount point) from /proc/self/mountinfo."""
    v1: dict[str, str] = {}
    unified: str | None = None
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        point = unescape_mountinfo(fields[4])
        if fstype == "cgroup2":
            # The first one wins: later ones are usually bind mounts into containers.
            if unified is None:
                unified = point
        elif fstype == "cgroup":
            for opt in fields[sep + 3].split(","):
                if opt in V1_CONTROLLERS:
                    v1.setdefault(opt, point)
    return v1, unified


_DETECTED: dict[str, Hierarchies] = {}


def detect(mountinfo: str = "/proc/self/mountinfo") -> Hierarchies:
    """The hierarchies as this process sees them (remembered: mounts do not move under us)."""
    known = _DETECTED.get(mountinfo)
    if known is not None:
        return known
    _DETECTED[mountinfo] = found = _detect(mountinfo)
    return found


def _detect(mountinfo: str) -> Hierarchies:
    with open(mountinfo) as f:
        v1, unified = parse_mountinfo(f.read())
    controllers: frozenset[str] = frozenset()
    if unified is not None:
        try:
            with open(os.path.join(unified, "cgroup.controllers")) as f:
                controllers = frozenset(f.read().split())
        except OSError:
            controllers = frozenset()
    return Hierarchies(v1, unified, controllers)


def default_leaf(name: str, state_root: str | None) -> str:
    """`tuibox/NAME` for the default state root; other roots get a tag of their own, so
    boxes of one name in two state roots (tests, several users) never share a cgroup."""
    from tuibox.runtime.state import DEFAULT_ROOT

    if state_root is None or state_root.rstrip("/") == DEFAULT_ROOT:
        return f"tuibox/{name}"
    h = 0xCBF29CE484222325  # FNV-1a: stable across runs, unlike hash(), and needs no hashlib
    for byte in state_root.rstrip("/").encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"tuibox/{h & 0xFFFFFFFF:08x}-{name}"


def box_path(cgroups_path: str | None, name: str, state_root: str | None = None) -> str:
    """The box's cgroup path below each hierarchy's root, as '/a/b'."""
    raw = cgroups_path if cgroups_path else default_leaf(name, state_root)
    where = "config.json: linux.cgroupsPath"
    if not raw.startswith("/") and raw.count(":") == 2:
        raise SpecError(
            f"{where}: {raw!r} is a systemd slice path; tuibox drives cgroupfs directly, "
            "give a path such as /machine/box1"
        )
    parts = [p for p in raw.split("/") if p and p != "."]
    if ".." in parts:
        raise SpecError(f"{where}: {raw!r} must not contain '..'")
    if not parts:
        raise SpecError(f"{where}: {raw!r} is the root cgroup; a box needs a cgroup of its own")
    for p in parts:
        if p.startswith("cgroup.") or "\0" in p:
            raise SpecError(f"{where}: {raw!r}: {p!r} is not a valid cgroup name")
    return "/" + "/".join(parts)


def join(mount: str, path: str) -> str:
    return mount.rstrip("/") + path
