"""`BoxCgroup`: the one interface to a box's cgroup, whatever versions serve its controllers.

It is made once, at create, from the detected hierarchies; the resulting directories are kept
in the box's record (`extra["cgroup_dirs"]`), so every later verb (stats every second for 50
boxes, ps, pause) goes straight to its files without parsing mountinfo again.

On a hybrid host the box also gets a directory in the cgroup2 hierarchy, as runc does: its
processes are then grouped there too, and it is removed with the rest.
"""

from __future__ import annotations

import _signal
import os
import time

from tuibox.runtime.cgroups import fs, v1, v2
from tuibox.runtime.cgroups.hierarchy import V2_WANTED, Hierarchies, join
from tuibox.runtime.cgroups.resources import (
    DeviceRule,
    Resources,
    plan_v1,
    plan_v2,
)
from tuibox.runtime.errors import CgroupError, CgroupUnsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CgroupStats:
    __slots__ = ("block_read", "block_write", "cpu_ns", "memory_limit", "memory_usage", "pids")

    def __init__(self) -> None:
        self.cpu_ns = 0
        self.memory_usage = 0
        self.memory_limit: int | None = None
        self.pids = 0
        self.block_read = 0
        self.block_write = 0


class BoxCgroup:
    def __init__(
        self,
        path: str,
        v1_dirs: dict[str, str],
        unified: str | None,
        v2_controllers: frozenset[str] = frozenset(),
        made: list[str] | None = None,
    ) -> None:
        self.path = path  # '/tuibox/name', the same below every hierarchy
        self.v1 = v1_dirs  # controller -> directory
        self.unified = unified  # the box's directory in the cgroup2 hierarchy, if any
        self.v2_controllers = v2_controllers  # controllers enabled for it there
        self.made = made if made is not None else []  # directories we created (to remove)

    # ---- making and finding -------------------------------------------------------------

    @classmethod
    def plan(cls, h: Hierarchies, path: str) -> BoxCgroup:
        """Where the box's directories go; nothing is touched."""
        v1_dirs = {c: join(mount, path) for c, mount in sorted(h.v1.items())}
        unified = join(h.unified, path) if h.unified is not None else None
        wanted = frozenset(c for c in V2_WANTED if h.version(c) == 2)
        return cls(path, v1_dirs, unified, wanted)

    @classmethod
    def create(cls, h: Hierarchies, path: str) -> BoxCgroup:
        cg = cls.plan(h, path)
        try:
            cg._make(h)
        except BaseException:
            cg.destroy(timeout=1.0)
            raise
        return cg

    def _make(self, h: Hierarchies) -> None:
        for d in self.dirs():
            if os.path.isdir(d):
                # As runc: a cgroup holding processes is refused. Unlike runc, which reuses an
                # empty one and rewrites only the limits the new spec sets, a left-over is
                # removed and made afresh: limits a crashed box left must not survive.
                if fs.procs(d):
                    raise CgroupError(f"cgroup {d} already exists and holds processes")
                if not fs.rmdir(d):
                    raise CgroupError(
                        f"cgroup {d} was left by an earlier box and cannot be removed "
                        "(it has sub-cgroups); remove it or run `tuibox gc --yes`"
                    )
            before = len(self.made)
            try:
                if d == self.unified and h.unified is not None:
                    v2.make(h.unified, self.path, sorted(self.v2_controllers), self.made)
                else:
                    fs.makedirs(d, self.made)
            except OSError as e:
                why = (e.strerror or str(e)).lower()
                raise CgroupError(f"cannot create cgroup {d}: {why}") from None
            if len(self.made) == before:
                self.made.append(d)  # made by a racing box's makedirs: ours all the same
            if d == self.v1.get("cpuset"):
                v1.init_cpuset(self.made[before:])

    @classmethod
    def from_record(cls, extra: dict[str, Any]) -> BoxCgroup | None:
        data = extra.get("cgroup_dirs")
        if not isinstance(data, dict):
            return None
        return cls(
            str(extra.get("cgroup") or ""),
            dict(data.get("v1") or {}),
            data.get("unified"),
            frozenset(data.get("v2_controllers") or ()),
            list(data.get("made") or []),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "v1": self.v1,
            "unified": self.unified,
            "v2_controllers": sorted(self.v2_controllers),
            "made": self.made,
        }

    def dirs(self) -> list[str]:
        """Every directory of the box once (co-mounted v1 controllers share one)."""
        seen: list[str] = []
        for d in self.v1.values():
            if d not in seen:
                seen.append(d)
        if self.unified is not None:
            seen.append(self.unified)
        return seen

    # ---- membership -----------------------------------------------------------------------

    def add(self, pid: int) -> None:
        for d in self.dirs():
            fs.write(os.path.join(d, "cgroup.procs"), str(pid))

    def procs(self) -> list[int]:
        """Host pids of every process in the box's cgroup."""
        for key in ("pids", "freezer", "memory"):
            if key in self.v1:
                return fs.procs(self.v1[key])
        if self.unified is not None:
            return fs.procs(self.unified)
        return fs.procs(next(iter(self.v1.values()))) if self.v1 else []

    # ---- limits ---------------------------------------------------------------------------

    def apply(self, res: Resources, devices: list[DeviceRule] | None = None) -> list[str]:
        """Write the limits; returns warnings about what could not be enforced."""
        warnings: list[str] = []
        on_v1 = [w for w in plan_v1(res) if w[0] in self.v1]
        v2_plan, v2_warnings = plan_v2(res)
        on_v2 = [w for w in v2_plan if _v1_name(w[0]) not in self.v1]
        missing = sorted(
            {w[0] for w in on_v2 if self.unified is None or w[0] not in self.v2_controllers}
        )
        if missing:
            raise CgroupError(
                f"limits for {', '.join(missing)} asked for, but this host has no such "
                "cgroup controller"
            )
        if "memory" not in self.v1:
            warnings.extend(v2_warnings)
        on_v2 += self._unified_writes(res)
        v1.apply(self.v1, on_v1)
        if on_v2 and self.unified is not None:
            v2.apply(self.unified, on_v2, self.v2_controllers | {"cgroup"})
        if devices is not None:
            if "devices" in self.v1:
                v1.apply_devices(self.v1["devices"], devices)
            elif self.unified is not None:
                # v2 has no devices files: a BPF program on the cgroup is the allowlist
                from tuibox.runtime.cgroups import devices_bpf

                devices_bpf.attach(self.unified, devices)
            else:
                raise CgroupError(
                    "no devices cgroup (neither v1 nor cgroup v2) to enforce the device allowlist"
                )
        return warnings

    def _unified_writes(self, res: Resources) -> list[tuple[str, str, str]]:
        """linux.resources.unified as writes to the box's v2 cgroup. A key whose controller
        this host serves on v1 (a hybrid host's memory, cpu...) is refused: the v2 file does
        not exist there and the v1 one means something else (runc refuses unified on v1)."""
        out = []
        for key, value in res.unified:
            controller = key.partition(".")[0]
            field = f"linux.resources.unified.{key}"
            if _v1_name(controller) in self.v1:
                raise CgroupError(
                    f"{field}: the {controller} controller is on cgroup v1 on this host; "
                    "unified keys are cgroup v2 files"
                )
            if self.unified is None:
                raise CgroupError(f"{field}: this host has no cgroup v2")
            if controller != "cgroup" and controller not in self.v2_controllers:
                raise CgroupError(f"{field}: no {controller} controller in this host's cgroup v2")
            out.append((controller, key, value))
        return out

    # ---- freezer --------------------------------------------------------------------------

    def frozen(self) -> bool:
        if "freezer" in self.v1:
            return v1.freezer_state(self.v1["freezer"]) == "FROZEN"
        return self.unified is not None and v2.is_frozen(self.unified)

    def freeze(self, timeout: float = 5.0) -> None:
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        if "freezer" in self.v1:
            d = self.v1["freezer"]
            v1.freeze(d, frozen)

            def done() -> bool:
                state = v1.freezer_state(d)
                if frozen and state == "FREEZING":
                    v1.freeze(d, True)  # v1 needs a nudge when a task was mid-fork
                return state == ("FROZEN" if frozen else "THAWED")
        elif self.unified is not None:
            u = self.unified
            v2.freeze(u, frozen)

            def done() -> bool:
                return v2.is_frozen(u) == frozen
        else:
            raise CgroupUnsupported("no freezer on this host (neither a v1 freezer nor cgroup v2)")
        if not _poll(done, timeout):
            if frozen:
                self._set_frozen(False, 1.0)
            raise CgroupError(
                f"cgroup {self.path}: did not {'freeze' if frozen else 'thaw'} in time"
            )

    # ---- signals and removal ----------------------------------------------------------------

    def signal_all(self, sig: int) -> list[int]:
        """Signal every process once; frozen meanwhile so a fork loop cannot outrun us."""
        was_frozen = self.frozen()
        can_freeze = "freezer" in self.v1 or self.unified is not None
        if can_freeze and not was_frozen:
            try:
                self.freeze(2.0)
            except CgroupError:
                pass  # signal them anyway; a fork racing us is caught by the caller's loop
        pids = self.procs()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if can_freeze and (not was_frozen or sig == _signal.SIGKILL):
            # A killed frozen task only dies once thawed.
            try:
                self.thaw(2.0)
            except CgroupError:
                pass
        return pids

    def kill_all(self, timeout: float = 5.0) -> bool:
        """SIGKILL until the cgroup is empty; False if something survived `timeout`."""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.procs():
            pure_v2 = self.unified is not None and not self.v1
            if not (pure_v2 and self.unified is not None and v2.kill(self.unified)):
                self.signal_all(_signal.SIGKILL)
            if time.monotonic() > deadline:
                return not self.procs()
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill what is left, remove every directory we made (innermost first)."""
        leaves = self.dirs()
        # Only a cgroup we made is ours to empty (create fails on one holding others' tasks).
        if any(d in self.made and os.path.isdir(d) for d in leaves):
            self.kill_all(timeout)
        deadline = time.monotonic() + timeout
        # Zombies not yet reaped keep a cgroup busy for a moment after cgroup.procs is empty.
        pending = [d for d in leaves if d in self.made]
        while pending:
            pending = [d for d in pending if not fs.rmdir(d)]
            if pending and time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {pending[0]}: still in use")
            if pending:
                time.sleep(0.005)
        for d in reversed(self.made):
            if d not in leaves:
                fs.rmdir(d)  # a parent still holding other boxes stays, and that is fine
        # The shared `tuibox` parent is ours whoever made it: the last box out removes it.
        # Busy in one hierarchy means another box lives there, and so in every one (each box
        # has a dir in each): no rmdir that can only fail in the others (~0.5 ms a destroy).
        for leaf in leaves:
            parent = os.path.dirname(leaf)
            if os.path.basename(parent) == "tuibox" and not fs.rmdir(parent):
                break

    # ---- stats ----------------------------------------------------------------------------

    def stats(self) -> CgroupStats:
        """Counters of the box; a file that vanished (box exiting) leaves its field at 0."""
        s = CgroupStats()
        u = self.unified
        try:
            if "cpuacct" in self.v1:
                s.cpu_ns = v1.cpu_usage_ns(self.v1["cpuacct"])
            elif u is not None:
                s.cpu_ns = v2.cpu_usage_ns(u)
            if "memory" in self.v1:
                s.memory_usage, s.memory_limit = v1.memory_stats(self.v1["memory"])
            elif u is not None and "memory" in self.v2_controllers:
                s.memory_usage, s.memory_limit = v2.memory_stats(u)
            if "pids" in self.v1:
                s.pids = fs.read_int(os.path.join(self.v1["pids"], "pids.current"))
            elif u is not None and "pids" in self.v2_controllers:
                s.pids = fs.read_int(os.path.join(u, "pids.current"))
            else:
                s.pids = len(self.procs())
            if "blkio" in self.v1:
                s.block_read, s.block_write = v1.blkio_stats(self.v1["blkio"])
            elif u is not None and "io" in self.v2_controllers:
                s.block_read, s.block_write = v2.io_stats(u)
        except (OSError, ValueError):
            pass
        return s


def _v1_name(v2_controller: str) -> str:
    return "blkio" if v2_controller == "io" else v2_controller


def _poll(done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True
