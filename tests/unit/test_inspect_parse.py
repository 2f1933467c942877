"""runtime/inspect.py's parsers on the kernel's exact text, and the cgroup2 section on a
directory laid out as the kernel lays out a cgroup2 leaf (this host's boxes use v1 for most
controllers, so the v2 path is checked here)."""

from __future__ import annotations

from pathlib import Path

from tuibox.runtime import inspect as ins

MOUNTINFO = (
    "72 46 0:41 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
    "73 72 0:43 / /proc rw,nosuid,nodev,noexec,relatime shared:5 master:1 - proc proc rw\n"
    "80 72 254:0 /data/my\\040dir /mnt/a\\134b rw,relatime - ext4 /dev/vda rw\n"
)

# /proc/net/route of a box on 10.213.7.0/24 with gateway 10.213.7.1 (little-endian hex)
ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0107D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t0007D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.213.7.0/24 2 0 2
        |-- 10.213.7.0
           /24 link UNICAST
        |-- 10.213.7.5
           /32 host LOCAL
        |-- 10.213.7.255
           /32 link BROADCAST
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.1
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.213.7.5
        /32 host LOCAL
"""

IF_INET6 = "00000000000000000000000000000001 01 80 10 80       lo\n"

RESOLV = "# generated\nnameserver 10.213.7.1\nsearch example.test\noptions ndots:1\n"

# A cgroup2 leaf as the kernel writes it (6.x): flat-keyed and single-value files.
V2_FILES = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids\n",
    "memory.max": "50331648\n",
    "memory.high": "max\n",
    "memory.low": "0\n",
    "memory.min": "0\n",
    "memory.swap.max": "max\n",
    "memory.current": "126976\n",
    "memory.swap.current": "0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "cpu.max": "50000 100000\n",
    "cpu.weight": "100\n",
    "cpu.stat": (
        "usage_usec 2104\nuser_usec 1021\nsystem_usec 1083\nnr_periods 3\n"
        "nr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"
    ),
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "pids.max": "max\n",
    "pids.current": "1\n",
    "io.max": "",
    "io.weight": "default 100\n",
    "cgroup.freeze": "0\n",
}


def test_mountinfo() -> None:
    got = ins.parse_mountinfo(MOUNTINFO)
    assert [m["target"] for m in got] == ["/", "/proc", "/mnt/a\\b"]
    assert got[0]["type"] == "overlay" and got[0]["super_options"].startswith("rw,lowerdir=")
    assert got[1]["propagation"] == ["shared:5", "master:1"] and got[1]["parent"] == 72
    assert got[2]["root"] == "/data/my dir" and got[2]["source"] == "/dev/vda"


def test_routes_addresses_dns() -> None:
    assert ins.parse_route(ROUTE) == [
        {"destination": "0.0.0.0/0", "gateway": "10.213.7.1", "device": "eth0", "metric": 0},
        {"destination": "10.213.7.0/24", "gateway": None, "device": "eth0", "metric": 0},
    ]
    assert ins.parse_fib_trie(FIB_TRIE) == ["10.213.7.5", "127.0.0.1"]
    assert ins.parse_if_inet6(IF_INET6) == [{"address": "::1/128", "device": "lo"}]
    assert ins.parse_resolv(RESOLV) == {
        "nameservers": ["10.213.7.1"],
        "search": ["example.test"],
        "options": ["ndots:1"],
    }


def test_caps_maps_env() -> None:
    assert ins.cap_names(0x1 | 0x20 | 1 << 21) == ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]
    assert ins.cap_names(1 << 41) == ["CAP_41"]  # a newer kernel's capability keeps its bit
    assert ins.parse_id_map("         0     100000      65536\n") == [[0, 100000, 65536]]
    assert ins.mask_env(["A=1", "B=x=y", "C"], False) == ["A=*****", "B=*****", "C"]
    assert ins.mask_env(["A=1"], True) == ["A=1"]


def test_cgroup_v2_section_mirrors_the_files(tmp_path: Path) -> None:
    for name, text in V2_FILES.items():
        (tmp_path / name).write_text(text)
    got = ins.cgroup_v2_section(str(tmp_path))
    assert got["controllers"] == ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]
    limits = got["limits"]
    for name in ins.V2_LIMITS:
        if name in V2_FILES:
            assert limits[name] == V2_FILES[name].strip(), name
    assert "hugetlb.2MB.max" not in limits  # absent files are left out, not invented
    assert got["usage"]["memory.current"] == "126976"
    assert got["usage"]["cpu.stat"]["usage_usec"] == 2104
    assert got["usage"]["memory.events"]["oom_kill"] == 0


def test_text_rendering() -> None:
    text = ins.to_text({"id": "a", "network": {"address": "10.0.0.2", "ports": []}, "x": None})
    assert text == "id: a\nnetwork:\n  address: 10.0.0.2\n  ports: -\nx: -\n"
