"""A `mounts[]` entry of type `cgroup`: the box's own view of the cgroup filesystem.

A fresh cgroup mount of a v1 hierarchy that the host already mounts fails with EBUSY, and a
bind of the whole hierarchy would show the box every other cgroup. So, as runc does:

- v1 (and hybrid): a tmpfs at the destination holding, for each v1 hierarchy, a directory
  named as the host's mount point (`cpu,cpuacct`, `memory`, `systemd`) onto which the box's
  own cgroup in that hierarchy is bound, with the entry's flags (`ro`, `nosuid`...); plus a
  symlink per co-mounted controller (`cpu -> cpu,cpuacct`). A hybrid host's cgroup2 mount
  (/sys/fs/cgroup/unified) is not shown, as runc 1.1 does not show it.
- v2 only: with a cgroup namespace of the box's own, a new cgroup2 mount (its root is the
  namespace's root, the box's cgroup); without one, the box's own cgroup directory bound in.
  runc mounts the whole cgroup2 tree there; the bind shows less.

The paths come from the init's /proc/self/mountinfo and /proc/self/cgroup, read after the
parent put it in its cgroups and before it unshares a cgroup namespace (which rewrites both).
"""

from __future__ import annotations

import os

from tuibox.runtime.cgroups.hierarchy import V1_CONTROLLERS, unescape_mountinfo


def _own_paths(cgroup_text: str) -> dict[frozenset[str], str]:
    """/proc/self/cgroup: {controllers of a hierarchy: our path}; v2 under frozenset()."""
    out: dict[frozenset[str], str] = {}
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        out[frozenset(c for c in parts[1].split(",") if c)] = parts[2]
    return out


def _below(path: str, mount_root: str) -> str | None:
    # Our cgroup as a path under a mount whose root is `mount_root` (a host mounts "/").
    root = mount_root.rstrip("/")
    if path == root or not root:
        return path.lstrip("/")
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None  # our cgroup is not visible through this mount


class CgroupView:
    """What to build: v1 `binds` (name in the tmpfs, host directory, symlinks), or v2."""

    __slots__ = ("binds", "v2_dir", "v2_mount")

    def __init__(self) -> None:
        self.binds: list[tuple[str, str, list[str]]] = []
        self.v2_mount: str | None = None  # the host's cgroup2 mount point (pure v2)
        self.v2_dir: str | None = None  # our cgroup directory under it


def plan_view(mountinfo_text: str, cgroup_text: str) -> CgroupView:
    """The view for this host, from the init's mountinfo and its /proc/self/cgroup."""
    own = _own_paths(cgroup_text)
    view = CgroupView()
    seen: set[frozenset[str]] = set()
    unified: tuple[str, str] | None = None
    for line in mountinfo_text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        mount_root, point = unescape_mountinfo(fields[3]), unescape_mountinfo(fields[4])
        if fstype == "cgroup2":
            if unified is None:
                unified = (mount_root, point)
            continue
        if fstype != "cgroup":
            continue
        opts = [
            o for o in fields[sep + 3].split(",") if o in V1_CONTROLLERS or o.startswith("name=")
        ]
        key = frozenset(opts)
        # The first mount of a hierarchy is the host's; later ones are binds (containers).
        if not key or key in seen or key not in own:
            continue
        seen.add(key)
        rel = _below(own[key], mount_root)
        if rel is None:
            continue
        name = os.path.basename(point.rstrip("/"))
        controllers = [o for o in opts if not o.startswith("name=")]
        links = [c for c in controllers if c != name] if len(controllers) > 1 else []
        view.binds.append((name, os.path.join(point, rel) if rel else point, links))
    if not view.binds and unified is not None and frozenset() in own:
        rel = _below(own[frozenset()], unified[0])
        view.v2_mount = unified[1]
        view.v2_dir = unified[1] if not rel else os.path.join(unified[1], rel)
    return view
