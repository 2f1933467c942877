"""Seccomp profiles as data: the spec's `linux.seccomp`, docker-style files, the default.

`parse` checks the spec's object (runtime-spec 1.x) field by field and builds a
`spec_model.Seccomp`; its errors name the field (`linux.seccomp.syscalls[3].action: ...`).
SCMP_ACT_NOTIFY needs a seccomp agent at `listenerPath`: the box's init (and each exec)
sends it the notification fd as the spec says (stage.py, load.py).

Docker's profile format (`archMap`, `includes`/`excludes` by capability, arch and kernel,
the one-name `name`) is turned into the spec's form for one box by `to_spec_form`: that is
how the default profile (default.json, docker's allowlist) and `--security-opt seccomp=FILE`
become a box's `linux.seccomp`, resolved for its capability set and this host's architecture.

On `run --image`'s start-up path: no json, re or typing at run time.
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime.spec import _abs_path, _Invalid, _list, _obj, _str, _str_list, _uint
from tuibox.runtime.spec_model import Seccomp, SeccompArg, SeccompRule

# What a bad profile raises (field, problem), public for seccomp/choice.py.
Invalid = _Invalid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "default.json")

# Action -> libseccomp's SCMP_ACT_* value (seccomp.h); ERRNO and TRACE take 16 bits of data.
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,  # the thread, as libseccomp's SCMP_ACT_KILL
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
_WITH_DATA = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
EPERM = 1

# The spec's architecture names -> libseccomp's.
ARCHES: dict[str, str] = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k",
    "SCMP_ARCH_SH": "sh",
    "SCMP_ARCH_SHEB": "sheb",
}

# uname -m -> (the spec's name of the native arch, the arches whose code this kernel also
# runs). A filter holds only these: the kernel never reports another arch here, and
# libseccomp refuses to mix endiannesses (a ppc entry would break an x86_64 filter).
_MACHINES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "x86_64": ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32"), "amd64"),
    "i686": ("SCMP_ARCH_X86", (), "386"),
    "aarch64": ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",), "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", (), "arm"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", (), "ppc64le"),
    "ppc64": ("SCMP_ARCH_PPC64", ("SCMP_ARCH_PPC",), "ppc64"),
    "s390x": ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",), "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", (), "riscv64"),
    "mips64": ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"), "mips64"),
    "loongarch64": ("SCMP_ARCH_LOONGARCH64", (), "loong64"),
}

# The comparison operators -> libseccomp's enum scmp_compare.
OPS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# The spec's flags -> seccomp(2)'s SECCOMP_FILTER_FLAG_* bits.
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
NEW_LISTENER = 8
_TSYNC_ESRCH = 16  # with TSYNC, the kernel takes NEW_LISTENER only with this one too
# The init sends the agent its fd with sendmsg once the filter is on: notifying those
# calls would wait for an agent that has nothing to answer with yet.
_NOT_NOTIFIABLE = frozenset({"sendmsg", "socketcall"})

_U64 = 2**64 - 1
_DATA_MAX = 0xFFFF  # SECCOMP_RET_DATA
_KEYS = frozenset(
    {
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    }
)
_RULE_KEYS = frozenset({"names", "action", "errnoRet", "args"})
_ARG_KEYS = frozenset({"index", "value", "valueTwo", "op"})


def machine() -> str:
    return os.uname().machine


def native_arch(host: str | None = None) -> str:
    """The spec's name of this host's arch (SCMP_ARCH_X86_64 here)."""
    entry = _MACHINES.get(host or machine())
    return entry[0] if entry is not None else ""


def host_arches(listed: Iterable[str], host: str | None = None) -> list[str]:
    """The arches a filter for this host holds: native first, then listed ones it can run."""
    entry = _MACHINES.get(host or machine())
    if entry is None:
        return []
    native, compat, _ = entry
    return [native, *(a for a in dict.fromkeys(listed) if a in compat)]


def flag_bits(seccomp: Seccomp) -> int:
    bits = 0
    for flag in seccomp.flags:
        bits |= FLAGS[flag]
    if seccomp.notifies():
        bits |= NEW_LISTENER
        if bits & FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
            bits |= _TSYNC_ESRCH
    else:
        # only means something to a listener; the kernel refuses it without one
        bits &= ~FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    return bits


# ---- the spec's object ----------------------------------------------------------------------


def parse(value: object, where: str = "linux.seccomp") -> tuple[Seccomp, list[str]]:
    """(checked profile, dotted names of keys the spec does not define) or _Invalid.

    `where` prefixes every field named in an error; "" for a profile file of its own."""
    obj = _obj(value, where)
    # `prefix.` before each key; nothing before the keys of a file's top level.
    top = where + "." if where else ""
    unknown = [f"{top}{k}" for k in obj if k not in _KEYS]
    if "defaultAction" not in obj:
        raise _Invalid(f"{top}defaultAction", "is required")
    default = _action(obj["defaultAction"], f"{top}defaultAction")
    if default == "SCMP_ACT_NOTIFY":
        # it would ask the agent about every call, the init's own sendmsg of its fd included
        raise _Invalid(f"{top}defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    default_errno = _errno_ret(obj, "defaultErrnoRet", default, top)
    arches: tuple[str, ...] = ()
    if obj.get("architectures") is not None:
        arches = _str_list(obj["architectures"], f"{top}architectures")
        for i, arch in enumerate(arches):
            if arch not in ARCHES:
                raise _Invalid(f"{top}architectures[{i}]", f"unknown architecture {arch!r}")
    flags: tuple[str, ...] = ()
    if obj.get("flags") is not None:
        flags = _str_list(obj["flags"], f"{top}flags")
        for i, flag in enumerate(flags):
            if flag not in FLAGS:
                raise _Invalid(f"{top}flags[{i}]", f"{flag!r} is not one of {', '.join(FLAGS)}")
    listener = None
    if obj.get("listenerPath") not in (None, ""):
        listener = _abs_path(obj["listenerPath"], f"{top}listenerPath")
    metadata = ""
    if obj.get("listenerMetadata") is not None:
        metadata = _str(obj["listenerMetadata"], f"{top}listenerMetadata")
    rules: list[SeccompRule] = []
    if obj.get("syscalls") is not None:
        for i, item in enumerate(_list(obj["syscalls"], f"{top}syscalls", "objects")):
            rule = _rule(item, f"{top}syscalls[{i}]", unknown, top)
            if rule.action == "SCMP_ACT_NOTIFY":
                if listener is None:
                    raise _Invalid(
                        f"{top}syscalls[{i}].action",
                        f"SCMP_ACT_NOTIFY needs {top}listenerPath (the seccomp agent's socket)",
                    )
                bad = _NOT_NOTIFIABLE.intersection(rule.names)
                if bad:
                    raise _Invalid(
                        f"{top}syscalls[{i}].action",
                        f"SCMP_ACT_NOTIFY cannot be used for {min(bad)}: tuibox hands the "
                        "agent its fd with it",
                    )
            rules.append(rule)
    seccomp = Seccomp(
        default_action=default,
        default_errno_ret=default_errno,
        architectures=arches,
        flags=flags,
        syscalls=tuple(rules),
        listener_path=listener,
        listener_metadata=metadata,
    )
    return seccomp, unknown


def _action(value: object, field: str) -> str:
    action = _str(value, field)
    if action not in ACTIONS:
        raise _Invalid(field, f"unknown action {action!r}")
    return action


def _errno_ret(obj: dict[str, object], key: str, action: str, top: str) -> int | None:
    if obj.get(key) is None:
        return None
    value = _uint(obj[key], f"{top}{key}", _DATA_MAX)
    if action not in _WITH_DATA:
        raise _Invalid(
            f"{top}{key}", f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take it, not {action}"
        )
    return value


def _rule(item: object, field: str, unknown: list[str], top: str) -> SeccompRule:
    obj = _obj(item, field)
    unknown.extend(f"{top}syscalls.{k}" for k in obj if k not in _RULE_KEYS)
    if "names" not in obj:
        raise _Invalid(f"{field}.names", "is required")
    names = _str_list(obj["names"], f"{field}.names")
    if not names:
        raise _Invalid(f"{field}.names", "must not be empty")
    for j, name in enumerate(names):
        if not name:
            raise _Invalid(f"{field}.names[{j}]", "must not be empty")
    if "action" not in obj:
        raise _Invalid(f"{field}.action", "is required")
    action = _action(obj["action"], f"{field}.action")
    errno_ret = _errno_ret(obj, "errnoRet", action, field + ".")
    args: list[SeccompArg] = []
    if obj.get("args") is not None:
        for j, raw in enumerate(_list(obj["args"], f"{field}.args", "objects")):
            at = f"{field}.args[{j}]"
            arg = _obj(raw, at)
            unknown.extend(f"{top}syscalls.args.{k}" for k in arg if k not in _ARG_KEYS)
            for key in ("index", "value", "op"):
                if key not in arg:
                    raise _Invalid(f"{at}.{key}", "is required")
            op = _str(arg["op"], f"{at}.op")
            if op not in OPS:
                raise _Invalid(f"{at}.op", f"{op!r} is not one of {', '.join(OPS)}")
            two = arg.get("valueTwo")
            args.append(
                SeccompArg(
                    index=_uint(arg["index"], f"{at}.index", 5),
                    value=_uint(arg["value"], f"{at}.value", _U64),
                    value_two=_uint(two, f"{at}.valueTwo", _U64) if two is not None else 0,
                    op=op,
                )
            )
    return SeccompRule(names=names, action=action, errno_ret=errno_ret, args=tuple(args))


# ---- docker's format ------------------------------------------------------------------------


def to_spec_form(
    data: object, caps: Iterable[str], host: str | None = None, kernel: str | None = None
) -> dict[str, Any]:
    """A docker-style (or already spec-style) profile -> the spec's `linux.seccomp` object
    for a box with capabilities `caps` on this host: docker's own resolution rules."""
    obj = _obj(data, "")
    have = frozenset(caps)
    entry = _MACHINES.get(host or machine())
    goarch = entry[2] if entry is not None else ""
    release = _kernel_version(kernel if kernel is not None else os.uname().release)
    out: dict[str, Any] = {
        k: v for k, v in obj.items() if k not in ("archMap", "comment", "syscalls")
    }
    if obj.get("archMap") is not None and not obj.get("architectures"):
        native = native_arch(host)
        for i, item in enumerate(_list(obj["archMap"], "archMap", "objects")):
            arch = _obj(item, f"archMap[{i}]")
            if arch.get("architecture") == native:
                subs = arch.get("subArchitectures")
                field = f"archMap[{i}].subArchitectures"
                out["architectures"] = [native, *(_str_list(subs, field) if subs else ())]
    if obj.get("syscalls") is None:
        return out
    calls: list[dict[str, Any]] = []
    for i, item in enumerate(_list(obj["syscalls"], "syscalls", "objects")):
        field = f"syscalls[{i}]"
        call = _obj(item, field)
        if not _applies(call, field, have, goarch, release):
            continue
        rule = {
            k: v for k, v in call.items() if k not in ("comment", "includes", "excludes", "name")
        }
        if call.get("name") is not None and call.get("names") is None:
            rule["names"] = [_str(call["name"], f"{field}.name")]
        calls.append(rule)
    out["syscalls"] = calls
    return out


def _applies(
    call: dict[str, object], field: str, caps: frozenset[str], goarch: str, release: tuple[int, ...]
) -> bool:
    inc = _obj(call["includes"], f"{field}.includes") if call.get("includes") is not None else {}
    exc = _obj(call["excludes"], f"{field}.excludes") if call.get("excludes") is not None else {}
    if inc.get("arches") and goarch not in _str_list(inc["arches"], f"{field}.includes.arches"):
        return False
    if inc.get("caps") and not caps.issuperset(_str_list(inc["caps"], f"{field}.includes.caps")):
        return False
    if inc.get("minKernel"):
        wanted = _str(inc["minKernel"], f"{field}.includes.minKernel")
        if release < _kernel_version(wanted):
            return False
    if exc.get("arches") and goarch in _str_list(exc["arches"], f"{field}.excludes.arches"):
        return False
    return not (
        exc.get("caps") and caps.intersection(_str_list(exc["caps"], f"{field}.excludes.caps"))
    )


def _kernel_version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split("-")[0].split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def read_profile(path: str) -> object:
    """Decoded JSON of a profile file; _Invalid("", ...) with the reason when unreadable."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise _Invalid("", f"cannot read {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        return fastjson.loads(raw.decode())
    except UnicodeDecodeError as e:
        raise _Invalid("", f"not valid UTF-8 (byte {e.start})") from None
    except ValueError as e:
        line, col, msg = getattr(e, "lineno", 0), getattr(e, "colno", 0), getattr(e, "msg", e)
        raise _Invalid("", f"invalid JSON at line {line} column {col}: {msg}") from None
    except RecursionError:
        raise _Invalid("", "invalid JSON: nested too deeply") from None


def default_profile(caps: Iterable[str]) -> dict[str, Any]:
    """The default profile in the spec's form, for a box with capabilities `caps`."""
    return to_spec_form(read_profile(DEFAULT_PROFILE), caps)
