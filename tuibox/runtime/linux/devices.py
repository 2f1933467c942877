"""Device nodes in the box's /dev: mknod, then check what the kernel made, then chmod."""

from __future__ import annotations

import errno
import os
import stat

from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux.paths import ensure_mountpoint, make_parents
from tuibox.runtime.spec_model import Device

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_device(rootfs: str, dev: Device) -> None:
    path = make_parents(rootfs, dev.path)
    kind = _TYPES[dev.type]
    rdev = os.makedev(dev.major, dev.minor) if kind != stat.S_IFIFO else 0
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    if os.path.lexists(path):
        os.unlink(path)
    try:
        os.mknod(path, kind | (mode & 0o7777), rdev)
    except PermissionError:
        # mknod is refused in some sandboxes: bind the host's node instead, as runc does.
        ensure_mountpoint(rootfs, dev.path, False)
        sc.mount(dev.path, path, None, sc.MS_BIND, None)
        return
    st = os.lstat(path)
    if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != rdev):
        raise OSError(errno.EIO, f"device {dev.path}: the kernel made a different node")
    # mknod is subject to the umask; the spec's mode is not.
    os.chmod(path, mode & 0o7777)
    if dev.uid is not None or dev.gid is not None:
        os.chown(
            path, dev.uid if dev.uid is not None else -1, dev.gid if dev.gid is not None else -1
        )


def create_symlinks(rootfs: str, links: tuple[tuple[str, str], ...]) -> None:
    for link, target in links:
        path = make_parents(rootfs, link)
        if os.path.lexists(path):
            continue
        os.symlink(target, path)
