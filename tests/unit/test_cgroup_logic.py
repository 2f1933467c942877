"""cgroup path, format and version logic without root: mountinfo parsing, linux.resources
validation, the v1 and v2 file plans, and BoxCgroup on fake hierarchies under tmp_path (the
only way v2 is exercised on this v1 machine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuibox.runtime.cgroups import fs, is_frozen
from tuibox.runtime.cgroups.group import BoxCgroup
from tuibox.runtime.cgroups.hierarchy import Hierarchies, box_path, parse_mountinfo
from tuibox.runtime.cgroups.resources import (
    DEFAULT_DEVICE_RULES,
    DeviceRule,
    Resources,
    blkio_weight_to_io,
    device_rules,
    flags_to_raw,
    limits,
    merge_raw,
    parse_cpus,
    parse_resources,
    parse_size,
    plan_v1,
    plan_v2,
    shares_to_weight,
    swap_v2,
)
from tuibox.runtime.cgroups.v1 import parse_blkio
from tuibox.runtime.cgroups.v2 import parse_io_stat
from tuibox.runtime.errors import CgroupError, SpecError
from tuibox.runtime.spec_model import Device
from tuibox.runtime.state import BoxRecord
from tuibox.runtime.stats import parse_net_dev

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PURE_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
COMOUNTED = (
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "33 31 0:30 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids\n"
)


# ---- where -----------------------------------------------------------------------------------


def test_mountinfo_hybrid_skips_named_hierarchies() -> None:
    v1, unified = parse_mountinfo(HYBRID)
    assert v1 == {
        "cpu": "/sys/fs/cgroup/cpu",
        "cpuacct": "/sys/fs/cgroup/cpuacct",
        "memory": "/sys/fs/cgroup/memory",
        "freezer": "/sys/fs/cgroup/freezer",
    }
    assert unified == "/sys/fs/cgroup/unified"


def test_mountinfo_pure_v2_and_comounted_v1_with_escapes() -> None:
    assert parse_mountinfo(PURE_V2) == ({}, "/sys/fs/cgroup")
    v1, unified = parse_mountinfo(COMOUNTED)
    assert v1["cpu"] == v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert v1["pids"] == "/sys/fs/cgroup/with space"
    assert unified is None


def test_version_per_controller() -> None:
    h = Hierarchies({"memory": "/m"}, "/u", frozenset({"hugetlb", "pids"}))
    assert h.version("memory") == 1
    assert h.version("pids") == 2
    assert h.version("io") is None
    assert Hierarchies({}, None).version("pids") is None


def test_box_path_default_relative_absolute() -> None:
    assert box_path(None, "web") == "/tuibox/web"
    assert box_path("", "web") == "/tuibox/web"
    assert box_path("machine/web", "x") == "/machine/web"
    assert box_path("/libpod_parent/libpod-abc/", "x") == "/libpod_parent/libpod-abc"
    assert box_path("/a/./b//c", "x") == "/a/b/c"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("../escape", "must not contain '..'"),
        ("/", "root cgroup"),
        ("system.slice:tuibox:web", "systemd slice"),
        ("/a/cgroup.procs", "not a valid cgroup name"),
    ],
)
def test_box_path_rejects(raw: str, words: str) -> None:
    with pytest.raises(SpecError, match=r"linux\.cgroupsPath") as e:
        box_path(raw, "x")
    assert words in str(e.value)


# ---- resources -------------------------------------------------------------------------------

PODMAN = {
    "devices": [{"allow": False, "access": "rwm"}],
    "memory": {"limit": 67108864, "swap": 134217728},
    "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 100},
    "blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
    },
}


def test_plan_v1_formats_and_order() -> None:
    res = parse_resources(PODMAN)
    assert plan_v1(res) == [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.memsw.limit_in_bytes", "134217728"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "100"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
    ]


def test_plan_v2_converts_units() -> None:
    writes, warnings = plan_v2(parse_resources(PODMAN))
    assert writes == [
        ("memory", "memory.max", "67108864"),
        ("memory", "memory.swap.max", str(134217728 - 67108864)),
        ("cpu", "cpu.weight", str(shares_to_weight(512))),
        ("cpu", "cpu.max", "50000 100000"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "100"),
        ("io", "io.weight", f"default {blkio_weight_to_io(500)}"),
        ("io", "io.max", "8:0 rbps=1048576"),
    ]
    assert warnings == []


def test_v2_unlimited_values_and_warnings() -> None:
    res = Resources(
        memory_limit=-1, memory_swap=-1, cpu_quota=-1, pids_limit=-1, memory_swappiness=10
    )
    writes, warnings = plan_v2(res)
    assert ("memory", "memory.max", "max") in writes
    assert ("memory", "memory.swap.max", "max") in writes
    assert ("cpu", "cpu.max", "max 100000") in writes
    assert ("pids", "pids.max", "max") in writes
    assert warnings and "swappiness" in warnings[0]
    assert ("pids", "pids.max", "max") in plan_v1(Resources(pids_limit=0))


def test_unit_conversions_match_runc() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert blkio_weight_to_io(10) == 1
    assert blkio_weight_to_io(1000) == 10000
    assert swap_v2(100, 300) == "200"
    with pytest.raises(SpecError, match=r"needs memory\.limit"):
        swap_v2(None, 300)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit: must be an integer"),
        ({"memory": {"limit": 1000}}, "memory.limit: 1000 bytes is below the minimum"),
        ({"memory": {"limit": 67108864, "swap": 1000}}, "memory.swap: must be at least"),
        ({"cpu": {"shares": 1}}, "cpu.shares: must be from 2 to 262144"),
        ({"cpu": {"quota": 10}}, "cpu.quota: must be at least 1000"),
        ({"cpu": {"cpus": "0-a"}}, "cpu.cpus: '0-a' is not a list"),
        ({"cpu": {"cpus": "3-1"}}, "cpu.cpus: '3-1' is not a list"),
        ({"pids": {"limit": True}}, "pids.limit: must be an integer"),
        ({"devices": [{"access": "rwm"}]}, "devices[0].allow: must be true or false"),
        ({"devices": [{"allow": True, "type": "x"}]}, "devices[0].type: must be a, c or b"),
        ({"devices": [{"allow": True, "access": "rwx"}]}, "devices[0].access"),
        ({"memory": []}, "linux.resources.memory: must be an object"),
    ],
)
def test_resources_errors_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_resources(raw)
    assert str(e.value).startswith("config.json: linux.resources")
    assert field in str(e.value)


def test_unsupported_resources_are_reported_not_applied() -> None:
    res = parse_resources({"cpu": {"idle": 1}, "blockIO": {"leafWeight": 10}, "hugepageLimits": []})
    assert res.unsupported == ("linux.resources.cpu.idle", "linux.resources.blockIO.leafWeight")
    assert plan_v1(res) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hugepageLimits", [{"pageSize": "2MB", "limit": 1}]),
        ("network", {"classID": 1048577}),
        ("rdma", {"mlx5_1": {"hcaHandles": 3}}),
    ],
)
def test_limits_tuibox_cannot_apply_are_refused(key: str, value: object) -> None:
    # fail closed: a limit asked for and not applied leaves the host less protected
    with pytest.raises(SpecError) as info:
        parse_resources({key: value})
    assert str(info.value).startswith(f"config.json: linux.resources.{key}: ")


def test_device_rules_deny_all_then_spec_then_defaults() -> None:
    res = parse_resources({"devices": [{"allow": True, "type": "c", "major": 10, "minor": 200}]})
    rules = device_rules(res, (Device("/dev/fuse", "c", 10, 229),))
    assert rules[0].v1() == "a" and not rules[0].allow
    assert rules[1].v1() == "c 10:200 rwm"
    assert rules[2 : 2 + len(DEFAULT_DEVICE_RULES)] == list(DEFAULT_DEVICE_RULES)
    assert rules[-1].v1() == "c 10:229 rwm"
    assert [r.v1() for r in DEFAULT_DEVICE_RULES[:3]] == ["c *:* m", "b *:* m", "c 1:3 rwm"]
    assert DeviceRule(True, "c", 136, None, "rwm").v1() == "c 136:* rwm"


# ---- flags -----------------------------------------------------------------------------------


def test_sizes_and_cpus() -> None:
    assert parse_size("256m", "--memory") == 256 << 20
    assert parse_size("1.5GiB", "--memory") == 3 << 29
    assert parse_size("64MB", "--memory") == 64 << 20
    assert parse_size("4096", "--memory") == 4096
    assert parse_size("-1", "--memory-swap") == -1
    assert parse_cpus("0.5") == (50000, 100000)
    assert parse_cpus("2") == (200000, 100000)
    for bad in ("12q", "", "m", "-5", "1e9", ".5m"):
        with pytest.raises(SpecError, match="--memory"):
            parse_size(bad, "--memory")
    for bad in ("abc", "0", "-1", "0.001"):
        with pytest.raises(SpecError, match="--cpus"):
            parse_cpus(bad)


def test_flags_become_an_oci_fragment_laid_over_the_spec() -> None:
    flags = flags_to_raw(
        {
            "memory": "64m",
            "cpus": "0.5",
            "pids_limit": "20",
            "cpuset_cpus": "0",
            "cpu_shares": "512",
        }
    )
    assert flags == {
        "memory": {"limit": 64 << 20},
        "cpu": {"quota": 50000, "period": 100000, "cpus": "0", "shares": 512},
        "pids": {"limit": 20},
    }
    merged = merge_raw({"memory": {"limit": 1 << 30, "swap": -1}, "devices": []}, flags)
    assert merged["memory"] == {"limit": 64 << 20, "swap": -1}
    assert merged["devices"] == []
    assert flags_to_raw({}) == {}


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"memory": "1m"}, "--memory '1m': the minimum is 6m"),
        ({"memory": "64m", "memory_swap": "32m"}, "--memory-swap: must be at least --memory"),
        ({"pids_limit": "many"}, "--pids-limit 'many': must be an integer"),
        ({"cpu_shares": "1"}, "--cpu-shares '1': must be from 2 to 262144"),
        ({"cpuset_cpus": "zero"}, "--cpuset-cpus: 'zero' is not a list"),
    ],
)
def test_bad_flags_are_one_line_spec_errors(opts: dict[str, str], words: str) -> None:
    with pytest.raises(SpecError) as e:
        flags_to_raw(opts)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_limits_summary_and_update_keeps_the_rest() -> None:
    res = parse_resources(PODMAN)
    first = limits(res)
    assert first == {"memory": 64 << 20, "cpus": 0.5, "pids": 100}
    updated = limits(parse_resources({"pids": {"limit": -1}}), first)
    assert updated == {"memory": 64 << 20, "cpus": 0.5, "pids": None}
    assert limits(Resources()) == {"memory": None, "cpus": None, "pids": None}


# ---- stats parsing ---------------------------------------------------------------------------


def test_stat_file_parsers() -> None:
    blkio = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 1\n8:16 Read 4\nTotal 4612\n"
    assert parse_blkio(blkio) == (4100, 512)
    io = "8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=1 wbytes=2\n"
    assert parse_io_stat(io) == (101, 22)
    net = (
        "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
        "    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n"
        "  eth0: 1200 10 0 0 0 0 0 0 3400 20 0 0 0 0 0 0\n"
    )
    assert parse_net_dev(net) == (1200, 3400)
    assert fs.keyed("usage_usec 12\nuser_usec 3\nbad line x\n") == {
        "usage_usec": 12,
        "user_usec": 3,
    }


# ---- BoxCgroup on fake hierarchies -------------------------------------------------------------

V2_FILES = (
    "cgroup.procs",
    "cgroup.subtree_control",
    "cgroup.max.depth",
    "cgroup.freeze",
    "cgroup.events",
    "cgroup.kill",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.current",
    "memory.stat",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "pids.current",
    "io.stat",
    "io.max",
    "io.weight",
)
V1_FILES = {
    "memory": (
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.usage_in_bytes",
        "memory.stat",
    ),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "pids": ("pids.max", "pids.current"),
    "freezer": ("freezer.state",),
}


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """mkdir also makes the control files, as cgroupfs does; rmdir takes them away again."""

    def mkdir(path: str) -> None:
        os.mkdir(path)
        names = set(V2_FILES) if "/v2" in path else {"cgroup.procs"}
        for controller, files in V1_FILES.items():
            if f"/{controller}/" in path:
                names |= set(files)
        for name in names:
            Path(path, name).write_text("")

    def rmdir(path: str) -> bool:
        if not os.path.isdir(path):
            return True  # as fs.rmdir: already gone is removed
        for entry in os.scandir(path):
            if entry.is_file():
                os.unlink(entry.path)
        try:
            os.rmdir(path)
        except OSError:
            return False
        return True

    monkeypatch.setattr(fs, "mkdir", mkdir)
    monkeypatch.setattr(fs, "rmdir", rmdir)


def _v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_create_enables_controllers_on_the_way_down(tmp_path: Path, fake_kernel: None) -> None:
    root = _v2_root(tmp_path)
    h = Hierarchies({}, str(root), frozenset({"cpuset", "cpu", "io", "memory", "hugetlb", "pids"}))
    cg = BoxCgroup.create(h, "/tuibox/web")
    assert cg.unified == f"{root}/tuibox/web"
    assert cg.v2_controllers == frozenset({"cpu", "cpuset", "io", "memory", "pids"})
    assert cg.made == [f"{root}/tuibox", f"{root}/tuibox/web"]
    want = "+cpu +cpuset +io +memory +pids"
    assert (root / "cgroup.subtree_control").read_text() == want
    assert (root / "tuibox" / "cgroup.subtree_control").read_text() == want
    # the leaf enables nothing: processes live there
    assert (root / "tuibox" / "web" / "cgroup.subtree_control").read_text() == ""


def test_v2_apply_freeze_stats_and_record_round_trip(
    tmp_path: Path, fake_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuibox.runtime.cgroups import devices_bpf

    root = _v2_root(tmp_path)
    h = Hierarchies({}, str(root), frozenset({"cpu", "memory", "pids", "io"}))
    cg = BoxCgroup.create(h, "/tuibox/web")
    box = Path(cg.unified or "")
    attached: list[tuple[str, object]] = []
    monkeypatch.setattr(devices_bpf, "attach", lambda d, rules: attached.append((d, rules)))
    warnings = cg.apply(
        parse_resources({"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000}}),
        device_rules(Resources(), ()),
    )
    assert (box / "memory.max").read_text() == str(64 << 20)
    assert (box / "cpu.max").read_text() == "50000 100000"
    # the device allowlist is a BPF program on v2 (tests/integration/test_devices_bpf.py)
    assert warnings == [] and attached == [(str(box), device_rules(Resources(), ()))]
    with pytest.raises(CgroupError, match="cpuset"):
        cg.apply(parse_resources({"cpu": {"cpus": "0"}}))  # cpuset not enabled here

    (box / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    record = BoxRecord("web", "running", "/b", "/r")
    record.extra.update(cgroup=cg.path, cgroup_dirs=cg.to_record())
    assert is_frozen(record)
    again = BoxCgroup.from_record(record.extra)
    assert again is not None and again.unified == cg.unified and again.made == cg.made
    assert again.frozen()

    (box / "cgroup.procs").write_text("10\n11\n")
    (box / "memory.current").write_text("5000\n")
    (box / "memory.stat").write_text("anon 3000\ninactive_file 1000\n")
    (box / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\n")
    (box / "pids.current").write_text("2\n")
    (box / "io.stat").write_text("8:0 rbytes=7 wbytes=9 rios=1 wios=1\n")
    s = cg.stats()
    assert (s.cpu_ns, s.memory_usage, s.memory_limit, s.pids) == (2_500_000, 4000, 64 << 20, 2)
    assert (s.block_read, s.block_write) == (7, 9)
    assert cg.procs() == [10, 11]
    (box / "cgroup.procs").write_text("")
    cg.destroy(timeout=0.1)
    assert not (root / "tuibox").exists()


def test_v2_freeze_writes_cgroup_freeze(tmp_path: Path, fake_kernel: None) -> None:
    root = _v2_root(tmp_path)
    cg = BoxCgroup.create(Hierarchies({}, str(root), frozenset()), "/b")
    box = Path(cg.unified or "")
    (box / "cgroup.events").write_text("frozen 1\n")  # the fake kernel freezes at once
    cg.freeze(timeout=0.1)
    assert (box / "cgroup.freeze").read_text() == "1"
    with pytest.raises(CgroupError, match="did not thaw"):
        cg.thaw(timeout=0.01)
    assert (box / "cgroup.freeze").read_text() == "0"


def test_v1_cpuset_inherits_and_memory_order(
    tmp_path: Path, fake_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = {c: str(tmp_path / c) for c in ("memory", "cpuset", "pids", "freezer")}
    for c, m in mounts.items():
        os.mkdir(m)
        for name in V1_FILES[c]:
            Path(m, name).write_text("")
    Path(mounts["cpuset"], "cpuset.cpus").write_text("0-1\n")
    Path(mounts["cpuset"], "cpuset.mems").write_text("0\n")
    cg = BoxCgroup.create(Hierarchies(mounts, None), "/tuibox/web")
    leaf = Path(mounts["cpuset"], "tuibox", "web")
    assert (leaf / "cpuset.cpus").read_text() == "0-1"
    assert (leaf / "cpuset.mems").read_text() == "0"
    assert Path(mounts["cpuset"], "tuibox", "cpuset.cpus").read_text() == "0-1"

    mem = Path(mounts["memory"], "tuibox", "web")
    (mem / "memory.memsw.limit_in_bytes").write_text(str(64 << 20))
    written: list[str] = []
    real_write = fs.write

    def spy(path: str, value: str) -> None:
        written.append(os.path.basename(path))
        real_write(path, value)

    monkeypatch.setattr(fs, "write", spy)
    # raising both: memsw must go first or the kernel refuses limit > memsw
    cg.apply(parse_resources({"memory": {"limit": 128 << 20, "swap": 256 << 20}}))
    assert written == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    written.clear()
    cg.apply(parse_resources({"memory": {"limit": 32 << 20, "swap": 48 << 20}}))
    assert written == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    with pytest.raises(CgroupError, match="change --memory-swap with it"):
        cg.apply(parse_resources({"memory": {"limit": 128 << 20}}))
    with pytest.raises(CgroupError, match="limits for cpu asked for"):
        cg.apply(parse_resources({"cpu": {"shares": 100}}))
    monkeypatch.setattr(fs, "write", real_write)

    Path(mounts["freezer"], "tuibox", "web", "freezer.state").write_text("FROZEN\n")
    record = BoxRecord("web", "paused", "/b", "/r")
    record.extra.update(cgroup=cg.path, cgroup_dirs=cg.to_record())
    assert is_frozen(record)
    cg.destroy(timeout=0.1)
    for m in mounts.values():
        assert not Path(m, "tuibox").exists()


def test_existing_cgroup_with_processes_is_refused(tmp_path: Path, fake_kernel: None) -> None:
    root = _v2_root(tmp_path)
    (root / "taken").mkdir()
    (root / "taken" / "cgroup.procs").write_text("42\n")
    with pytest.raises(CgroupError, match="already exists and holds processes"):
        BoxCgroup.create(Hierarchies({}, str(root), frozenset()), "/taken")
    assert (root / "taken").is_dir()  # not ours: left alone


# memory.events exactly as a 6.x kernel prints it (mm/memcontrol.c, __memory_events_show):
# low, high, max, oom, oom_kill, oom_group_kill, one "key value" line each.
MEMORY_EVENTS = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n"
# v1 memory.oom_control (mem_cgroup_oom_control_read): oom_kill_disable, under_oom, oom_kill.
OOM_CONTROL = "oom_kill_disable 1\nunder_oom 0\noom_kill 4\n"


def test_oom_kills_reads_the_exact_key_of_memory_events() -> None:
    from tuibox.runtime.cgroups import oom_kills

    assert oom_kills(MEMORY_EVENTS) == 2  # not `oom` (3) nor `oom_group_kill` (1)
    assert oom_kills(MEMORY_EVENTS.replace("oom_kill 2", "oom_kill 0")) == 0
    assert oom_kills(OOM_CONTROL) == 4  # not oom_kill_disable
    assert oom_kills("low 0\nhigh 0\nmax 0\noom 0\n") == 0  # a kernel before oom_kill
    assert oom_kills("") == 0


def test_oom_killed_picks_v1_memory_then_v2_memory_events(tmp_path: Path) -> None:
    from tuibox.runtime.cgroups import oom_killed
    from tuibox.runtime.state import BoxRecord

    (tmp_path / "memory.events").write_text(MEMORY_EVENTS)
    unified = {"v1": {}, "unified": str(tmp_path), "v2_controllers": ["memory"]}
    record = BoxRecord("b", "stopped", "", "", extra={"cgroup_dirs": unified})
    assert oom_killed(record)
    unified["v2_controllers"] = ["pids"]  # memory not delegated to v2: not its events
    assert not oom_killed(record)
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    record.extra["cgroup_dirs"] = {"v1": {"memory": str(tmp_path)}, "unified": None}
    assert not oom_killed(record)
    assert not oom_killed(BoxRecord("b", "stopped", "", ""))  # no cgroup at all


def test_unified_keys_parse_and_refuse_actions() -> None:
    res = parse_resources({"unified": {"memory.high": "1G", "cgroup.max.depth": "3"}})
    assert res.unified == (("memory.high", "1G"), ("cgroup.max.depth", "3"))
    for bad, said in (
        ({"memory": "1"}, "is not a cgroup v2 file name"),
        ({"../memory.max": "1"}, "is not a cgroup v2 file name"),
        ({"cgroup.procs": "1"}, "an action on the cgroup"),
        ({"memory.high": 1}, "must be a string"),
    ):
        with pytest.raises(SpecError, match=said):
            parse_resources({"unified": bad})


def test_unified_written_last_on_v2_refused_for_a_v1_controller(
    tmp_path: Path, fake_kernel: None
) -> None:
    root = _v2_root(tmp_path)
    h = Hierarchies({}, str(root), frozenset({"cpu", "memory", "pids", "io"}))
    cg = BoxCgroup.create(h, "/tuibox/web")
    box = Path(cg.unified or "")
    res = parse_resources(
        {
            "memory": {"limit": 64 << 20},
            "unified": {"memory.max": "33554432", "cgroup.max.depth": "2"},
        }
    )
    cg.apply(res)
    assert (box / "memory.max").read_text() == "33554432"  # unified overrides, as runc
    assert (box / "cgroup.max.depth").read_text() == "2"
    with pytest.raises(CgroupError, match="no hugetlb controller"):
        cg.apply(parse_resources({"unified": {"hugetlb.2MB.max": "0"}}))
    # a hybrid host (this project's machine): memory on v1, hugetlb on cgroup2
    hybrid = BoxCgroup(
        "/tuibox/web", {"memory": str(tmp_path / "m")}, str(box), frozenset({"hugetlb"})
    )
    with pytest.raises(CgroupError, match="memory controller is on cgroup v1 on this host"):
        hybrid.apply(parse_resources({"unified": {"memory.high": "1G"}}))
    with pytest.raises(CgroupError, match="io controller is on cgroup v1"):
        BoxCgroup("/b", {"blkio": "/x"}, str(box))._unified_writes(
            parse_resources({"unified": {"io.max": "8:0 rbps=1"}})
        )
