"""Thin ctypes wrappers for the syscalls Python 3.11's os module lacks.

Each wrapper raises OSError with the errno and the operation's own words, so the init can
report "mount /proc: permission denied" instead of a bare errno.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

NAMESPACE_FLAGS: dict[str, int] = {
    "mount": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "time": CLONE_NEWTIME,
}
# The names under /proc/PID/ns/ differ from the spec's for two kinds.
NAMESPACE_PROC_NAMES: dict[str, str] = {
    "mount": "mnt",
    "cgroup": "cgroup",
    "uts": "uts",
    "ipc": "ipc",
    "user": "user",
    "pid": "pid",
    "network": "net",
    "time": "time",
}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine, 155)

_libc.mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
_libc.prctl.argtypes = (
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
)


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err).lower()}")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _fail(f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail(f"umount {target}")


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise _fail("unshare")


def setns(fd: int, nstype: int = 0) -> None:
    if _libc.setns(fd, nstype) != 0:
        raise _fail("setns")


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)) != 0:
        raise _fail("pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, len(raw)) != 0:
        raise _fail("sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result: int = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if result < 0:
        raise _fail(f"prctl {option}")
    return result


# ---- descriptors, dumpability, keyrings, fd-based path resolution ----------------------------

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4

CLOSE_RANGE_CLOEXEC = 4
_SYS_CLOSE_RANGE = {"x86_64": 436, "aarch64": 436, "riscv64": 436}.get(os.uname().machine, 436)
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "riscv64": 437}.get(os.uname().machine, 437)
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219}.get(os.uname().machine, 250)
KEYCTL_JOIN_SESSION_KEYRING = 1

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

_libc.syscall.restype = ctypes.c_long
_UINT_MAX = 0xFFFFFFFF


def close_range(first: int, last: int = _UINT_MAX, flags: int = 0) -> None:
    """close_range(2); `last` defaults to no upper bound at all."""
    if (
        _libc.syscall(
            _SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)
        )
        != 0
    ):
        raise _fail("close_range")


def close_fds_except(keep: set[int] | frozenset[int]) -> None:
    """Close every descriptor above 2 that is not in `keep`, with no upper bound; the kept
    ones become close-on-exec, so none of them can outlive an execve by mistake."""
    kept = sorted(fd for fd in keep if fd > 2)
    try:
        start = 3
        for fd in kept:
            if fd > start:
                close_range(start, fd - 1)
            close_range(fd, fd, CLOSE_RANGE_CLOEXEC)
            start = fd + 1
        close_range(start)
    except OSError as e:
        if e.errno not in (38, 22):  # ENOSYS, EINVAL (a kernel before 5.11 has no CLOEXEC)
            raise
        _close_by_listing(set(kept))


def _close_by_listing(kept: set[int]) -> None:
    # The fallback for kernels without close_range: whatever is open, however high.
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd in kept:
        os.set_inheritable(fd, False)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): raises OSError(ENOSYS) on a kernel without it (before 5.6)."""
    how = _OpenHow(flags, mode, resolve)
    fd: int = _libc.syscall(
        _SYS_OPENAT2,
        ctypes.c_int(dir_fd),
        os.fsencode(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        raise _fail(f"open {path}")
    return fd


def join_session_keyring(name: str | None) -> int:
    """A new session keyring for this process (a named one is joined if it already exists)."""
    serial: int = _libc.syscall(_SYS_KEYCTL, ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name))
    if serial < 0:
        if ctypes.get_errno() == 38:  # ENOSYS: a kernel without keyrings; runc goes on too
            return 0
        raise _fail("join a new session keyring")
    return serial


def set_dumpable(value: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if value else 0)


def is_dumpable() -> bool:
    return prctl(PR_GET_DUMPABLE) == 1


def set_comm(name: bytes) -> None:
    """This thread's name in /proc/PID/comm (at most 15 bytes are kept)."""
    buf = ctypes.create_string_buffer(name[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buf))


def arg_env_span() -> tuple[int, int, int, int]:
    """(arg_start, arg_end, env_start, env_end) of this process (fields 48-51 of stat)."""
    with open("/proc/self/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state): field N is fields[N - 3]
    a0, a1, e0, e1 = (int(x) for x in fields[45:49])
    return a0, a1, e0, e1


def wipe_arg_env(span: tuple[int, int, int, int], name: bytes) -> None:
    """Overwrite the memory /proc/PID/cmdline and /proc/PID/environ show with `name` and zeros.

    Those files read the process's original argv and environment strings, not os.environ:
    a forked child keeps the caller's (secrets included) until it execs."""
    a0, a1, e0, e1 = span
    if e1 > e0:
        ctypes.memset(e0, 0, e1 - e0)
    if a1 > a0:
        ctypes.memset(a0, 0, a1 - a0)
        label = name[: a1 - a0 - 1]
        ctypes.memmove(a0, label, len(label))


def fork_unexposed(label: bytes, fork: Callable[[], int] | None = None) -> int:
    """fork() a child that a box cannot inspect from its first instant.

    The child is born non-dumpable (so /proc/PID/environ, exe, fd, cwd and root are closed to
    the box even when it is born inside the box's PID namespace) and with the argv and
    environment memory that /proc/PID/cmdline and environ show blanked to `label`. The caller
    gets its own flag and memory back right after the fork. `fork` replaces os.fork (a clone
    into new namespaces, runtime/userns.py)."""
    span = arg_env_span()
    a0, a1, e0, e1 = span
    saved_args = ctypes.string_at(a0, a1 - a0) if a1 > a0 else b""
    saved_env = ctypes.string_at(e0, e1 - e0) if e1 > e0 else b""
    was_dumpable = is_dumpable()
    set_dumpable(False)
    pid = -1
    try:
        wipe_arg_env(span, label)
        pid = os.fork() if fork is None else fork()
    finally:
        if pid != 0:
            if saved_args:
                ctypes.memmove(a0, saved_args, len(saved_args))
            if saved_env:
                ctypes.memmove(e0, saved_env, len(saved_env))
            if was_dumpable:
                set_dumpable(True)
    return pid
