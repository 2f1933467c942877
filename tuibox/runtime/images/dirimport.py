"""Copying a directory tree (an unpacked rootfs) into the store.

The source is walked with lstat and never followed below its top; the copy is written through
the same `RootWriter` as archives, so modes (setuid included), owners, mtimes, symlinks and
hard links come out as they went in. Device nodes, fifos and sockets are skipped with a
warning, as for archives.
"""

from __future__ import annotations

import os
import stat

from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.safefs import RootWriter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.runtime.images.safefs import Parts

    Progress = Callable[[int, int], None]


def _walk(src: str) -> tuple[list[tuple[Parts, str, os.stat_result]], int]:
    """Every entry below src, parents before children, and the bytes of regular files."""
    entries: list[tuple[Parts, str, os.stat_result]] = [((), src, os.stat(src))]
    total = 0
    stack: list[tuple[Parts, str]] = [((), src)]
    while stack:
        parts, path = stack.pop()
        with os.scandir(path) as it:
            children = sorted(it, key=lambda e: e.name)
        for entry in children:
            st = entry.stat(follow_symlinks=False)
            child = (*parts, entry.name)
            entries.append((child, entry.path, st))
            if stat.S_ISDIR(st.st_mode):
                stack.append((child, entry.path))
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
    return entries, total


def copy_tree(src: str, dest: str, progress: Progress | None = None) -> list[str]:
    """Copy the tree at src into the existing directory dest; return warnings."""
    if not os.path.isdir(src):
        raise ImageError(f"{src}: not a directory")
    try:
        entries, total = _walk(src)
    except OSError as e:
        raise ImageError(f"cannot read {e.filename or src}: {e.strerror}") from None
    warnings: list[str] = []
    first_link: dict[tuple[int, int], Parts] = {}
    done = 0
    with RootWriter(dest) as writer:
        for parts, path, st in entries:
            mode = st.st_mode
            try:
                if stat.S_ISDIR(mode):
                    writer.mkdir(parts, mode, st.st_uid, st.st_gid, st.st_mtime_ns)
                elif stat.S_ISLNK(mode):
                    target = os.readlink(path)
                    writer.symlink(parts, target, st.st_uid, st.st_gid, st.st_mtime_ns)
                elif stat.S_ISREG(mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in first_link:
                        writer.hardlink(parts, first_link[key])
                        continue
                    first_link[key] = parts
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with open(fd, "rb", buffering=0) as f:
                        writer.write_file(parts, f, mode, st.st_uid, st.st_gid, st.st_mtime_ns)
                    done += st.st_size
                    if progress is not None:
                        progress(min(done, total), total)
                else:
                    warnings.append(f"skipped special file {path}: the runtime provides /dev")
            except OSError as e:
                raise ImageError(f"cannot copy {path}: {e.strerror or e}") from None
        writer.finish()
    if progress is not None:
        progress(total, total)
    return warnings
