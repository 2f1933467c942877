"""User namespaces: the kernel side (clone, id maps, namespace types, idmapped mounts).

Loaded only for boxes that have a user namespace or join a namespace by path: `tuibox run`
without either never imports it. C modules and our own lean ones only (it runs in the init
before pivot_root too).

Why clone and not unshare + fork: the box's pid namespace must be owned by its user
namespace (or the init cannot mount /proc), so whoever creates the pid namespace must be in
the user namespace already. unshare(CLONE_NEWUSER) in the CLI would be irreversible, and a
helper's /proc/PID/ns/pid_for_children only exists once the namespace has a pid 1. A raw
clone(CLONE_NEWUSER | CLONE_NEWPID) gives exactly what we want: the child is pid 1 of a pid
namespace its user namespace owns, and it is still our child (crun does the same). The CLI
is single-threaded, which is what makes a clone that bypasses glibc's fork safe here.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

from tuibox.runtime.linux import syscalls as sc

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

_MACHINE = os.uname().machine
_GENERIC = _MACHINE != "x86_64"  # aarch64 and riscv64 share the generic syscall table
SYS_CLONE = 220 if _GENERIC else 56
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_MOUNT_SETATTR = 442

SIGCHLD = 17
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 3); 0xb701 is NS_GET_USERNS, which returns an fd

# Kernel limit on the lines of one uid_map / gid_map (since Linux 4.15).
MAX_MAP_LINES = 340


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")
    return result


# ---- namespace types ---------------------------------------------------------------------------


def namespace_type(fd: int) -> int:
    """The CLONE_NEW* flag of the namespace an fd refers to (ENOTTY: not a namespace)."""
    return int(fcntl.ioctl(fd, NS_GET_NSTYPE))


def check_namespace_path(kind: str, path: str) -> None:
    """Raise OSError with a one-line reason unless `path` is a namespace of type `kind`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(e.errno, f"{path}: {os.strerror(e.errno or 0).lower()}") from None
    try:
        try:
            found = namespace_type(fd)
        except OSError:
            raise OSError(errno.EINVAL, f"{path} is not a namespace") from None
    finally:
        os.close(fd)
    want = sc.NAMESPACE_FLAGS[kind]
    if found != want:
        names = {flag: name for name, flag in sc.NAMESPACE_FLAGS.items()}
        raise OSError(
            errno.EINVAL,
            f"{path} is a {names.get(found, 'unknown')} namespace, not a {kind} namespace",
        )


# ---- id maps -----------------------------------------------------------------------------------


def map_text(mappings: tuple[tuple[int, int, int], ...]) -> str:
    """uid_map / gid_map contents from (containerID, hostID, size) triples."""
    return "".join(f"{inside} {outside} {size}\n" for inside, outside, size in mappings)


def write_maps(pid: int, uid_map: str, gid_map: str) -> None:
    """Write a child's maps from the parent user namespace (host root: setgroups stays allowed)."""
    for name, text in (("uid_map", uid_map), ("gid_map", gid_map)):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            # One write: the kernel takes a map only whole, in a single write call.
            os.write(fd, text.encode())
        except OSError as e:
            what = "uidMappings" if name == "uid_map" else "gidMappings"
            raise OSError(
                e.errno, f"linux.{what}: the kernel refused the mapping: {e.strerror}"
            ) from None
        finally:
            os.close(fd)


def clone(flags: int) -> int:
    """fork() with namespace flags (the child returns 0). Single-threaded callers only."""
    null = ctypes.c_void_p(0)
    pid = _libc.syscall(SYS_CLONE, ctypes.c_ulong(flags | SIGCHLD), null, null, null, null)
    return _check(int(pid), "clone")


def probe_userns(uid_map: str, gid_map: str) -> int:
    """An O_RDONLY fd of a fresh user namespace with these maps (the kernel checks them).

    A short-lived child unshares a user namespace and waits; we write its maps, open its
    namespace and let it go. The namespace lives on through the fd: idmapped mounts take
    it, and a mapping the kernel refuses is caught here, in the CLI, before any box exists.
    """
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the short-lived helper
        code = 1
        try:
            os.close(go_w)
            os.close(ready_r)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(ready_w)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.EPERM, "cannot create a user namespace on this host")
        write_maps(pid, uid_map, gid_map)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


# ---- idmapped mounts (the new mount API) -------------------------------------------------------


def idmapped_tree(path: str, userns_fd: int, recursive: bool) -> int:
    """A detached copy of the mount tree at `path` whose files appear shifted by the userns."""
    rec = AT_RECURSIVE if recursive else 0
    fd = _check(
        int(
            _libc.syscall(
                SYS_OPEN_TREE,
                AT_FDCWD,
                os.fsencode(path),
                ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | rec),
            )
        ),
        f"open_tree {path}",
    )
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    try:
        _check(
            int(
                _libc.syscall(
                    SYS_MOUNT_SETATTR,
                    fd,
                    b"",
                    ctypes.c_uint(AT_EMPTY_PATH | rec),
                    ctypes.byref(attr),
                    ctypes.c_size_t(ctypes.sizeof(attr)),
                )
            ),
            f"idmapped mount of {path}",
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


def overlay_mount(lowers: list[str], upper: str, work: str) -> int:
    """A detached overlay, made with our (host root) creds: the box's root never has to
    reach the state dir's upper and work by path. `lowers` top first; several are given one
    by one (`lowerdir+`, Linux 6.8): fsconfig takes strings of at most 256 bytes."""
    fs = _check(int(_libc.syscall(SYS_FSOPEN, b"overlay", ctypes.c_uint(FSOPEN_CLOEXEC))), "fsopen")
    try:
        lower_key = "lowerdir" if len(lowers) == 1 else "lowerdir+"
        for key, value in (
            *((lower_key, lower) for lower in lowers),
            ("upperdir", upper),
            ("workdir", work),
        ):
            _check(
                int(
                    _libc.syscall(
                        SYS_FSCONFIG,
                        fs,
                        ctypes.c_uint(FSCONFIG_SET_STRING),
                        key.encode(),
                        os.fsencode(value),
                        ctypes.c_int(0),
                    )
                ),
                f"overlay {key}",
            )
        null = ctypes.c_void_p(0)
        _check(
            int(
                _libc.syscall(
                    SYS_FSCONFIG,
                    fs,
                    ctypes.c_uint(FSCONFIG_CMD_CREATE),
                    null,
                    null,
                    ctypes.c_int(0),
                )
            ),
            "overlay",
        )
        return _check(
            int(_libc.syscall(SYS_FSMOUNT, fs, ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(0))),
            "fsmount overlay",
        )
    finally:
        os.close(fs)


def clone_tree(path: str, recursive: bool = True) -> int:
    """A detached bind of `path` (as `mount --rbind`, not yet attached anywhere)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _check(
        int(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(path), ctypes.c_uint(flags))),
        f"open_tree {path}",
    )


def attach(mount_fd: int, target: str, target_fd: int = AT_FDCWD) -> None:
    """Attach a detached mount at `target` (relative to our cwd) in our mount namespace, or,
    with `target` empty, onto the object `target_fd` holds.

    A detached mount may be attached in another mount namespace, a bind of a host path
    may not: so whatever the box's root may not reach by path comes as one of these."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | (0 if target else MOVE_MOUNT_T_EMPTY_PATH)
    _check(
        int(
            _libc.syscall(
                SYS_MOVE_MOUNT,
                mount_fd,
                b"",
                target_fd,
                os.fsencode(target),
                ctypes.c_uint(flags),
            )
        ),
        f"mount {target or f'fd {target_fd}'}",
    )
