"""Capabilities: names to bits, the five sets a box process gets, and applying them (ctypes).

A box process ends up with exactly the sets the spec asks for (or `defaults.CAPABILITIES` for
all but ambient). The order matters and follows runc:

1. before the uid changes: drop what is not in the bounding set (needs CAP_SETPCAP, which we
   still have) and set PR_SET_KEEPCAPS, or setuid() to a non-zero uid would clear permitted;
2. setgroups/setgid/setuid (the init's `user` step);
3. capset(effective, permitted, inheritable), then raise ambient.

Everything here is imported before the fork and uses only ctypes and os: it runs after
pivot_root, where the host's Python library is gone.
"""

from __future__ import annotations

import ctypes
import os

from tuibox.runtime.defaults import CAPABILITY_NAMES
from tuibox.runtime.errors import SpecError
from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.spec_model import Capabilities

_libc = ctypes.CDLL(None, use_errno=True)

NAMES = CAPABILITY_NAMES  # by bit number
BITS: dict[str, int] = {name: bit for bit, name in enumerate(NAMES)}

SET_NAMES = ("bounding", "effective", "permitted", "inheritable", "ambient")

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91}.get(os.uname().machine, 126)


class CapSets(Plain):
    """The five sets as bit masks, plus the highest capability this kernel knows."""

    __slots__ = ("ambient", "bounding", "effective", "inheritable", "last_cap", "permitted")

    def __init__(
        self,
        bounding: int,
        effective: int,
        permitted: int,
        inheritable: int,
        ambient: int,
        last_cap: int,
    ) -> None:
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient
        self.last_cap = last_cap

    def to_json(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in (*SET_NAMES, "last_cap")}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> CapSets:
        return cls(*(int(data[name]) for name in (*SET_NAMES, "last_cap")))


def mask(names: tuple[str, ...] | list[str], where: str = "capabilities") -> int:
    """Names (with or without the CAP_ prefix, any case) to a bit mask; unknown ones raise."""
    bits = 0
    unknown = []
    for raw in names:
        name = raw.upper()
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        bit = BITS.get(name)
        if bit is None:
            unknown.append(raw)
        else:
            bits |= 1 << bit
    if unknown:
        plural = "y" if len(unknown) == 1 else "ies"
        raise SpecError(f"{where}: unknown capabilit{plural}: " + ", ".join(unknown))
    return bits


def names(bits: int) -> list[str]:
    return [name for bit, name in enumerate(NAMES) if bits >> bit & 1]


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def resolve(caps: Capabilities | None, defaults: tuple[str, ...]) -> CapSets:
    """The spec's sets, or `defaults` for every set but ambient (as docker and podman do)."""
    top = last_cap()
    if caps is None:
        d = mask(defaults, "default capabilities")
        return CapSets(d, d, d, d, 0, top)
    where = "config.json: process.capabilities"
    b, e, p, i, a = (mask(getattr(caps, s), f"{where}.{s}") for s in SET_NAMES)
    # The kernel keeps ambient a subset of permitted and inheritable: raising any other
    # capability is EPERM, and runc only warns about it. `runc spec` itself lists ambient
    # capabilities with an empty inheritable set, so those are left out, not refused.
    return CapSets(b, e, p, i, a & p & i, top)


def current(pid: int | str = "self") -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of a process, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                out[key] = int(value.strip(), 16)
    return out


def unavailable(sets: CapSets) -> list[str]:
    """Capabilities asked for that this process cannot hand on (e.g. CAP_SYS_RESOURCE here).

    Checked by the parent before the fork: the child would only meet a bare EPERM."""
    have = current()
    own = have.get("CapBnd", 0) & have.get("CapPrm", 0)
    wanted = sets.bounding | sets.effective | sets.permitted | sets.inheritable | sets.ambient
    return names(wanted & ~own)


def inconsistent(sets: CapSets) -> str | None:
    """The kernel's own rules, as one message, before they become EPERM in the child."""
    if sets.effective & ~sets.permitted:
        return "effective has capabilities not in permitted: " + ", ".join(
            names(sets.effective & ~sets.permitted)
        )
    return None


# ---- applying them (in the child) --------------------------------------------------------------


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err).lower()}")


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), 0, 0) != 0:
        raise _fail(f"prctl {option}")


class _Header(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _Data(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.syscall(_SYS_CAPSET, ctypes.byref(header), data) != 0:
        raise _fail("capset")


def drop_bounding(sets: CapSets) -> None:
    for bit in range(sets.last_cap + 1):
        if not sets.bounding >> bit & 1:
            try:
                _prctl(PR_CAPBSET_DROP, bit)
            except OSError as e:
                if e.errno != 22:  # EINVAL: a capability this kernel does not have
                    name = NAMES[bit] if bit < len(NAMES) else str(bit)
                    why = f"drop {name} from the bounding set: {e.strerror}"
                    raise OSError(e.errno, why) from None
    # Keep permitted across setuid() to a non-root uid; the effective set is restored below.
    _prctl(PR_SET_KEEPCAPS, 1)


def apply_sets(sets: CapSets) -> None:
    try:
        capset(sets.effective, sets.permitted, sets.inheritable)
    except OSError as e:
        raise OSError(e.errno, f"set capabilities: {e.strerror}") from None
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for bit in range(sets.last_cap + 1):
        if sets.ambient >> bit & 1:
            _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, bit)
