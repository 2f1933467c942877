"""Mounting inside the box's mount namespace: spec mounts, propagation, masking, read-only.

Every destination is opened inside the rootfs as a descriptor (`paths.ensure_at`) and the
mount goes onto that descriptor, so a symlink planted in an image, or swapped in while the box
is being set up, cannot send a mount to the host.
"""

from __future__ import annotations

import os
import stat

from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux.cgroup_mount import CgroupView
from tuibox.runtime.linux.paths import ensure_at, fd_path, open_in_root
from tuibox.runtime.spec_model import Mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# option -> (flags to set, flags to clear)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (sc.MS_RDONLY, 0),
    "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0),
    "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0),
    "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0),
    "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0),
    "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0),
    "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0),
    "atime": (0, sc.MS_NOATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0),
    "diratime": (0, sc.MS_NODIRATIME),
    "relatime": (sc.MS_RELATIME, 0),
    "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0),
    "nostrictatime": (0, sc.MS_STRICTATIME),
    "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "bind": (sc.MS_BIND, 0),
    "rbind": (sc.MS_BIND | sc.MS_REC, 0),
}

PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# Options that are neither flags nor propagation but belong to the runtime, not the kernel.
_IGNORED = frozenset({"defaults", "tmpcopyup", "copy-symlink", "z", "Z", "idmap", "ridmap"})


def parse_options(options: tuple[str, ...]) -> tuple[int, list[int], str]:
    """Split mount options into (flags, propagation flags, data string for the filesystem)."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            on, off = _FLAGS[opt]
            flags = (flags | on) & ~off
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt not in _IGNORED:
            data.append(opt)
    return flags, propagation, ",".join(data)


def is_bind(m: Mount) -> bool:
    return m.type == "bind" or any(o in ("bind", "rbind") for o in m.options)


def fresh_dev(mounts: tuple[Mount, ...]) -> bool:
    """A /dev the box mounts itself (not a bind): the init fills it with the default devices."""
    return any(m.destination.rstrip("/") == "/dev" and not is_bind(m) for m in mounts)


def mount_at(
    source: str | None, fd: int, fstype: str | None, flags: int, data: str | None, dest: str
) -> None:
    """mount(2) onto the object `fd` holds; errors name the box path, not /proc/self/fd/N."""
    try:
        sc.mount(source, fd_path(fd), fstype, flags, data)
    except OSError as e:
        raise OSError(e.errno, f"mount {dest}: {os.strerror(e.errno or 0).lower()}") from None


def _target(root_fd: int, rootfs: str, dest: str, directory: bool) -> int:
    try:
        return ensure_at(root_fd, rootfs, dest, directory)
    except OSError as e:
        raise OSError(e.errno, f"mount {dest}: {os.strerror(e.errno or 0).lower()}") from None


def _reopen(root_fd: int, rootfs: str, dest: str) -> int:
    # The descriptor a mount went onto still names what lies beneath it; changing the new
    # mount (remount flags, propagation) needs a descriptor of the new mount's root.
    return open_in_root(root_fd, rootfs, dest)


def mount_one(rootfs: str, m: Mount, bundle: str, root_fd: int) -> None:
    """Perform one spec mount under rootfs (`root_fd`: an O_PATH descriptor of rootfs)."""
    flags, propagation, data = parse_options(m.options)
    dest = m.destination
    if is_bind(m):
        source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
        try:
            st = os.stat(source)
        except OSError as e:
            raise OSError(
                e.errno,
                f"mount {m.destination}: bind source {source}: {os.strerror(e.errno or 0).lower()}",
            ) from None
        fd = _target(root_fd, rootfs, dest, stat.S_ISDIR(st.st_mode))
        try:
            mount_at(source, fd, None, sc.MS_BIND | (flags & sc.MS_REC), None, dest)
        finally:
            os.close(fd)
        # A bind mount ignores most flags on the first call; they take effect on a remount.
        remount = flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        if remount:
            fd = _reopen(root_fd, rootfs, dest)
            try:
                mount_at(None, fd, None, sc.MS_BIND | sc.MS_REMOUNT | remount, None, dest)
            finally:
                os.close(fd)
    else:
        fd = _target(root_fd, rootfs, dest, True)
        fstype = m.type or "none"
        try:
            mount_at(m.source or fstype, fd, fstype, flags, data or None, dest)
        except OSError as e:
            if fstype == "sysfs" and e.errno == 1:
                # Without a private network namespace the kernel refuses a new sysfs:
                # show the host's, read-only, as runc does.
                mount_at("/sys", fd, None, sc.MS_BIND | sc.MS_REC, None, dest)
                ro = _reopen(root_fd, rootfs, dest)
                try:
                    mount_at(None, ro, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY, None, dest)
                finally:
                    os.close(ro)
            elif fstype == "mqueue" and e.errno == 1:
                mount_at("/dev/mqueue", fd, None, sc.MS_BIND, None, dest)
            else:
                raise
        finally:
            os.close(fd)
    if propagation:
        _propagate(root_fd, rootfs, dest, propagation)


def mount_cgroup(
    m: Mount, root_fd: int, rootfs: str, view: CgroupView, own_namespace: bool
) -> None:
    """A `type: cgroup` entry (cgroup_mount.py says what the box sees, and why)."""
    flags, propagation, _ = parse_options(m.options)
    flags &= ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    dest = m.destination
    fd = _target(root_fd, rootfs, dest, True)
    try:
        if view.v2_dir is not None:
            if own_namespace:
                # Inside the box's cgroup namespace: the new mount's root is the box's cgroup.
                mount_at("cgroup2", fd, "cgroup2", flags, None, dest)
            else:
                _bind_with_flags(
                    view.v2_dir, fd, flags, dest, lambda: _reopen(root_fd, rootfs, dest)
                )
        else:
            # runc's flags for the tmpfs: rw, so that it stays a plain directory of views.
            mount_at(
                "tmpfs", fd, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755", dest
            )
    finally:
        os.close(fd)
    if view.v2_dir is None:
        top = _reopen(root_fd, rootfs, dest)
        try:
            for name, host_dir, links in view.binds:
                _cgroup_dir(top, name, host_dir, flags, f"{dest.rstrip('/')}/{name}")
                for link in links:
                    os.symlink(name, link, dir_fd=top)
        finally:
            os.close(top)
    if propagation:
        _propagate(root_fd, rootfs, dest, propagation)


def _propagate(root_fd: int, rootfs: str, dest: str, propagation: list[int]) -> None:
    fd = _reopen(root_fd, rootfs, dest)
    try:
        for p in propagation:
            mount_at(None, fd, None, p, None, dest)
    finally:
        os.close(fd)


def _cgroup_dir(top: int, name: str, host_dir: str, flags: int, dest: str) -> None:
    os.mkdir(name, 0o755, dir_fd=top)
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)
    try:

        def reopen() -> int:
            return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=top)

        _bind_with_flags(host_dir, fd, flags, dest, reopen)
    finally:
        os.close(fd)


def _bind_with_flags(
    source: str, fd: int, flags: int, dest: str, reopen: Callable[[], int]
) -> None:
    mount_at(source, fd, None, sc.MS_BIND | sc.MS_REC, None, dest)
    if flags:
        again = reopen()
        try:
            mount_at(None, again, None, sc.MS_BIND | sc.MS_REMOUNT | flags, None, dest)
        finally:
            os.close(again)


def mask_path(root_fd: int, rootfs: str, path: str) -> None:
    """Hide a path in the box: an empty read-only tmpfs over a directory, /dev/null over a file."""
    try:
        fd = open_in_root(root_fd, rootfs, path)
    except OSError:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            mount_at("tmpfs", fd, "tmpfs", sc.MS_RDONLY, None, path)
        else:
            null = _box_null(root_fd, rootfs)
            try:
                mount_at(
                    "/dev/null" if null < 0 else fd_path(null), fd, None, sc.MS_BIND, None, path
                )
            finally:
                if null >= 0:
                    os.close(null)
    finally:
        os.close(fd)


def _box_null(root_fd: int, rootfs: str) -> int:
    """The box's own /dev/null when it has one (runc binds that one): the host's would show
    the box the host's devtmpfs and its size in mountinfo. -1: use the host's."""
    try:
        fd = open_in_root(root_fd, rootfs, "/dev/null")
    except OSError:
        return -1
    st = os.fstat(fd)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
        return fd
    os.close(fd)
    return -1


def readonly_path(root_fd: int, rootfs: str, path: str) -> None:
    try:
        fd = open_in_root(root_fd, rootfs, path)
    except OSError:
        return
    try:
        mount_at(fd_path(fd), fd, None, sc.MS_BIND | sc.MS_REC, None, path)
    finally:
        os.close(fd)
    fd = _reopen(root_fd, rootfs, path)
    try:
        remount_readonly(fd_path(fd))
    finally:
        os.close(fd)


_STATVFS_FLAGS = (
    (os.ST_NOSUID, sc.MS_NOSUID),
    (os.ST_NODEV, sc.MS_NODEV),
    (os.ST_NOEXEC, sc.MS_NOEXEC),
    (os.ST_NOATIME, sc.MS_NOATIME),
    (os.ST_NODIRATIME, sc.MS_NODIRATIME),
    (os.ST_RELATIME, sc.MS_RELATIME),
)


def remount_readonly(path: str) -> None:
    """Remount a bind mount read-only, keeping the flags it already has (the kernel insists)."""
    current = os.statvfs(path).f_flag
    keep = 0
    for st_flag, ms_flag in _STATVFS_FLAGS:
        if current & st_flag:
            keep |= ms_flag
    sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | keep, None)
