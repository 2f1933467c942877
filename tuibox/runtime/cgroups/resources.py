"""`linux.resources` and the limit flags: parse, validate, and plan the control-file writes.

Pure functions, no I/O: `plan_v1` / `plan_v2` turn a `Resources` into (controller, file, value)
triples, so the formats of both versions are unit-tested on any machine. Every error names
the field or flag (`config.json: linux.resources.memory.limit: ...`, `--memory '12q': ...`).
"""

from __future__ import annotations

from tuibox.runtime.errors import SpecError
from tuibox.runtime.plain import Plain
from tuibox.runtime.units import parse_size  # the one size parser (the TUI's too)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.spec_model import Device

WHERE = "config.json: linux.resources"
DEFAULT_PERIOD = 100_000  # µs, the kernel's default CFS period
MIN_MEMORY = 6 * 1024 * 1024  # docker's floor: below it even a shell will not start
UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded LONG_MAX; anything this big


class DeviceRule(Plain):
    """One devices-cgroup rule. major/minor None mean '*' (any)."""

    __slots__ = ("access", "allow", "major", "minor", "type")

    def __init__(
        self, allow: bool, type: str, major: int | None, minor: int | None, access: str
    ) -> None:
        self.allow = allow
        self.type = type  # a, c, b
        self.major = major
        self.minor = minor
        self.access = access  # some of r, w, m

    def v1(self) -> str:
        """The line for devices.allow / devices.deny."""
        if self.type == "a":
            return "a"
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


class Resources(Plain):
    __slots__ = (
        "blkio_throttle",
        "blkio_weight",
        "cpu_cpus",
        "cpu_mems",
        "cpu_period",
        "cpu_quota",
        "cpu_shares",
        "devices",
        "disable_oom_killer",
        "memory_limit",
        "memory_reservation",
        "memory_swap",
        "memory_swappiness",
        "pids_limit",
        "unified",
        "unsupported",
    )

    def __init__(
        self,
        memory_limit: int | None = None,
        memory_reservation: int | None = None,
        memory_swap: int | None = None,
        memory_swappiness: int | None = None,
        disable_oom_killer: bool | None = None,
        cpu_shares: int | None = None,
        cpu_quota: int | None = None,
        cpu_period: int | None = None,
        cpu_cpus: str | None = None,
        cpu_mems: str | None = None,
        pids_limit: int | None = None,
        devices: tuple[DeviceRule, ...] = (),
        blkio_weight: int | None = None,
        blkio_throttle: tuple[tuple[str, int, int, int], ...] = (),
        unsupported: tuple[str, ...] = (),
        unified: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.memory_limit = memory_limit  # bytes; -1 unlimited
        self.memory_reservation = memory_reservation
        self.memory_swap = memory_swap  # memory + swap, as in the OCI spec and v1's memsw
        self.memory_swappiness = memory_swappiness
        self.disable_oom_killer = disable_oom_killer
        self.cpu_shares = cpu_shares
        self.cpu_quota = cpu_quota  # µs per period; -1 unlimited
        self.cpu_period = cpu_period
        self.cpu_cpus = cpu_cpus
        self.cpu_mems = cpu_mems
        self.pids_limit = pids_limit  # <= 0 unlimited
        self.devices = devices
        self.blkio_weight = blkio_weight
        # (read_bps|write_bps|read_iops|write_iops, major, minor, rate)
        self.blkio_throttle = blkio_throttle
        self.unsupported = unsupported  # fields given that tuibox does not apply
        # cgroup v2 (file, value) written as given, after everything else (runc's order)
        self.unified = unified


# ---- parsing linux.resources ----


def _obj(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be an object")
    return raw


def _int(d: dict[str, Any], key: str, where: str, lo: int | None = None) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}.{key}: must be an integer, not {value!r}")
    if lo is not None and value < lo:
        raise SpecError(f"{where}.{key}: must be at least {lo}, not {value}")
    return value


def _str(d: dict[str, Any], key: str, where: str) -> str | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpecError(f"{where}.{key}: must be a string")
    check_cpu_list(value, f"{where}.{key}")
    return value


def check_cpu_list(text: str, where: str) -> None:
    """'0-3,5' style lists (cpuset.cpus, cpuset.mems)."""
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise SpecError(f"{where}: {text!r} is not a list such as 0-3,5")


def _device_rule(raw: Any, where: str) -> DeviceRule:
    d = _obj(raw, where)
    allow = d.get("allow")
    if not isinstance(allow, bool):
        raise SpecError(f"{where}.allow: must be true or false")
    kind = d.get("type") or "a"
    if kind not in ("a", "c", "b"):
        raise SpecError(f"{where}.type: must be a, c or b, not {kind!r}")
    access = d.get("access") or "rwm"
    if not isinstance(access, str) or not access or any(c not in "rwm" for c in access):
        raise SpecError(f"{where}.access: must be some of r, w, m, not {access!r}")
    major = _int(d, "major", where, -1)
    minor = _int(d, "minor", where, -1)
    return DeviceRule(
        allow,
        kind,
        None if major is None or major < 0 else major,
        None if minor is None or minor < 0 else minor,
        access,
    )


_THROTTLE_KEYS = {
    "throttleReadBpsDevice": "read_bps",
    "throttleWriteBpsDevice": "write_bps",
    "throttleReadIOPSDevice": "read_iops",
    "throttleWriteIOPSDevice": "write_iops",
}


# Limits tuibox does not apply; running without one leaves the host less protected than the
# file asks (fail closed), so they are refused rather than warned about. The warned ones
# (memory.kernel/kernelTCP, cpu.realtime*/idle/burst, blockIO weights) only tune sharing.
REFUSED_RESOURCES: dict[str, str] = {
    "hugepageLimits": "hugetlb limits are not implemented; the box could take every huge page",
    "network": (
        "net_cls/net_prio tagging is not implemented; host firewall or traffic rules that match "
        "the class would miss the box"
    ),
    "rdma": "rdma limits are not implemented; the box could take every RDMA resource",
}
# cgroup v2 files that act rather than set (move, kill, freeze processes, or change which
# controllers the children get): not settings a config.json may write.
_UNIFIED_ACTIONS = frozenset(
    {"cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control"}
)


def _unified(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    """linux.resources.unified: {"memory.high": "1G", ...}, names of files of the box's v2
    cgroup. Which controller serves each is checked against the host at apply time."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be an object of file names and values")
    out = []
    for key, value in raw.items():
        field = f"{where}.{key}"
        controller, dot, rest = key.partition(".")
        if not dot or not controller or not rest or "/" in key or "\0" in key:
            raise SpecError(f"{field}: is not a cgroup v2 file name like memory.high")
        if key in _UNIFIED_ACTIONS:
            raise SpecError(f"{field}: is an action on the cgroup, not a setting")
        if not isinstance(value, str):
            raise SpecError(f"{field}: must be a string")
        out.append((key, value))
    return tuple(out)


def parse_resources(raw: Any, where: str = WHERE) -> Resources:
    top = _obj(raw, where)
    unsupported: list[str] = []
    mem = _obj(top.get("memory"), f"{where}.memory")
    w = f"{where}.memory"
    limit = _int(mem, "limit", w, -1)
    swap = _int(mem, "swap", w, -1)
    swappiness = mem.get("swappiness")
    if swappiness is not None and (
        not isinstance(swappiness, int)
        or isinstance(swappiness, bool)
        or not 0 <= swappiness <= 100
    ):
        raise SpecError(f"{w}.swappiness: must be an integer from 0 to 100")
    if limit is not None and 0 <= limit < MIN_MEMORY:
        raise SpecError(f"{w}.limit: {limit} bytes is below the minimum of 6 MiB")
    if limit is not None and limit > 0 and swap is not None and 0 <= swap < limit:
        raise SpecError(f"{w}.swap: must be at least memory.limit (it counts memory + swap)")
    disable_oom = mem.get("disableOOMKiller")
    if disable_oom is not None and not isinstance(disable_oom, bool):
        raise SpecError(f"{w}.disableOOMKiller: must be true or false")
    for key in ("kernel", "kernelTCP"):
        if mem.get(key) is not None:
            unsupported.append(f"linux.resources.memory.{key}")

    cpu = _obj(top.get("cpu"), f"{where}.cpu")
    w = f"{where}.cpu"
    shares = _int(cpu, "shares", w, 0)
    if shares is not None and shares != 0 and not 2 <= shares <= 262144:
        raise SpecError(f"{w}.shares: must be from 2 to 262144, not {shares}")
    quota = _int(cpu, "quota", w, -1)
    if quota is not None and 0 <= quota < 1000:
        raise SpecError(f"{w}.quota: must be at least 1000 µs (or -1 for no limit)")
    period = _int(cpu, "period", w, 0)
    if period is not None and period != 0 and not 1000 <= period <= 1_000_000:
        raise SpecError(f"{w}.period: must be from 1000 to 1000000 µs, not {period}")
    for key in ("realtimeRuntime", "realtimePeriod", "idle", "burst"):
        if cpu.get(key) is not None:
            unsupported.append(f"linux.resources.cpu.{key}")

    pids = _obj(top.get("pids"), f"{where}.pids")
    pids_limit = _int(pids, "limit", f"{where}.pids")

    devices_raw = top.get("devices") or []
    if not isinstance(devices_raw, list):
        raise SpecError(f"{where}.devices: must be a list")
    devices = tuple(_device_rule(d, f"{where}.devices[{i}]") for i, d in enumerate(devices_raw))

    blkio = _obj(top.get("blockIO"), f"{where}.blockIO")
    w = f"{where}.blockIO"
    weight = _int(blkio, "weight", w, 0)
    if weight is not None and weight != 0 and not 10 <= weight <= 1000:
        raise SpecError(f"{w}.weight: must be from 10 to 1000, not {weight}")
    throttle: list[tuple[str, int, int, int]] = []
    for key, kind in _THROTTLE_KEYS.items():
        entries = blkio.get(key) or []
        if not isinstance(entries, list):
            raise SpecError(f"{w}.{key}: must be a list")
        for i, e in enumerate(entries):
            ew = f"{w}.{key}[{i}]"
            ed = _obj(e, ew)
            major = _int(ed, "major", ew, 0)
            minor = _int(ed, "minor", ew, 0)
            rate = _int(ed, "rate", ew, 0)
            if major is None or minor is None or rate is None:
                raise SpecError(f"{ew}: needs major, minor and rate")
            throttle.append((kind, major, minor, rate))
    for key in ("leafWeight", "weightDevice"):
        if blkio.get(key):
            unsupported.append(f"linux.resources.blockIO.{key}")
    for key, why in REFUSED_RESOURCES.items():
        if top.get(key):
            raise SpecError(f"{where}.{key}: {why}")

    return Resources(
        memory_limit=limit,
        memory_reservation=_int(mem, "reservation", f"{where}.memory", -1),
        memory_swap=swap,
        memory_swappiness=swappiness,
        disable_oom_killer=disable_oom,
        cpu_shares=shares or None,
        cpu_quota=quota,
        cpu_period=period or None,
        cpu_cpus=_str(cpu, "cpus", f"{where}.cpu"),
        cpu_mems=_str(cpu, "mems", f"{where}.cpu"),
        pids_limit=pids_limit,
        devices=devices,
        blkio_weight=weight or None,
        blkio_throttle=tuple(throttle),
        unsupported=tuple(unsupported),
        unified=_unified(top.get("unified"), f"{where}.unified"),
    )


# ---- command-line flags ----


def parse_cpus(text: str, flag: str = "--cpus") -> tuple[int, int]:
    """'0.5' -> (quota, period) = (50000, 100000)."""
    try:
        cpus = float(text)
    except ValueError:
        raise SpecError(f"{flag} {text!r}: must be a number of CPUs such as 0.5") from None
    if not 0.01 <= cpus <= 4096:
        raise SpecError(f"{flag} {text!r}: must be from 0.01 to 4096")
    return round(cpus * DEFAULT_PERIOD), DEFAULT_PERIOD


def _flag_int(text: str, flag: str, lo: int, hi: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SpecError(f"{flag} {text!r}: must be an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise SpecError(f"{flag} {text!r}: must be {bound}")
    return value


# option dest -> flag as the user typed it (for messages)
FLAG_NAMES = {
    "memory": "--memory",
    "memory_swap": "--memory-swap",
    "cpus": "--cpus",
    "cpu_shares": "--cpu-shares",
    "cpuset_cpus": "--cpuset-cpus",
    "cpuset_mems": "--cpuset-mems",
    "pids_limit": "--pids-limit",
}


def flags_to_raw(opts: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """The limit flags as an OCI linux.resources fragment (only what was given).

    `names` says how errors name each field (default: the CLI's flags, FLAG_NAMES)."""
    shown = FLAG_NAMES if names is None else {**FLAG_NAMES, **names}
    out: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        out.setdefault(section, {})[key] = value

    if opts.get("memory") is not None:
        value = parse_size(opts["memory"], shown["memory"])
        if 0 <= value < MIN_MEMORY:
            raise SpecError(f"{shown['memory']} {opts['memory']!r}: the minimum is 6m")
        put("memory", "limit", value)
    if opts.get("memory_swap") is not None:
        swap = parse_size(opts["memory_swap"], shown["memory_swap"])
        limit = out.get("memory", {}).get("limit")
        if swap != -1 and limit is not None and limit > 0 and swap < limit:
            raise SpecError(
                f"{shown['memory_swap']}: must be at least {shown['memory']} "
                "(it counts memory + swap)"
            )
        put("memory", "swap", swap)
    if opts.get("cpus") is not None:
        quota, period = parse_cpus(opts["cpus"], shown["cpus"])
        put("cpu", "quota", quota)
        put("cpu", "period", period)
    if opts.get("cpu_shares") is not None:
        put("cpu", "shares", _flag_int(opts["cpu_shares"], shown["cpu_shares"], 2, 262144))
    for dest, key in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if opts.get(dest) is not None:
            check_cpu_list(opts[dest], shown[dest])
            put("cpu", key, opts[dest])
    if opts.get("pids_limit") is not None:
        put("pids", "limit", _flag_int(opts["pids_limit"], shown["pids_limit"], -1))
    return out


def merge_raw(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """linux.resources with the flags' sections laid over it (flags win, field by field)."""
    merged = dict(base)
    for section, fields in extra.items():
        current = merged.get(section)
        merged[section] = {**current, **fields} if isinstance(current, dict) else dict(fields)
    return merged


# ---- what the TUI shows ----


def limits(res: Resources, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"memory": bytes|None, "cpus": float|None, "pids": int|None}; fields not in `res`
    keep their `old` value (for update)."""
    out: dict[str, Any] = dict(old) if old else {"memory": None, "cpus": None, "pids": None}
    if res.memory_limit is not None:
        out["memory"] = res.memory_limit if res.memory_limit > 0 else None
    if res.cpu_quota is not None:
        period = res.cpu_period or DEFAULT_PERIOD
        out["cpus"] = round(res.cpu_quota / period, 3) if res.cpu_quota > 0 else None
    if res.pids_limit is not None:
        out["pids"] = res.pids_limit if res.pids_limit > 0 else None
    return out


# ---- devices ----

# Always allowed, after the spec's own rules (runc's AllowedDevices without tun): mknod of any
# node (what a node may then be used for is what counts), the default /dev nodes, ptys.
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(True, "c", None, None, "m"),
    DeviceRule(True, "b", None, None, "m"),
    DeviceRule(True, "c", 1, 3, "rwm"),  # null
    DeviceRule(True, "c", 1, 5, "rwm"),  # zero
    DeviceRule(True, "c", 1, 7, "rwm"),  # full
    DeviceRule(True, "c", 1, 8, "rwm"),  # random
    DeviceRule(True, "c", 1, 9, "rwm"),  # urandom
    DeviceRule(True, "c", 5, 0, "rwm"),  # tty
    DeviceRule(True, "c", 5, 1, "rwm"),  # console
    DeviceRule(True, "c", 5, 2, "rwm"),  # ptmx
    DeviceRule(True, "c", 136, None, "rwm"),  # pts/*
)


def device_rules(res: Resources, devices: tuple[Device, ...]) -> list[DeviceRule]:
    """Deny everything, then the spec's rules in order, the defaults, the spec's devices."""
    rules = [DeviceRule(False, "a", None, None, "rwm"), *res.devices, *DEFAULT_DEVICE_RULES]
    for dev in devices:
        if dev.type in ("c", "u", "b"):
            kind = "b" if dev.type == "b" else "c"
            rules.append(DeviceRule(True, kind, dev.major, dev.minor, "rwm"))
    return rules


# ---- the files to write ----

Write = tuple[str, str, str]  # (controller, file, value)


def plan_v1(res: Resources) -> list[Write]:
    out: list[Write] = []
    if res.memory_limit is not None:
        out.append(("memory", "memory.limit_in_bytes", str(res.memory_limit)))
    if res.memory_swap is not None:
        out.append(("memory", "memory.memsw.limit_in_bytes", str(res.memory_swap)))
    if res.memory_reservation is not None:
        out.append(("memory", "memory.soft_limit_in_bytes", str(res.memory_reservation)))
    if res.memory_swappiness is not None:
        out.append(("memory", "memory.swappiness", str(res.memory_swappiness)))
    if res.disable_oom_killer is not None:
        out.append(("memory", "memory.oom_control", "1" if res.disable_oom_killer else "0"))
    if res.cpu_shares is not None:
        out.append(("cpu", "cpu.shares", str(res.cpu_shares)))
    # The period first: the kernel checks quota against the period it has at that moment.
    if res.cpu_period is not None:
        out.append(("cpu", "cpu.cfs_period_us", str(res.cpu_period)))
    if res.cpu_quota is not None:
        out.append(("cpu", "cpu.cfs_quota_us", str(res.cpu_quota)))
    if res.cpu_cpus is not None:
        out.append(("cpuset", "cpuset.cpus", res.cpu_cpus))
    if res.cpu_mems is not None:
        out.append(("cpuset", "cpuset.mems", res.cpu_mems))
    if res.pids_limit is not None:
        out.append(("pids", "pids.max", str(res.pids_limit) if res.pids_limit > 0 else "max"))
    if res.blkio_weight is not None:
        out.append(("blkio", "blkio.weight", str(res.blkio_weight)))
    for kind, major, minor, rate in res.blkio_throttle:
        out.append(("blkio", f"blkio.throttle.{kind}_device", f"{major}:{minor} {rate}"))
    return out


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), runc's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io(weight: int) -> int:
    """blkio.weight (10..1000) to io.weight (1..10000), runc's formula."""
    return 1 + (weight - 10) * 9999 // 990


def swap_v2(limit: int | None, swap: int) -> str:
    """OCI memory.swap counts memory + swap; v2's memory.swap.max counts swap alone."""
    if swap == -1:
        return "max"
    if limit is None or limit <= 0:
        raise SpecError(f"{WHERE}.memory.swap: on cgroup v2 needs memory.limit as well")
    return str(swap - limit)


def plan_v2(res: Resources) -> tuple[list[Write], list[str]]:
    """(writes, warnings about what v2 cannot express)."""
    out: list[Write] = []
    warnings: list[str] = []
    if res.memory_limit is not None:
        out.append(
            ("memory", "memory.max", str(res.memory_limit) if res.memory_limit > 0 else "max")
        )
    if res.memory_swap is not None:
        out.append(("memory", "memory.swap.max", swap_v2(res.memory_limit, res.memory_swap)))
    if res.memory_reservation is not None:
        value = res.memory_reservation
        out.append(("memory", "memory.low", str(value) if value > 0 else "0"))
    if res.memory_swappiness is not None:
        warnings.append("memory.swappiness is not available on cgroup v2; ignored")
    if res.disable_oom_killer:
        warnings.append("memory.disableOOMKiller is not available on cgroup v2; ignored")
    if res.cpu_shares is not None:
        out.append(("cpu", "cpu.weight", str(shares_to_weight(res.cpu_shares))))
    if res.cpu_quota is not None or res.cpu_period is not None:
        quota = "max" if res.cpu_quota is None or res.cpu_quota < 0 else str(res.cpu_quota)
        out.append(("cpu", "cpu.max", f"{quota} {res.cpu_period or DEFAULT_PERIOD}"))
    if res.cpu_cpus is not None:
        out.append(("cpuset", "cpuset.cpus", res.cpu_cpus))
    if res.cpu_mems is not None:
        out.append(("cpuset", "cpuset.mems", res.cpu_mems))
    if res.pids_limit is not None:
        out.append(("pids", "pids.max", str(res.pids_limit) if res.pids_limit > 0 else "max"))
    if res.blkio_weight is not None:
        out.append(("io", "io.weight", f"default {blkio_weight_to_io(res.blkio_weight)}"))
    names = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"}
    for kind, major, minor, rate in res.blkio_throttle:
        out.append(("io", "io.max", f"{major}:{minor} {names[kind]}={rate}"))
    return out, warnings
