"""runc's `events` JSON from a box's cgroup files (runtime/cgroups/runc_stats.py).

The files are written as a 6.x kernel prints them (kernel/cgroup/cpuacct.c, mm/memcontrol.c,
block/blk-cgroup.c, kernel/sched/core.c). The expected JSON is runc 1.1's for the same files
(types/events.go, libcontainer/cgroups/fs and fs2): Go's omitempty fields left out when zero.
v1 is checked on this machine's kernel too (tests/integration/test_runc_events.py); the v2
files are mirrored here only: no pure-v2 host ran them.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

from tuibox.runtime.cgroups.group import BoxCgroup
from tuibox.runtime.cgroups.runc_stats import MAX_UINT64, OomWatch, hugetlb, page_sizes, stats


def write(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


V1_UNLIMITED = "9223372036854771712\n"
V1_CPUACCT = {
    "cpuacct.usage": "26792678\n",
    "cpuacct.usage_percpu": "24399857 2392821 \n",  # the kernel's trailing space
    "cpuacct.usage_all": "cpu user system\n0 8000000 12000000\n1 0 2392821\n",
    "cpuacct.stat": "user 2\nsystem 1\n",  # USER_HZ ticks
}
V1_CPU = {"cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\n"}
V1_MEMORY = {
    "memory.usage_in_bytes": "663552\n",
    "memory.limit_in_bytes": "16777216\n",
    "memory.max_usage_in_bytes": "16777216\n",
    "memory.failcnt": "31\n",
    "memory.memsw.usage_in_bytes": "663552\n",
    "memory.memsw.limit_in_bytes": "16777216\n",
    "memory.memsw.max_usage_in_bytes": "16777216\n",
    "memory.memsw.failcnt": "4\n",
    "memory.kmem.usage_in_bytes": "139264\n",
    "memory.kmem.limit_in_bytes": V1_UNLIMITED,
    "memory.kmem.max_usage_in_bytes": "192512\n",
    "memory.kmem.failcnt": "0\n",
    "memory.kmem.tcp.usage_in_bytes": "0\n",
    "memory.kmem.tcp.limit_in_bytes": V1_UNLIMITED,
    "memory.kmem.tcp.max_usage_in_bytes": "0\n",
    "memory.kmem.tcp.failcnt": "0\n",
    "memory.stat": "cache 4096\nrss 110592\ntotal_cache 4096\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
}
V1_BLKIO = {
    "blkio.throttle.io_service_bytes_recursive": (
        "8:0 Read 4096\n8:0 Write 0\n8:0 Sync 0\n8:0 Async 4096\n8:0 Discard 0\n"
        "8:0 Total 4096\nTotal 4096\n"
    ),
    "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Total 1\nTotal 1\n",
}
V1_CPUSET = {
    "cpuset.cpus": "0-1\n",
    "cpuset.mems": "0\n",
    "cpuset.cpu_exclusive": "0\n",
    "cpuset.mem_hardwall": "0\n",
    "cpuset.mem_exclusive": "0\n",
    "cpuset.memory_migrate": "0\n",
    "cpuset.memory_spread_page": "0\n",
    "cpuset.memory_spread_slab": "0\n",
    "cpuset.memory_pressure": "0\n",
    "cpuset.sched_load_balance": "1\n",
    "cpuset.sched_relax_domain_level": "-1\n",
}


def test_v1_files_give_runcs_json(tmp_path: Path) -> None:
    dirs = {}
    for ctl, files in (
        ("cpuacct", V1_CPUACCT),
        ("cpu", V1_CPU),
        ("memory", V1_MEMORY),
        ("blkio", V1_BLKIO),
        ("cpuset", V1_CPUSET),
        ("pids", {"pids.current": "3\n", "pids.max": "max\n"}),
    ):
        write(tmp_path / ctl / "box", files)
        dirs[ctl] = str(tmp_path / ctl / "box")
    data = stats(BoxCgroup("/box", dirs, None))
    assert data["cpu"] == {
        "usage": {
            "total": 26792678,
            "percpu": [24399857, 2392821],
            "percpu_kernel": [12000000, 2392821],
            "percpu_user": [8000000, 0],
            "kernel": 10_000_000,
            "user": 20_000_000,
        },
        "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 5000},
    }
    order = "cpus cpu_exclusive mems mem_hardwall mem_exclusive memory_migrate"
    order += " memory_spread_page memory_spread_slab memory_pressure sched_load_balance"
    assert list(data["cpuset"]) == [*order.split(), "sched_relax_domain_level"]
    assert data["cpuset"]["cpus"] == [0, 1] and data["cpuset"]["sched_relax_domain_level"] == -1
    memory = data["memory"]
    assert memory["cache"] == 4096
    assert memory["usage"] == {"limit": 16777216, "usage": 663552, "max": 16777216, "failcnt": 31}
    assert memory["swap"]["failcnt"] == 4
    assert memory["kernel"] == {
        "limit": 9223372036854771712,
        "usage": 139264,
        "max": 192512,
        "failcnt": 0,
    }
    assert memory["kernelTCP"] == {"limit": 9223372036854771712, "failcnt": 0}  # omitempty
    assert memory["raw"] == {"cache": 4096, "rss": 110592, "total_cache": 4096}
    assert data["pids"] == {"current": 3}  # "max" is no limit: 0, left out
    assert data["blkio"] == {
        "ioServiceBytesRecursive": [
            {"major": 8, "op": "Read", "value": 4096},
            {"major": 8, "op": "Write"},
            {"major": 8, "op": "Sync"},
            {"major": 8, "op": "Async", "value": 4096},
            {"major": 8, "op": "Discard"},
            {"major": 8, "op": "Total", "value": 4096},
        ],
        "ioServicedRecursive": [
            {"major": 8, "op": "Read", "value": 1},
            {"major": 8, "op": "Total", "value": 1},
        ],
    }
    assert list(data) == [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ]


V2_FILES = {
    "cpu.stat": (
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\ncore_sched.force_idle_usec 0\n"
        "nr_periods 5\nnr_throttled 1\nthrottled_usec 20\nnr_bursts 0\nburst_usec 0\n"
    ),
    "memory.current": "663552\n",
    "memory.max": "16777216\n",
    "memory.swap.current": "4096\n",
    "memory.swap.max": "max\n",
    "memory.stat": "anon 110592\nfile 8192\nkernel 139264\n",
    "memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n",
    "pids.current": "2\n",
    "pids.max": "100\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    "cpuset.cpus.effective": "0-1\n",
}


def test_v2_files_give_runcs_json(tmp_path: Path) -> None:
    write(tmp_path, V2_FILES)
    controllers = frozenset({"cpu", "memory", "pids", "io", "cpuset"})
    data = stats(BoxCgroup("/box", {}, str(tmp_path), controllers))
    assert data["cpu"] == {
        # v2 has no per-CPU counters: runc leaves percpu out
        "usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
        "throttling": {"periods": 5, "throttledPeriods": 1, "throttledTime": 20_000},
    }
    assert data["cpuset"]["cpu_exclusive"] == 0 and "cpus" not in data["cpuset"]  # v1 only
    memory = data["memory"]
    assert memory["cache"] == 8192  # memory.stat's `file`
    assert memory["usage"] == {"limit": 16777216, "usage": 663552, "failcnt": 0}
    # memory + swap, as runc 1.1 reports it for v1's sake; an unlimited swap stays MaxUint64
    assert memory["swap"] == {"limit": MAX_UINT64, "usage": 667648, "failcnt": 0}
    assert memory["kernel"] == memory["kernelTCP"] == {"limit": 0, "failcnt": 0}
    assert memory["raw"] == {"anon": 110592, "file": 8192, "kernel": 139264}
    assert data["pids"] == {"current": 2, "limit": 100}
    assert data["blkio"] == {
        "ioServiceBytesRecursive": [
            {"major": 8, "op": "Read", "value": 4096},
            {"major": 8, "op": "Write", "value": 8192},
        ],
        "ioServicedRecursive": [
            {"major": 8, "op": "Read", "value": 1},
            {"major": 8, "op": "Write", "value": 2},
        ],
    }


def test_v2_without_memory_limit_or_swap_accounting(tmp_path: Path) -> None:
    files = dict(V2_FILES, **{"memory.max": "max\n"})
    del files["memory.swap.current"], files["memory.swap.max"]
    write(tmp_path, files)
    data = stats(BoxCgroup("/box", {}, str(tmp_path), frozenset({"memory"})))
    assert data["memory"]["usage"]["limit"] == MAX_UINT64
    assert data["memory"]["swap"] == {"limit": 0, "failcnt": 0}
    # pids not delegated: its count is the cgroup's processes
    (tmp_path / "cgroup.procs").write_text("7\n9\n")
    assert stats(BoxCgroup("/box", {}, str(tmp_path), frozenset()))["pids"] == {"current": 2}


def test_no_cgroup_is_all_zeros() -> None:
    data = stats(BoxCgroup("", {}, None))
    assert data["cpu"] == {"usage": {"kernel": 0, "user": 0}, "throttling": {}}
    assert data["memory"]["usage"] == {"limit": 0, "failcnt": 0}
    assert data["pids"] == {} and data["blkio"] == {}


def test_v2_oom_watch_wakes_on_a_growing_oom_kill(tmp_path: Path) -> None:
    """inotify on memory.events, as runc: here on a regular file (cgroupfs raises the same
    IN_MODIFY when the kernel updates it)."""
    write(tmp_path, {"memory.events": V2_FILES["memory.events"]})
    watch = OomWatch(BoxCgroup("/box", {}, str(tmp_path), frozenset({"memory"})))
    try:
        assert watch.fd >= 0
        assert select.select([watch.fd], [], [], 0)[0] == []
        (tmp_path / "memory.events").write_text(
            V2_FILES["memory.events"].replace("max 12", "max 13")
        )
        assert select.select([watch.fd], [], [], 1)[0] == [watch.fd]
        assert watch.take() == 0  # memory.events changed, but no new OOM kill
        (tmp_path / "memory.events").write_text(
            V2_FILES["memory.events"].replace("oom_kill 2", "oom_kill 3")
        )
        assert select.select([watch.fd], [], [], 1)[0] == [watch.fd]
        assert watch.take() == 1
    finally:
        watch.close()
    assert watch.fd == -1


def test_no_memory_controller_no_watch(tmp_path: Path) -> None:
    watch = OomWatch(BoxCgroup("/box", {}, str(tmp_path), frozenset({"pids"})))
    assert watch.fd == -1
    watch.close()
    assert not os.listdir(tmp_path)


def test_huge_page_sizes_named_as_the_controller_names_them(tmp_path: Path) -> None:
    for name in ("hugepages-2048kB", "hugepages-1048576kB", "hugepages-64kB", "other"):
        (tmp_path / name).mkdir()
    assert sorted(page_sizes(str(tmp_path))) == ["1GB", "2MB", "64KB"]
    assert page_sizes(str(tmp_path / "absent")) == []


def test_hugetlb_v1_and_v2(tmp_path: Path) -> None:
    write(
        tmp_path / "v1",
        {
            "hugetlb.2MB.usage_in_bytes": "2097152\n",
            "hugetlb.2MB.max_usage_in_bytes": "4194304\n",
            "hugetlb.2MB.failcnt": "1\n",
            "hugetlb.1GB.usage_in_bytes": "0\n",
            "hugetlb.1GB.max_usage_in_bytes": "0\n",
            "hugetlb.1GB.failcnt": "0\n",
        },
    )
    got = hugetlb(str(tmp_path / "v1"), 1, ["2MB", "1GB"])
    assert list(got) == ["1GB", "2MB"]  # Go prints a map's keys sorted
    assert got == {"1GB": {"failcnt": 0}, "2MB": {"usage": 2097152, "max": 4194304, "failcnt": 1}}
    # v2: hugetlb.<size>.current and the `max` line of hugetlb.<size>.events
    write(tmp_path / "v2", {"hugetlb.2MB.current": "2097152\n", "hugetlb.2MB.events": "max 3\n"})
    assert hugetlb(str(tmp_path / "v2"), 2, ["2MB"]) == {"2MB": {"usage": 2097152, "failcnt": 3}}
