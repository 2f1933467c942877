"""A small ctypes binding to libseccomp.so.2: a checked `Seccomp` -> a BPF program.

libseccomp does what runc, crun and youki use it for: resolve syscall names per arch, order
the rules, and emit the classic-BPF program. We only ask it to export that program (as bytes);
loading is seccomp(2) in the box's init (load.py), so the init needs no libseccomp after
pivot_root and libseccomp's own load-time behaviour never runs: its filter attributes
(SCMP_FLTATR_CTL_NNP, _TSYNC, _LOG, _SSB) only matter to seccomp_load, so none is set here;
the spec's `flags` go straight to seccomp(2) (load.py) and no_new_privs stays the spec's.

The library is loaded on the first compile, so a box without a filter never maps it.
Syscall names libseccomp does not know are skipped, as runc does: profiles list syscalls
newer than the library.
"""

from __future__ import annotations

import ctypes
import os

from tuibox.runtime.errors import SpecError
from tuibox.runtime.seccomp.profile import ACTIONS, ARCHES, EPERM, OPS, host_arches

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.spec_model import Seccomp, SeccompRule

LIBRARY = "libseccomp.so.2"
_NR_SCMP_ERROR = -1
_ERRNOS = {1: "EPERM", 12: "ENOMEM", 14: "EFAULT", 17: "EEXIST", 22: "EINVAL", 33: "EDOM"}


class _ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp"""

    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class _Version(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError:
            raise SpecError(
                f"linux.seccomp: {LIBRARY} is not installed (Debian: apt-get install libseccomp2)"
            ) from None
        lib.seccomp_init.argtypes = (ctypes.c_uint32,)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_release.argtypes = (ctypes.c_void_p,)
        lib.seccomp_release.restype = None
        lib.seccomp_arch_native.argtypes = ()
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
        lib.seccomp_arch_add.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = (
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        )
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
        lib.seccomp_export_bpf.restype = ctypes.c_int
        lib.seccomp_version.argtypes = ()
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        _lib = lib
    return _lib


def version() -> str:
    v = library().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def action_value(action: str, errno_ret: int | None) -> int:
    base = ACTIONS[action]
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return base | ((errno_ret if errno_ret is not None else EPERM) & 0xFFFF)
    return base


def _check(rc: int, what: str) -> None:
    if rc < 0:
        name = _ERRNOS.get(-rc, str(-rc))
        raise SpecError(f"{what}: libseccomp refuses it: {name} ({os.strerror(-rc).lower()})")


def compile_filter(seccomp: Seccomp, where: str = "linux.seccomp") -> bytes:
    """The BPF program (struct sock_filter[]) for this host; SpecError when libseccomp
    refuses a rule."""
    lib = library()
    default = action_value(seccomp.default_action, seccomp.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SpecError(f"{where}: libseccomp could not start a filter")
    try:
        for arch in host_arches(seccomp.architectures):
            token = lib.seccomp_arch_resolve_name(ARCHES[arch].encode())
            if token == 0:
                continue  # an arch this libseccomp predates
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -17:  # EEXIST: the native one, added by seccomp_init
                _check(rc, f"{where}.architectures: {arch}")
        for i, rule in enumerate(seccomp.syscalls):
            _add_rule(lib, ctx, rule, default, f"{where}.syscalls[{i}]")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: SeccompRule, default: int, field: str) -> None:
    action = action_value(rule.action, rule.errno_ret)
    if action == default:
        return  # libseccomp refuses a rule that repeats the default; it changes nothing
    cmps = [_ArgCmp(a.index, OPS[a.op], a.value, a.value_two) for a in rule.args]
    # As runc: several comparisons of one argument are alternatives (one rule each); of
    # different arguments, all must hold (one rule with every comparison).
    if len(cmps) > 1 and len({a.index for a in rule.args}) == 1:
        groups = [[c] for c in cmps]
    else:
        groups = [cmps]
    for name in rule.names:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            continue
        for group in groups:
            array = (_ArgCmp * len(group))(*group) if group else None
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
            _check(rc, f"{field}: {name}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        _check(lib.seccomp_export_bpf(ctx, fd), "linux.seccomp: export")
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        out = b""
        while len(out) < size:
            chunk = os.read(fd, size - len(out))
            if not chunk:
                break
            out += chunk
        return out
    finally:
        os.close(fd)
