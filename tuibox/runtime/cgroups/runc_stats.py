"""A box's cgroup counters in the shape of runc 1.1's `events` JSON (its types/events.go).

Only `runc events` callers (engines: `docker stats` through containerd, `ctr tasks metrics`)
need this, so it is loaded by `tuibox events` alone. Each reader takes a directory and reads
the kernel's own files, v1 and v2 alike: unit tests mirror those files on tmp_path
(tests/unit/test_runc_stats.py).

runc's JSON rules are kept, since a consumer may tell "absent" from "zero": a field Go tags
`omitempty` is left out when it is zero or empty; struct fields are always there.
"""

from __future__ import annotations

import os

from tuibox.runtime.cgroups import fs, oom_kills

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.cgroups.group import BoxCgroup

# What Go's strconv gives runc for a v2 "max" (math.MaxUint64).
MAX_UINT64 = (1 << 64) - 1
# runc converts cpuacct.stat's ticks with a fixed USER_HZ, as the kernel exports it.
USER_HZ = 100
CPUSET_FLAGS = (
    "cpu_exclusive",
    "mem_hardwall",
    "mem_exclusive",
    "memory_migrate",
    "memory_spread_page",
    "memory_spread_slab",
    "memory_pressure",
    "sched_load_balance",
    "sched_relax_domain_level",
)


def _omit(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`d` without those of `keys` whose value is zero or empty (Go's omitempty)."""
    return {k: v for k, v in d.items() if k not in keys or v}


def _read(directory: str, name: str) -> str:
    return fs.try_read(os.path.join(directory, name)) or ""


def _uint(text: str) -> int:
    """A counter file; "max" is MaxUint64 (as runc's GetCgroupParamUint), missing is 0."""
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        return int(text.split()[0]) if text else 0
    except ValueError:
        return 0


def _cpu(usage: dict[str, Any], throttling: dict[str, int]) -> dict[str, Any]:
    return {
        "usage": _omit(usage, "total", "percpu", "percpu_kernel", "percpu_user"),
        "throttling": _omit(throttling, "periods", "throttledPeriods", "throttledTime"),
    }


def cpu_v1(cpuacct: str | None, cpu: str | None) -> dict[str, Any]:
    """cpuacct.usage, .usage_percpu, .usage_all (per-CPU user/system ns), .stat (ticks);
    cpu.stat's throttling (nanoseconds there already)."""
    usage: dict[str, Any] = {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": []}
    usage.update(kernel=0, user=0)
    if cpuacct is not None:
        usage["total"] = _uint(_read(cpuacct, "cpuacct.usage"))
        usage["percpu"] = [int(v) for v in _read(cpuacct, "cpuacct.usage_percpu").split()]
        # "cpu user system" then one "N USER SYSTEM" line per CPU (kernel 4.16+)
        for line in _read(cpuacct, "cpuacct.usage_all").splitlines()[1:]:
            cols = line.split()
            if len(cols) == 3 and cols[1].isdigit() and cols[2].isdigit():
                usage["percpu_user"].append(int(cols[1]))
                usage["percpu_kernel"].append(int(cols[2]))
        ticks = fs.keyed(_read(cpuacct, "cpuacct.stat"))
        usage["user"] = ticks.get("user", 0) * 1_000_000_000 // USER_HZ
        usage["kernel"] = ticks.get("system", 0) * 1_000_000_000 // USER_HZ
    stat = fs.keyed(_read(cpu, "cpu.stat")) if cpu is not None else {}
    throttling = {
        "periods": stat.get("nr_periods", 0),
        "throttledPeriods": stat.get("nr_throttled", 0),
        "throttledTime": stat.get("throttled_time", 0),
    }
    return _cpu(usage, throttling)


def cpu_v2(directory: str) -> dict[str, Any]:
    """cpu.stat in microseconds; v2 has no per-CPU counters (runc leaves percpu out)."""
    stat = fs.keyed(_read(directory, "cpu.stat"))
    usage = {
        "total": stat.get("usage_usec", 0) * 1000,
        "kernel": stat.get("system_usec", 0) * 1000,
        "user": stat.get("user_usec", 0) * 1000,
    }
    throttling = {
        "periods": stat.get("nr_periods", 0),
        "throttledPeriods": stat.get("nr_throttled", 0),
        "throttledTime": stat.get("throttled_usec", 0) * 1000,
    }
    return _cpu(usage, throttling)


def _entry(limit: int, usage: int, peak: int = 0, failcnt: int = 0) -> dict[str, int]:
    return _omit({"limit": limit, "usage": usage, "max": peak, "failcnt": failcnt}, "usage", "max")


def _memory(cache: int, entries: dict[str, dict[str, int]], raw: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"cache": cache, **entries, "raw": dict(sorted(raw.items()))}
    return _omit(out, "cache", "raw")


def memory_v1(directory: str) -> dict[str, Any]:
    """memory.{usage,limit,max_usage}_in_bytes and .failcnt, for memory itself, memsw (memory
    plus swap), kmem and kmem.tcp; memory.stat as `raw`, its `cache` as `cache`."""
    entries = {}
    for key, prefix in (
        ("usage", "memory"),
        ("swap", "memory.memsw"),
        ("kernel", "memory.kmem"),
        ("kernelTCP", "memory.kmem.tcp"),
    ):
        entries[key] = _entry(
            _uint(_read(directory, f"{prefix}.limit_in_bytes")),
            _uint(_read(directory, f"{prefix}.usage_in_bytes")),
            _uint(_read(directory, f"{prefix}.max_usage_in_bytes")),
            _uint(_read(directory, f"{prefix}.failcnt")),
        )
    raw = fs.keyed(_read(directory, "memory.stat"))
    return _memory(raw.get("cache", 0), entries, raw)


def memory_v2(directory: str) -> dict[str, Any]:
    """memory.current/.max; swap as runc 1.1 reports it for v1's sake (memory + swap, and a
    limit of both unless swap is unlimited); v2 has no kmem files. memory.stat as `raw`."""
    usage = _uint(_read(directory, "memory.current"))
    limit = _uint(_read(directory, "memory.max") or "max")
    swap_usage = usage + _uint(_read(directory, "memory.swap.current"))
    swap_limit = _uint(_read(directory, "memory.swap.max") or "0")
    if swap_limit != MAX_UINT64:
        swap_limit += limit
    if not os.path.exists(os.path.join(directory, "memory.swap.current")):
        swap_usage = swap_limit = 0  # no swap accounting: runc's zero entry
    entries = {
        "usage": _entry(limit, usage),
        "swap": _entry(swap_limit, swap_usage),
        "kernel": _entry(0, 0),
        "kernelTCP": _entry(0, 0),
    }
    raw = fs.keyed(_read(directory, "memory.stat"))
    return _memory(raw.get("file", 0), entries, raw)


def pids(directory: str) -> dict[str, int]:
    """pids.current and pids.max; "max" is reported as no limit (0, left out), as runc."""
    limit = _uint(_read(directory, "pids.max"))
    current = _uint(_read(directory, "pids.current"))
    return _omit(
        {"current": current, "limit": 0 if limit == MAX_UINT64 else limit}, "current", "limit"
    )


def _dev(entry: dict[str, Any]) -> dict[str, Any]:
    return _omit(entry, "major", "minor", "op", "value")


def blkio_v1(directory: str) -> dict[str, Any]:
    """blkio.throttle.io_service_bytes_recursive and io_serviced_recursive: "MAJ:MIN Op N"
    lines (the closing "Total N" line has no device and is skipped, as by runc)."""
    out: dict[str, Any] = {}
    for key, name in (
        ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
        ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
    ):
        rows = []
        for line in _read(directory, name).splitlines():
            cols = line.split()
            dev = cols[0].split(":") if cols else []
            if len(cols) == 3 and len(dev) == 2 and all(d.isdigit() for d in dev):
                row = {"major": int(dev[0]), "minor": int(dev[1]), "op": cols[1]}
                rows.append(_dev({**row, "value": int(cols[2])}))
        if rows:
            out[key] = rows
    return out


def blkio_v2(directory: str) -> dict[str, Any]:
    """io.stat's "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." as runc maps it."""
    table = {
        "rbytes": ("ioServiceBytesRecursive", "Read"),
        "wbytes": ("ioServiceBytesRecursive", "Write"),
        "rios": ("ioServicedRecursive", "Read"),
        "wios": ("ioServicedRecursive", "Write"),
    }
    out: dict[str, Any] = {}
    for line in _read(directory, "io.stat").splitlines():
        cols = line.split()
        dev = cols[0].split(":") if cols else []
        if len(dev) != 2 or not all(d.isdigit() for d in dev):
            continue
        for item in cols[1:]:
            name, _, value = item.partition("=")
            if name in table and value.isdigit():
                key, op = table[name]
                row = {"major": int(dev[0]), "minor": int(dev[1]), "op": op, "value": int(value)}
                out.setdefault(key, []).append(_dev(row))
    return out


def page_sizes(where: str = "/sys/kernel/mm/hugepages") -> list[str]:
    """The host's huge page sizes named as the hugetlb controller's files name them
    (hugepages-2048kB -> "2MB", hugepages-1048576kB -> "1GB")."""
    out = []
    try:
        names = os.listdir(where)
    except OSError:
        return []
    for name in names:
        kb = name.removeprefix("hugepages-").removesuffix("kB")
        if not (name.startswith("hugepages-") and name.endswith("kB") and kb.isdigit()):
            continue
        size = int(kb)
        if size >= 1 << 20:
            out.append(f"{size >> 20}GB")
        elif size >= 1 << 10:
            out.append(f"{size >> 10}MB")
        else:
            out.append(f"{size}KB")
    return out


def hugetlb(directory: str, version: int, sizes: list[str]) -> dict[str, dict[str, int]]:
    """Per page size: v1's usage_in_bytes, max_usage_in_bytes and failcnt; v2's .current and
    the `max` count of .events as failcnt (v2 keeps no peak). Keys sorted, as Go prints a map."""
    out = {}
    for size in sorted(sizes):
        if version == 1:
            usage = _uint(_read(directory, f"hugetlb.{size}.usage_in_bytes"))
            peak = _uint(_read(directory, f"hugetlb.{size}.max_usage_in_bytes"))
            failcnt = _uint(_read(directory, f"hugetlb.{size}.failcnt"))
        else:
            usage = _uint(_read(directory, f"hugetlb.{size}.current"))
            peak = 0
            failcnt = fs.keyed(_read(directory, f"hugetlb.{size}.events")).get("max", 0)
        out[size] = _omit({"usage": usage, "max": peak, "failcnt": failcnt}, "usage", "max")
    return out


def _id_list(text: str) -> list[int]:
    """A cpuset list ("0-3,8") as its numbers."""
    out: list[int] = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            out += range(int(lo), int(hi if hi.isdigit() else lo) + 1)
    return out


def cpuset(directory: str | None) -> dict[str, Any]:
    """v1's cpuset.cpus, .mems and flag files; runc 1.1 reads no cpuset stats on v2, so a box
    without a v1 cpuset gets its all-zero entry."""
    out: dict[str, Any] = dict.fromkeys(CPUSET_FLAGS, 0)
    if directory is not None:
        for flag in CPUSET_FLAGS:
            text = _read(directory, f"cpuset.{flag}").strip()
            out[flag] = int(text) if text.lstrip("-").isdigit() else 0
    cpus = _id_list(_read(directory, "cpuset.cpus")) if directory is not None else []
    mems = _id_list(_read(directory, "cpuset.mems")) if directory is not None else []
    # runc's field order: cpus, cpu_exclusive, mems, then the other flags
    ordered = {"cpus": cpus, "cpu_exclusive": out.pop("cpu_exclusive"), "mems": mems, **out}
    return _omit(ordered, "cpus", "mems")


def stats(cg: BoxCgroup) -> dict[str, Any]:
    """runc's `data` of a stats event for the box's cgroup, controller by controller from
    whichever hierarchy serves it (a hybrid host mixes them)."""
    v1, u = cg.v1, cg.unified
    on_v2 = cg.v2_controllers if u is not None else frozenset()
    data: dict[str, Any] = {}
    if "cpuacct" in v1 or "cpu" in v1 or u is None:
        data["cpu"] = cpu_v1(v1.get("cpuacct"), v1.get("cpu"))
    else:  # cpu.stat's usage is there without the cpu controller (the kernel's own)
        data["cpu"] = cpu_v2(u)
    data["cpuset"] = cpuset(v1.get("cpuset"))
    if "memory" in v1:
        data["memory"] = memory_v1(v1["memory"])
    elif u is not None and "memory" in on_v2:
        data["memory"] = memory_v2(u)
    else:
        zero = _entry(0, 0)
        data["memory"] = _memory(
            0, dict.fromkeys(("usage", "swap", "kernel", "kernelTCP"), zero), {}
        )
    if "pids" in v1:
        data["pids"] = pids(v1["pids"])
    elif u is not None and "pids" in on_v2:
        data["pids"] = pids(u)
    else:
        data["pids"] = _omit({"current": len(cg.procs())}, "current")
    if "blkio" in v1:
        data["blkio"] = blkio_v1(v1["blkio"])
    elif u is not None and "io" in on_v2:
        data["blkio"] = blkio_v2(u)
    else:
        data["blkio"] = {}
    if "hugetlb" in v1:
        data["hugetlb"] = hugetlb(v1["hugetlb"], 1, page_sizes())
    else:  # tuibox does not enable hugetlb on v2; a parent that delegates it does
        sizes = [] if u is None else page_sizes()
        sizes = [z for z in sizes if os.path.exists(os.path.join(u or "", f"hugetlb.{z}.current"))]
        data["hugetlb"] = hugetlb(u, 2, sizes) if u is not None and sizes else {}
    data.update(intel_rdt={}, network_interfaces=None)
    return data


def oom_count(cg: BoxCgroup) -> int | None:
    """The memory cgroup's OOM-kill count (v1 memory.oom_control, v2 memory.events); None
    when no memory controller serves the box. runc's `events` prints an "oom" event each
    time it grows."""
    if "memory" in cg.v1:
        return oom_kills(_read(cg.v1["memory"], "memory.oom_control"))
    if cg.unified is not None and "memory" in cg.v2_controllers:
        return oom_kills(_read(cg.unified, "memory.events"))
    return None


IN_MODIFY = 0x2


class OomWatch:
    """Wakes `events` when the box's memory cgroup meets an OOM, as runc's NotifyOOM: v1
    through an eventfd registered in cgroup.event_control for memory.oom_control (one "oom"
    event per wake-up), v2 through inotify on memory.events (an event when its `oom_kill`
    count grew). `fd` is -1 when no memory controller serves the box."""

    def __init__(self, cg: BoxCgroup) -> None:
        self.cg = cg
        self.fd = -1
        self._held: list[int] = []
        self._count = oom_count(cg) or 0
        self._dir = cg.v1.get("memory") or (
            cg.unified if cg.unified is not None and "memory" in cg.v2_controllers else None
        )
        if self._dir is None:
            return
        try:
            if "memory" in cg.v1:
                self.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                self._held.append(self.fd)
                control = os.open(os.path.join(self._dir, "memory.oom_control"), os.O_RDONLY)
                self._held.append(control)
                fs.write(os.path.join(self._dir, "cgroup.event_control"), f"{self.fd} {control}")
            else:
                self.fd = _inotify(os.path.join(self._dir, "memory.events"))
                self._held.append(self.fd)
        except BaseException:
            self.close()
            raise

    def take(self) -> int:
        """After `fd` turned readable: how many "oom" events to print (0 for a wake-up that
        was no OOM, such as v1's notice that the cgroup went away)."""
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return 0
        if self._dir is None or not os.path.isdir(self._dir):
            return 0
        if "memory" in self.cg.v1:
            return 1 if int.from_bytes(data[:8], "little") else 0
        now = oom_count(self.cg) or 0
        grew, self._count = now > self._count, now
        return int(grew)

    def close(self) -> None:
        for fd in self._held:
            os.close(fd)
        self._held = []
        self.fd = -1


def _inotify(path: str) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    if libc.inotify_add_watch(fd, path.encode(), IN_MODIFY) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"inotify_add_watch {path}")
    return fd
