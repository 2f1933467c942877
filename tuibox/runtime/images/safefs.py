"""Writing a tree under a root without ever following a symlink.

An archive can plant `evil -> /etc` and then write `evil/passwd`. Checking names up front is
not enough, because the symlink only exists once an earlier member is written. So every path
is walked one component at a time from a directory fd, each open with O_NOFOLLOW: a symlink or
a file where a directory is expected stops the walk with an error naming the member, and the
final component is created relative to its parent's fd (O_EXCL for files, *at() calls for the
rest). Nothing here resolves a path string through the host's namespace.
"""

from __future__ import annotations

import errno
import os
import stat

from tuibox.runtime.errors import ImageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    Parts = tuple[str, ...]

    class Readable(Protocol):
        def read(self, size: int = -1, /) -> bytes: ...


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1 << 20
OPAQUE_XATTR = "trusted.overlay.opaque"


def show(parts: Parts) -> str:
    return "/".join(parts) or "."


class RootWriter:
    """Creates entries under `root`, given as tuples of path components already checked to
    hold no '', '.' or '..'. Directory mtimes are set by `finish`, after their contents."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, DIR_FLAGS)
        # Without root, ownership cannot be kept; GNU tar does the same as a normal user.
        self.chown = os.geteuid() == 0
        self._cached: Parts | None = None
        self._cached_fd = -1
        self._dir_times: dict[Parts, int] = {}

    def close(self) -> None:
        self._forget()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def __enter__(self) -> RootWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking ---------------------------------------------------------------------------

    def _forget(self) -> None:
        # Any removal may detach the cached directory from the tree; reopen from the root.
        if self._cached_fd >= 0:
            os.close(self._cached_fd)
        self._cached, self._cached_fd = None, -1

    def open_dir(self, parts: Parts, create: bool, member: Parts | None = None) -> int:
        """A new fd of directory `parts`, creating missing components (0755) when asked."""
        fd = os.dup(self.root_fd)
        for i, part in enumerate(parts):
            try:
                try:
                    nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o700, dir_fd=fd)
                    nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
                    os.fchmod(nfd, 0o755)  # explicit: the umask must not decide
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise self._not_a_dir(parts[: i + 1], member or parts) from None
                raise
            os.close(fd)
            fd = nfd
        return fd

    def _not_a_dir(self, prefix: Parts, member: Parts) -> ImageError:
        try:
            st = os.lstat(show(prefix), dir_fd=self.root_fd)
            link = stat.S_ISLNK(st.st_mode)
        except OSError:
            link = False
        what = "the symlink" if link else "the non-directory"
        return ImageError(
            f"refusing archive member {show(member)!r}: its path goes through {what} "
            f"{show(prefix)!r}"
        )

    def parent(self, parts: Parts) -> int:
        """A borrowed fd of the parent of `parts`; consecutive members share it."""
        key = parts[:-1]
        if key != self._cached:
            self._forget()
            self._cached_fd = self.open_dir(key, create=True, member=parts)
            self._cached = key
        return self._cached_fd

    def _clear_slot(self, dir_fd: int, leaf: str, keep_dir: bool) -> bool:
        """Make room for a new entry: True if a directory is there and may be merged into."""
        try:
            st = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        # The member replaces what was there, as in a later layer or a repeated tar member.
        self._forget_keeping(dir_fd)
        remove_tree_at(dir_fd, leaf)
        return False

    def _forget_keeping(self, dir_fd: int) -> None:
        # The cached fd may be the parent we are working in; keep that one open.
        if self._cached_fd == dir_fd:
            return
        self._forget()

    # -- entries ---------------------------------------------------------------------------

    def _meta(self, fd: int, mode: int, uid: int, gid: int) -> None:
        # chown clears setuid/setgid, so the mode comes after it.
        if self.chown:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode & 0o7777)

    def mkdir(self, parts: Parts, mode: int, uid: int, gid: int, mtime_ns: int) -> None:
        if not parts:
            self._meta(self.root_fd, mode, uid, gid)
        else:
            pfd = self.parent(parts)
            leaf = parts[-1]
            if not self._clear_slot(pfd, leaf, keep_dir=True):
                os.mkdir(leaf, 0o700, dir_fd=pfd)
            fd = os.open(leaf, DIR_FLAGS, dir_fd=pfd)
            try:
                self._meta(fd, mode, uid, gid)
            finally:
                os.close(fd)
        self._dir_times[parts] = mtime_ns

    def write_file(
        self,
        parts: Parts,
        src: Readable,
        mode: int,
        uid: int,
        gid: int,
        mtime_ns: int,
        tick: Callable[[], None] | None = None,
    ) -> None:
        if not parts:
            raise ImageError("refusing archive member '.': the root must be a directory")
        pfd = self.parent(parts)
        leaf = parts[-1]
        self._clear_slot(pfd, leaf, keep_dir=False)
        fd = os.open(leaf, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            while True:
                data = src.read(CHUNK)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if tick is not None:
                    tick()
            self._meta(fd, mode, uid, gid)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def symlink(self, parts: Parts, target: str, uid: int, gid: int, mtime_ns: int) -> None:
        if not parts:
            raise ImageError("refusing archive member '.': the root must be a directory")
        pfd = self.parent(parts)
        leaf = parts[-1]
        self._clear_slot(pfd, leaf, keep_dir=False)
        # The target is stored, never followed here; inside the box it resolves in its root.
        os.symlink(target, leaf, dir_fd=pfd)
        if self.chown:
            os.chown(leaf, uid, gid, dir_fd=pfd, follow_symlinks=False)
        os.utime(leaf, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def hardlink(self, parts: Parts, target: Parts) -> None:
        if not parts or not target:
            raise ImageError(
                f"refusing hard link {show(parts)!r}: a link cannot be or name the root"
            )
        tfd = self.open_dir(target[:-1], create=False, member=parts)
        try:
            try:
                st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise ImageError(
                    f"refusing hard link {show(parts)!r}: its target {show(target)!r} "
                    "is not in the archive"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise ImageError(
                    f"refusing hard link {show(parts)!r}: its target {show(target)!r} "
                    "is a directory"
                )
            if parts == target:
                return
            pfd = self.parent(parts)
            self._clear_slot(pfd, parts[-1], keep_dir=False)
            # follow_symlinks=False: a link to a symlink links the symlink itself, as tar does.
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def remove(self, parts: Parts) -> None:
        """A whiteout: delete `parts` (a whole tree if a directory); absent is fine."""
        try:
            pfd = self.open_dir(parts[:-1], create=False, member=parts)
        except FileNotFoundError:
            return
        try:
            self._forget()
            remove_tree_at(pfd, parts[-1])
        finally:
            os.close(pfd)

    def whiteout(self, parts: Parts) -> None:
        """overlayfs's whiteout: a character device 0/0 hides `parts` of the layers below."""
        pfd = self.parent(parts)
        self._clear_slot(pfd, parts[-1], keep_dir=False)
        os.mknod(parts[-1], stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)

    def opaque(self, parts: Parts) -> None:
        """overlayfs's opaque directory: nothing of the layers below shows through it."""
        fd = self.open_dir(parts, create=True, member=parts)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def clear_dir(self, parts: Parts, keep: set[Parts]) -> None:
        """An opaque directory: drop what lower layers put in it, keep what `keep` names."""
        fd = self.open_dir(parts, create=True, member=parts)
        self._forget()
        try:
            self._clear_into(fd, parts, keep)
        finally:
            os.close(fd)

    def _clear_into(self, fd: int, parts: Parts, keep: set[Parts]) -> None:
        for name in os.listdir(fd):
            child = (*parts, name)
            if child not in keep:
                remove_tree_at(fd, name)
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, DIR_FLAGS, dir_fd=fd)
                try:
                    self._clear_into(sub, child, keep)
                finally:
                    os.close(sub)

    def finish(self) -> None:
        """Directory mtimes last: every entry created inside a directory changed its mtime."""
        self._forget()
        for parts in sorted(self._dir_times, key=len, reverse=True):
            ns = self._dir_times[parts]
            try:
                fd = self.open_dir(parts, create=False)
            except (OSError, ImageError):
                continue  # replaced or whited out since
            try:
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)
        self._dir_times.clear()


def remove_tree_at(dir_fd: int, name: str) -> None:
    """rm -rf of `name` inside `dir_fd`, never following a symlink; absent is fine."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            remove_tree_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def remove_tree(path: str) -> None:
    """rm -rf of a path; the path's own parents may be symlinks (a data root can be one)."""
    parent, leaf = os.path.split(os.path.abspath(path))
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_tree_at(fd, leaf)
    finally:
        os.close(fd)


def tree_size(path: str) -> int:
    """Bytes of regular files under path, each inode once (hard links share their data)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_size
    return total
