"""Tearing boxes down from kernel facts, and finding debris (`destroy --force`, `tuibox gc`).

A record may be unreadable, or a crash may have happened before a resource reached it, so
nothing here trusts the record alone: a box's cgroup path, its userns lease, its network
leases and its host veths are all derivable from its name and the state root, and its
processes come from its cgroup. Everything is scoped to one state root: cgroups of another
root carry another hash in their name (`cgroups.hierarchy.default_leaf`).

Loaded only by destroy --force, a failed teardown and gc; never on the `run` path.
"""

from __future__ import annotations

import _signal
import os

from tuibox.runtime.cgroups.group import BoxCgroup
from tuibox.runtime.cgroups.hierarchy import box_path, default_leaf, detect
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.linux import proc
from tuibox.runtime.state import BoxRecord, remove_tree

# `delete --force` is how every engine removes a container: no typing (re, enum) at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.box import Runtime


def cgroup_paths(root: str, name: str, record: BoxRecord | None) -> list[str]:
    """Every cgroup path the box may have: the record's, its intent's, the derived default."""
    paths = []
    if record is not None:
        for value in (record.extra.get("cgroup"), _intent(record).get("cgroup")):
            if isinstance(value, str) and value:
                paths.append(value)
    paths.append(box_path(None, name, root))
    return list(dict.fromkeys(paths))


def _intent(record: BoxRecord) -> dict[str, Any]:
    intent = record.extra.get("intent")
    return intent if isinstance(intent, dict) else {}


def existing_cgroup(path: str) -> BoxCgroup | None:
    """The box's cgroup at `path`, limited to the directories that exist (all ours to remove)."""
    cg = BoxCgroup.plan(detect(), path)
    cg.made = [d for d in cg.dirs() if os.path.isdir(d)]
    return cg if cg.made else None


def force_teardown(rt: Runtime, name: str, record: BoxRecord | None) -> list[str]:
    """Kill and release everything of box `name` that can be found; returns failures (one
    line per resource). The state dir itself is left to the caller."""
    from tuibox.runtime.process.monitor import monitors_of

    failures: list[str] = []
    root = rt.root.path
    monitors = [] if record is None else monitors_of([record.pid], record.extra.get("monitor"))
    if record is not None and record.pid and proc.is_alive(record.pid, record.starttime):
        try:
            os.kill(record.pid, _signal.SIGKILL)
        except OSError:
            pass
    for path in cgroup_paths(root, name, record):
        cg = existing_cgroup(path)
        if cg is None:
            continue
        try:
            monitors += monitors_of(cg.procs())
            if not cg.kill_all(5.0):
                failures.append(f"cgroup {path}: processes survived SIGKILL")
            cg.destroy(5.0)
        except (TuiboxError, OSError) as e:
            failures.append(f"cgroup {path}: {e}")
    for pid, started in monitors:  # each records its box's exit and leaves
        proc.wait_gone(pid, started, 5.0)
    if _userns_used(root):
        from tuibox.runtime import userns

        try:
            userns.release(root, name)
        except OSError as e:
            failures.append(f"userns lease: {e.strerror or e}")
    if _network_used(root):
        try:
            from tuibox.runtime.network import debris

            debris.release_box(root, name)
        except Exception as e:  # netlink, nft: each is one line, the rest goes on
            failures.append(f"network: {e}")
    for layer in _layers(rt, name, record):
        try:
            remove_tree(layer)
        except OSError as e:
            failures.append(f"layer {layer}: {e.strerror or e}")
    return failures


def _layers(rt: Runtime, name: str, record: BoxRecord | None) -> list[str]:
    """Where the box's writable layer may be: the record's, its intent's (a create killed
    before its record named the layer), and the one derived from this runtime's data root."""
    from tuibox.runtime.box import layer_path
    from tuibox.runtime.images.store import default_data_root

    paths = []
    if record is not None:
        for value in (
            record.extra.get("layer"),
            record.extra.get("disk"),
            _intent(record).get("layer"),
        ):
            if isinstance(value, str) and value:
                paths.append(value)
    paths.append(layer_path(rt.data_root or default_data_root(), rt.root.path, name))
    return [p for p in dict.fromkeys(paths) if os.path.lexists(p)]


def _userns_used(root: str) -> bool:
    # userns.py (ctypes, the spec model) is loaded only when this root ever leased ids
    return os.path.isdir(os.path.join(root, ".userns"))


def _network_used(root: str) -> bool:
    # pyroute2 and nft are loaded only when this root ever had a network
    return os.path.isdir(os.path.join(root, ".network"))


# ---- gc -------------------------------------------------------------------------------------


class Debris:
    __slots__ = ("action", "kind", "name", "path")

    def __init__(self, kind: str, name: str, path: str, action: str) -> None:
        self.kind = kind  # box, cgroup, userns-lease, network-lease, veth, seccomp-cache, socket
        self.name = name  # the box it belonged to
        self.path = path
        self.action = action  # what gc --yes does

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "box": self.name, "path": self.path, "action": self.action}


def find_debris(rt: Runtime, data_root: str | None = None) -> list[Debris]:
    """What is left of boxes that no longer exist in this state root; touches nothing.

    Cgroups and leases are listed before the box dirs: a create makes its dir (and intent)
    before any of them, so one seen here without a dir listed afterwards is never a create
    under way."""
    from tuibox.runtime.errors import CorruptRecord

    root = rt.root.path
    orphans = _cgroup_candidates(root) + _lease_candidates(root) + _layer_candidates(rt, data_root)
    out: list[Debris] = []
    names = rt.root.names()
    dirs = set(names)
    for name in names:
        d = os.path.join(root, name)
        try:
            r = rt.get(name)
        except CorruptRecord as e:
            if not _creator_alive(d):
                out.append(Debris("box", name, d, f"tear down ({e.reason})"))
            continue
        except TuiboxError:
            continue
        if r.status == "debris":
            out.append(Debris("box", name, d, "tear down (its create or destroy was killed)"))
            continue
        if r.status == "stopped" and r.extra.get("remove") is True:
            out.append(Debris("box", name, d, "remove (its foreground run was killed)"))
            continue
        sock = os.path.join(d, "console.sock")
        if os.path.lexists(sock) and not _listening(sock):
            out.append(Debris("socket", name, sock, "remove (no keeper)"))
    out += [item for item in orphans if item.name not in dirs]
    cache = os.path.join(root, ".seccomp")
    for entry in _entries(cache):
        full = os.path.join(cache, entry)
        if (entry.endswith(".tmp") and not _writer_alive(entry)) or _bad_program(full):
            out.append(Debris("seccomp-cache", "", full, "remove"))
    return out


def _cgroup_candidates(root: str) -> list[Debris]:
    """This root's box cgroups, one item per box name (whatever the hierarchies)."""
    prefix = default_leaf("", root).rpartition("/")[2]
    h = detect()
    out: dict[str, Debris] = {}
    for mount in dict.fromkeys([*h.v1.values(), *([h.unified] if h.unified else [])]):
        parent = os.path.join(mount, "tuibox")
        try:
            entries = sorted(os.listdir(parent))
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(prefix) or not os.path.isdir(os.path.join(parent, entry)):
                continue
            if not prefix and _tagged(entry):
                continue  # another state root's box (the default root's names carry no tag)
            box = entry[len(prefix) :]
            if box and box not in out:
                out[box] = Debris("cgroup", box, "/tuibox/" + entry, "kill, remove")
    return list(out.values())


def _layer_candidates(rt: Runtime, data_root: str | None) -> list[Debris]:
    """Image boxes' writable layers (`<data>/boxes/<tag>-NAME`) of this state root."""
    from tuibox.runtime.images.store import default_data_root

    boxes = os.path.join(data_root or rt.data_root or default_data_root(), "boxes")
    prefix = default_leaf("", rt.root.path).rpartition("/")[2]
    try:
        entries = sorted(os.listdir(boxes))
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.startswith(prefix) or (not prefix and _tagged(entry)):
            continue
        if entry[len(prefix) :]:
            out.append(Debris("layer", entry[len(prefix) :], os.path.join(boxes, entry), "remove"))
    return out


def _entries(path: str) -> list[str]:
    """A directory's names, sorted; none when it is missing or unreadable."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _lease_candidates(root: str) -> list[Debris]:
    out = []
    leases = os.path.join(root, ".userns")
    for entry in _entries(leases):
        if entry.endswith(".lease"):
            box = entry[: -len(".lease")]
            out.append(Debris("userns-lease", box, os.path.join(leases, entry), "remove"))
    if _network_used(root):
        from tuibox.runtime.network import debris as netdebris

        for bridge, address, box in netdebris.held_leases(root):
            out.append(Debris("network-lease", box, f"{bridge}/{address}", "release"))
    return out


def _writer_alive(entry: str) -> bool:
    """`state.atomic_write` names its temp file `<file>.<pid>.tmp`."""
    pid = entry[: -len(".tmp")].rpartition(".")[2]
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def _listening(path: str) -> bool:
    """Whether a keeper still accepts on `path` (a refused connect: nobody listens)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except ConnectionRefusedError:
            return False
        except OSError:
            return True  # busy or unreachable: not ours to judge, leave it
    return True


def _tagged(entry: str) -> bool:
    tag, dash, _ = entry.partition("-")
    return bool(dash) and len(tag) == 8 and all(c in "0123456789abcdef" for c in tag)


def _creator_alive(box_dir: str) -> bool:
    """A dir without a readable record may be a create before its first record: it holds
    the box's lock until then, so a locked dir is left alone."""
    import fcntl
    import time

    try:
        fd = os.open(os.path.join(box_dir, "lock"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        # Between the mkdir and the lock (microseconds): only an old dir is debris.
        try:
            return time.time() - os.stat(box_dir).st_mtime < 2.0
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _bad_program(path: str) -> bool:
    try:
        size = os.stat(path).st_size
    except OSError:
        return False
    return size == 0 or size % 8 != 0


_BY_NAME = frozenset({"cgroup", "userns-lease", "network-lease", "layer"})


def collect(rt: Runtime, items: list[Debris]) -> list[str]:
    """Remove each item; returns failures, one line each."""
    failures: list[str] = []
    root = rt.root.path
    for item in items:
        if item.kind in _BY_NAME and os.path.isdir(os.path.join(root, item.name)):
            continue  # a box of that name was made since: it is not debris any more
        try:
            if item.kind == "box":
                rt.destroy(item.name, force=True)
            elif item.kind == "cgroup":
                # everything else derivable from the name goes too (leases, veths)
                failures += [f"box {item.name!r}: {f}" for f in force_teardown(rt, item.name, None)]
            elif item.kind == "userns-lease":
                os.unlink(item.path)
            elif item.kind == "network-lease":
                from tuibox.runtime.network import debris as netdebris

                netdebris.release_box(root, item.name)
            elif item.kind == "layer":
                from tuibox.runtime.state import remove_tree

                remove_tree(item.path)
            elif item.kind in ("socket", "seccomp-cache"):
                os.unlink(item.path)
        except FileNotFoundError:
            pass
        except (TuiboxError, OSError) as e:
            failures.append(f"{item.kind} {item.path}: {e}")
    return failures


__all__ = ["Debris", "collect", "find_debris", "force_teardown"]
