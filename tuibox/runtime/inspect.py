"""What only the runtime knows about a box, gathered from its record and the kernel.

`inspect(runtime, name)` returns one JSON-able dict (the CLI's `inspect`, the TUI's inspect
screen). Live facts come from /proc/<init> and the box's cgroup directories; a stopped box
gets what its record knows, and each live-only section says `{"absent": why}`.

Loaded only by the `inspect` verb and the TUI: never on `tuibox run`'s path.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from tuibox.runtime.cgroups.hierarchy import unescape_mountinfo
from tuibox.runtime.defaults import CAPABILITY_NAMES

if TYPE_CHECKING:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.state import BoxRecord

MASK = "*****"

# Limit files worth showing, per v1 controller and for the unified (v2) directory. Values are
# shown as the kernel writes them (stripped), so a test compares them to the file itself.
V1_LIMITS: dict[str, tuple[str, ...]] = {
    "memory": (
        "memory.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
    ),
    "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.rt_runtime_us"),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "pids": ("pids.max",),
    "blkio": ("blkio.weight", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"),
    "freezer": ("freezer.state",),
}
V1_USAGE: dict[str, tuple[str, ...]] = {
    "memory": ("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt"),
    "cpuacct": ("cpuacct.usage",),
    "pids": ("pids.current",),
}
V2_LIMITS: tuple[str, ...] = (
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.max",
    "io.weight",
    "hugetlb.2MB.max",
    "cgroup.freeze",
)
V2_USAGE: tuple[str, ...] = ("memory.current", "memory.swap.current", "pids.current")
V2_KEYED_USAGE: tuple[str, ...] = ("cpu.stat", "memory.events")

NS_NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _alive(pid: int, starttime: int | None) -> bool:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return False
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] == "Z":
        return False
    return starttime is None or fields[19] == str(starttime)


# ---- parsers (pure: unit-tested on the kernel's exact text) -------------------------------------


def parse_keyed(text: str) -> dict[str, int | str]:
    """A flat-keyed cgroup file (cpu.stat, memory.events, memory.stat): `key value` lines."""
    out: dict[str, int | str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            value = value.strip()
            out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def parse_mountinfo(text: str) -> list[dict[str, Any]]:
    """/proc/PID/mountinfo (proc(5)): one dict per mount, paths unescaped."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        a = left.split()
        b = right.split()
        if not sep or len(a) < 6 or len(b) < 2:
            continue
        out.append(
            {
                "id": int(a[0]),
                "parent": int(a[1]),
                "major_minor": a[2],
                "root": unescape_mountinfo(a[3]),
                "target": unescape_mountinfo(a[4]),
                "options": a[5],
                "propagation": a[6:],
                "type": b[0],
                "source": unescape_mountinfo(b[1]),
                "super_options": b[2] if len(b) > 2 else "",
            }
        )
    return out


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def cap_names(mask: int) -> list[str]:
    return [
        CAPABILITY_NAMES[i] if i < len(CAPABILITY_NAMES) else f"CAP_{i}"
        for i in range(64)
        if mask >> i & 1
    ]


def parse_id_map(text: str) -> list[list[int]]:
    return [[int(x) for x in line.split()] for line in text.splitlines() if line.split()]


def _hex_ip4(h: str) -> str:
    # /proc/net/route writes addresses as host-order (little-endian here) hex.
    n = int(h, 16)
    return ".".join(str(n >> s & 255) for s in (0, 8, 16, 24))


def parse_route(text: str) -> list[dict[str, Any]]:
    """/proc/PID/net/route: IPv4 routes of the namespace."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        mask = int(f[7], 16)
        prefix = bin(mask).count("1")
        out.append(
            {
                "destination": f"{_hex_ip4(f[1])}/{prefix}",
                "gateway": _hex_ip4(f[2]) if int(f[2], 16) else None,
                "device": f[0],
                "metric": int(f[6]),
            }
        )
    return out


def parse_fib_trie(text: str) -> list[str]:
    """The namespace's own IPv4 addresses: entries of /proc/PID/net/fib_trie marked LOCAL
    (the "host LOCAL" leaves; broadcast and network leaves are skipped)."""
    found: list[str] = []
    last = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|-- ") or s.startswith("+-- "):
            last = s[4:].split("/")[0]
        elif s.endswith("host LOCAL") and last and last not in found:
            found.append(last)
    return found


def parse_if_inet6(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        raw = f[0]
        addr = ":".join(raw[i : i + 4] for i in range(0, 32, 4))
        import ipaddress

        out.append({"address": f"{ipaddress.IPv6Address(addr)}/{int(f[2], 16)}", "device": f[5]})
    return out


def parse_resolv(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"nameservers": [], "search": [], "options": []}
    for line in text.splitlines():
        f = line.split()
        if not f or f[0].startswith(("#", ";")):
            continue
        if f[0] == "nameserver" and len(f) > 1:
            out["nameservers"].append(f[1])
        elif f[0] in ("search", "domain"):
            out["search"].extend(f[1:])
        elif f[0] == "options":
            out["options"].extend(f[1:])
    return out


def mask_env(env: list[str], show: bool) -> list[str]:
    if show:
        return list(env)
    return [e.partition("=")[0] + "=" + MASK if "=" in e else e for e in env]


# ---- sections ------------------------------------------------------------------------------------


def _namespaces(pid: int, others: dict[str, int]) -> dict[str, Any]:
    """Each namespace's inode, and whether the host (the caller's namespaces) or another box
    shares it."""
    host: dict[str, int] = {}
    for ns in NS_NAMES:
        try:
            host[ns] = os.stat(f"/proc/self/ns/{ns}").st_ino
        except OSError:
            pass
    other_ns: dict[str, dict[int, list[str]]] = {}
    for name, opid in others.items():
        for ns in NS_NAMES:
            try:
                ino = os.stat(f"/proc/{opid}/ns/{ns}").st_ino
            except OSError:
                continue
            other_ns.setdefault(ns, {}).setdefault(ino, []).append(name)
    out: dict[str, Any] = {}
    for ns in NS_NAMES:
        try:
            ino = os.stat(f"/proc/{pid}/ns/{ns}").st_ino
        except OSError:
            continue
        out[ns] = {
            "inode": ino,
            "shared_with_host": host.get(ns) == ino,
            "shared_with": sorted(other_ns.get(ns, {}).get(ino, [])),
        }
    return out


def _files(directory: str, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for n in names:
        text = _read(os.path.join(directory, n))
        if text is not None:
            out[n] = text.strip()
    return out


def cgroup_v2_section(directory: str) -> dict[str, Any]:
    """A cgroup2 directory's limits and usage, values exactly as in its files."""
    usage: dict[str, Any] = dict(_files(directory, V2_USAGE))
    for n in V2_KEYED_USAGE:
        text = _read(os.path.join(directory, n))
        if text is not None:
            usage[n] = parse_keyed(text)
    controllers = (_read(os.path.join(directory, "cgroup.controllers")) or "").split()
    return {
        "directory": directory,
        "controllers": controllers,
        "limits": _files(directory, V2_LIMITS),
        "usage": usage,
    }


def _cgroup(record: BoxRecord, live: bool) -> dict[str, Any]:
    from tuibox.runtime.cgroups.group import BoxCgroup

    cg = BoxCgroup.from_record(record.extra)
    out: dict[str, Any] = {
        "path": record.extra.get("cgroup"),
        "requested_limits": record.extra.get("limits"),
    }
    if cg is None:
        out["absent"] = "the box has no cgroup"
        return out
    if not live:
        out["absent"] = "the box is not running"
        return out
    v1: dict[str, Any] = {}
    for controller, d in sorted(cg.v1.items()):
        if not os.path.isdir(d):
            continue
        v1[controller] = {
            "directory": d,
            "limits": _files(d, V1_LIMITS.get(controller, ())),
            "usage": _files(d, V1_USAGE.get(controller, ())),
        }
    out["v1"] = v1
    out["v2"] = (
        cgroup_v2_section(cg.unified)
        if cg.unified is not None and os.path.isdir(cg.unified)
        else None
    )
    s = cg.stats()
    out["usage"] = {
        "cpu_ns": s.cpu_ns,
        "memory": s.memory_usage,
        "memory_limit": s.memory_limit,
        "pids": s.pids,
        "block_read": s.block_read,
        "block_write": s.block_write,
    }
    return out


def _capabilities(status: dict[str, str]) -> dict[str, list[str]]:
    out = {}
    for key, name in (
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapBnd", "bounding"),
        ("CapInh", "inheritable"),
        ("CapAmb", "ambient"),
    ):
        if key in status:
            out[name] = cap_names(int(status[key], 16))
    return out


SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


def _seccomp(record: BoxRecord, status: dict[str, str] | None) -> dict[str, Any]:
    filt = record.extra.get("seccomp")
    out: dict[str, Any] = {}
    if status is not None:
        out["mode"] = SECCOMP_MODES.get(status.get("Seccomp", ""), status.get("Seccomp"))
        out["filters"] = int(status.get("Seccomp_filters", "0") or 0)
    if isinstance(filt, dict) and isinstance(filt.get("bpf"), str):
        import base64

        bpf = base64.b64decode(filt["bpf"])
        out["profile"] = filt.get("profile") or "filter"
        out["instructions"] = len(bpf) // 8
        out["flags"] = filt.get("flags", 0)
        out["digest"] = "sha256:" + hashlib.sha256(bpf).hexdigest()
    else:
        out["profile"] = "unconfined"
    return out


def _network(record: BoxRecord, live: bool) -> dict[str, Any] | None:
    net = record.extra.get("network")
    out: dict[str, Any] = {
        "address": record.extra.get("address"),
        "ports": record.extra.get("ports", []),
    }
    if isinstance(net, dict):
        out["name"] = net.get("name")
        out["bridge"] = net.get("bridge")
        out["interfaces"] = net.get("interfaces")
        out["table"] = net.get("table")
    if not live:
        out["absent"] = "the box is not running"
        return out
    pid = record.pid
    route = _read(f"/proc/{pid}/net/route")
    out["routes"] = parse_route(route) if route is not None else []
    fib = _read(f"/proc/{pid}/net/fib_trie")
    out["addresses"] = parse_fib_trie(fib) if fib is not None else []
    v6 = _read(f"/proc/{pid}/net/if_inet6")
    out["addresses6"] = parse_if_inet6(v6) if v6 is not None else []
    resolv = _read(f"/proc/{pid}/root/etc/resolv.conf")
    out["dns"] = parse_resolv(resolv) if resolv is not None else None
    if isinstance(net, dict) and net.get("table") and out["address"]:
        out["nat_rules"] = _nat_rules(str(net["table"]), str(out["address"]))
    return out


def _nat_rules(table: str, address: str) -> list[str]:
    """The lines of the bridge's nft table that serve this box (its port map elements and
    the rules that look them up)."""
    from tuibox.runtime.errors import TuiboxError
    from tuibox.runtime.network.nat import Nft

    try:
        text = Nft.get().run(f"list table ip {table}\n")
    except TuiboxError as e:
        return [f"(unavailable: {e})"]
    lines = []
    for line in text.splitlines():
        s = line.strip().rstrip(",")
        if address in s or "dnat" in s:
            for part in s.split(", "):
                if address in part or "dnat" in part:
                    lines.append(part.strip("{} "))
    return lines


def _other_inits(rt: Runtime, own: str) -> dict[str, int]:
    """Other boxes' init pids, from their records as written: refreshing each status (what
    `list` does) would cost more than the whole rest of an inspect with 50 boxes, and a dead
    pid simply has no namespaces to match."""
    from tuibox.runtime.errors import TuiboxError

    out = {}
    for name in rt.root.names():
        if name == own:
            continue
        try:
            r = rt.root.read(name)
        except TuiboxError:
            continue
        if r.pid and r.status != "stopped" and _alive(r.pid, r.starttime):
            out[name] = r.pid
    return out


def inspect(rt: Runtime, name: str, show_env: bool = False) -> dict[str, Any]:
    """Everything about one box; raises BoxNotFound for an unknown name."""
    record = rt.get(name)
    live = record.status in ("running", "paused", "created") and _alive(
        record.pid, record.starttime
    )
    pid = record.pid
    monitor = record.extra.get("monitor")
    proc = record.extra.get("process") or {}
    env = list(proc.get("env") or [])
    out: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "image": record.image,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "layer": record.extra.get("layer"),
        "command": record.command,
        "hostname": record.hostname,
        "terminal": record.terminal,
        "created": record.created,
        "started": record.started,
        "finished": record.finished,
        "exit": {"status": record.exit_status, "oom_killed": record.oom_killed},
        "pids": {
            "init": pid if live else None,
            "monitor": (
                {
                    "pid": monitor[0],
                    "starttime": monitor[1],
                    "alive": _alive(int(monitor[0]), monitor[1]),
                }
                if isinstance(monitor, list) and len(monitor) == 2
                else None
            ),
            "console": record.extra.get("console"),
        },
        "restart": record.extra.get("restart"),
        "env": mask_env(env, show_env),
        "env_masked": not show_env,
        "spec": {
            "namespaces": record.namespaces,
            "annotations": record.annotations,
            "process": {k: v for k, v in proc.items() if k != "env"},
            "limits": record.extra.get("limits"),
            "stages": record.extra.get("stages"),
        },
    }
    absent = {"absent": "the box is not running"}
    status_text = _read(f"/proc/{pid}/status") if live else None
    status = parse_status(status_text) if status_text is not None else None
    if live:
        others = _other_inits(rt, record.id)
        out["namespaces"] = _namespaces(pid, others)
        mi = _read(f"/proc/{pid}/mountinfo")
        out["mounts"] = parse_mountinfo(mi) if mi is not None else []
        out["capabilities"] = _capabilities(status) if status is not None else absent
        users: dict[str, Any] = {}
        for key in ("uid_map", "gid_map"):
            text = _read(f"/proc/{pid}/{key}")
            users[key] = parse_id_map(text) if text is not None else None
        if status is not None:
            users["uid"] = status.get("Uid", "").split()
            users["gid"] = status.get("Gid", "").split()
        out["user"] = users
    else:
        out["namespaces"] = absent
        out["mounts"] = absent
        out["capabilities"] = absent
        out["user"] = {"uid": proc.get("uid"), "gid": proc.get("gid"), **absent}
    out["seccomp"] = _seccomp(record, status)
    out["cgroup"] = _cgroup(record, live)
    out["network"] = _network(record, live)
    return out


def to_text(data: dict[str, Any]) -> str:
    """An indented, human-readable rendering (the CLI's --format text, the TUI's body)."""
    lines: list[str] = []

    def walk(value: Any, indent: int, key: str) -> None:
        pad = "  " * indent
        if isinstance(value, dict):
            if key:
                lines.append(f"{pad}{key}:")
            for k, v in value.items():
                walk(v, indent + (1 if key else 0), str(k))
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            lines.append(f"{pad}{key}:")
            for i, v in enumerate(value):
                walk(v, indent + 1, f"- [{i}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: {', '.join(str(v) for v in value) or '-'}")
        else:
            lines.append(f"{pad}{key}: {'-' if value is None else value}")

    walk(data, 0, "")
    return "\n".join(lines) + "\n"
