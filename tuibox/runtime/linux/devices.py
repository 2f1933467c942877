"""Device nodes in the box's /dev: mknod, then check what the kernel made, then chmod.

Every node is made relative to a descriptor of its parent directory, opened inside the rootfs
(`paths.ensure_at`): a symlink swapped into the path cannot make it land on the host.
"""

from __future__ import annotations

import errno
import os
import stat

from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux.mounts import mount_at
from tuibox.runtime.linux.paths import ensure_at, fd_path
from tuibox.runtime.spec_model import Device

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _split(path: str) -> tuple[str, str]:
    return os.path.split(os.path.normpath("/" + path))


def create_device(rootfs: str, dev: Device, root_fd: int) -> None:
    parent, base = _split(dev.path)
    kind = _TYPES[dev.type]
    rdev = os.makedev(dev.major, dev.minor) if kind != stat.S_IFIFO else 0
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    pfd = ensure_at(root_fd, rootfs, parent, True)
    try:
        try:
            os.unlink(base, dir_fd=pfd)
        except FileNotFoundError:
            pass
        try:
            os.mknod(base, kind | (mode & 0o7777), rdev, dir_fd=pfd)
        except PermissionError:
            # mknod is refused in some sandboxes: bind the host's node instead, as runc does.
            fd = ensure_at(root_fd, rootfs, dev.path, False)
            try:
                mount_at(dev.path, fd, None, sc.MS_BIND, None, dev.path)
            finally:
                os.close(fd)
            return
        node = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    finally:
        os.close(pfd)
    try:
        st = os.fstat(node)
        if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != rdev):
            raise OSError(errno.EIO, f"device {dev.path}: the kernel made a different node")
        # mknod is subject to the umask; the spec's mode is not. Through the descriptor: the
        # very node just checked.
        os.chmod(fd_path(node), mode & 0o7777)
        if dev.uid is not None or dev.gid is not None:
            os.chown(
                fd_path(node),
                dev.uid if dev.uid is not None else -1,
                dev.gid if dev.gid is not None else -1,
            )
    finally:
        os.close(node)


def create_symlinks(rootfs: str, links: tuple[tuple[str, str], ...], root_fd: int) -> None:
    for link, target in links:
        parent, base = _split(link)
        pfd = ensure_at(root_fd, rootfs, parent, True)
        try:
            os.symlink(target, base, dir_fd=pfd)
        except FileExistsError:
            pass
        finally:
            os.close(pfd)
