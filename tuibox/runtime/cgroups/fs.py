"""Reading and writing cgroup control files, with errors that name the file and the value.

Files are opened without O_CREAT: on cgroupfs a missing control file means the kernel lacks
the feature, and that must be an error, not a stray regular file. Unit tests build fake
hierarchies on tmp_path by creating the control files themselves.
"""

from __future__ import annotations

import errno
import os

from tuibox.runtime.errors import CgroupError, CgroupUnsupported


def read(path: str) -> str:
    # os.open/os.read: a third of open()'s cost, and stats reads hundreds of these a second.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while len(chunks[-1]) == 65536:
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_int(path: str) -> int:
    return int(read(path).split()[0])


def try_read(path: str) -> str | None:
    try:
        return read(path)
    except OSError:
        return None


def write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CgroupUnsupported(f"cgroup file {path} does not exist (not supported here)") from None
    except OSError as e:
        raise CgroupError(f"cgroup file {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(f"cgroup file {path}: cannot write {value!r}: {_why(e)}") from None
    finally:
        os.close(fd)


def _why(e: OSError) -> str:
    if e.errno == errno.EBUSY:
        return "device or resource busy (a limit below current usage?)"
    return (e.strerror or str(e)).lower()


def key(text: str, name: str) -> int:
    """One 'name value' line of a keyed file, without parsing the rest (memory.stat is long)."""
    at = text.find(name + " ")
    while at > 0 and text[at - 1] != "\n":
        at = text.find(name + " ", at + 1)
    if at < 0:
        return 0
    end = text.find("\n", at)
    try:
        return int(text[at + len(name) + 1 : end if end >= 0 else None])
    except ValueError:
        return 0


def keyed(text: str) -> dict[str, int]:
    """'key value' lines (memory.stat, cpu.stat, cgroup.events) to a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def procs(directory: str) -> list[int]:
    try:
        text = read(os.path.join(directory, "cgroup.procs"))
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def mkdir(path: str) -> None:
    """The one place cgroup directories are made (unit tests replace it with a fake kernel
    that also creates the control files)."""
    os.mkdir(path, 0o755)


def makedirs(path: str, made: list[str]) -> None:
    """mkdir -p that records each directory it created, outermost first."""
    for _attempt in range(3):
        missing = []
        p = path
        while not os.path.isdir(p):
            missing.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
        try:
            for d in reversed(missing):
                try:
                    mkdir(d)
                except FileExistsError:
                    continue
                made.append(d)
            return
        except FileNotFoundError:
            # Another box's destroy removed a shared, empty parent just now: walk again.
            continue
    mkdir(path)


def rmdir(path: str) -> bool:
    """Remove one cgroup directory; False while it still holds processes."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise CgroupError(
            f"cannot remove cgroup {path}: {(e.strerror or str(e)).lower()}"
        ) from None
    return True
