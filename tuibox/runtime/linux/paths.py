"""Resolve a path inside a root filesystem the way the box will see it.

A symlink in an image may point at /etc or ../../.. ; followed naively on the host, a mount
destination would land outside the rootfs. Here every symlink is resolved relative to the root
and `..` never climbs above it (the same idea as Go's filepath-securejoin).
"""

from __future__ import annotations

import errno
import os
import stat

from tuibox.runtime.linux import syscalls as sc

_MAX_LINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """Return the host path that `path` names inside `root`, never outside it."""
    root = root.rstrip("/") or "/"
    pending = [c for c in path.split("/") if c]
    pending.reverse()
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            pending.extend(reversed([c for c in target.split("/") if c]))
            continue
        done.append(part)
    return os.path.join(root, *done)


def make_parents(root: str, path: str, mode: int = 0o755) -> str:
    """Create the directories leading to `path` inside root; return its resolved host path."""
    resolved = resolve_in_root(root, path)
    parent = os.path.dirname(resolved)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode, exist_ok=True)
    return resolved


def ensure_mountpoint(root: str, path: str, directory: bool) -> str:
    """Make `path` exist inside root as a directory or a regular file, for a mount on top."""
    resolved = make_parents(root, path)
    if directory:
        if not os.path.isdir(resolved):
            os.mkdir(resolved, 0o755)
    elif not os.path.lexists(resolved):
        os.close(os.open(resolved, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    return resolved


# ---- the same, as descriptors: what the init mounts onto ------------------------------------
#
# A path string resolved now and mounted later leaves a window: swap a component for a
# symlink in between and the kernel follows it on the host (the CVE-2021-30465 class). So a
# mount target is opened as an O_PATH descriptor, resolved by the kernel inside the root
# (openat2 with RESOLVE_IN_ROOT, magic links refused), and the mount goes onto
# /proc/self/fd/N, which names that very object whatever happens to the path afterwards.

_IN_ROOT = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_openat2_missing = False


def fd_path(fd: int) -> str:
    """A path mount(2) and friends follow to exactly the object `fd` holds."""
    return f"/proc/self/fd/{fd}"


def open_in_root(root_fd: int, root: str, path: str) -> int:
    """An O_PATH descriptor of `path` inside the root, never outside it."""
    global _openat2_missing
    rel = path.lstrip("/") or "."
    flags = os.O_PATH | os.O_CLOEXEC
    tries = 0
    while not _openat2_missing:
        try:
            return sc.openat2(root_fd, rel, flags, _IN_ROOT)
        except OSError as e:
            # EAGAIN: a rename or mount somewhere on the system raced a `..` in the lookup;
            # the kernel asks for a retry rather than risk a wrong answer.
            if e.errno == errno.EAGAIN and tries < 1000:
                tries += 1
                continue
            if e.errno != errno.ENOSYS:
                raise OSError(e.errno, f"{path}: {os.strerror(e.errno or 0).lower()}") from None
            _openat2_missing = True
    # A kernel before 5.6: the safe walk, then a check that what was opened is still ours.
    fd = os.open(resolve_in_root(root, path), flags | os.O_NOFOLLOW)
    real = os.readlink(fd_path(fd))
    base = os.readlink(fd_path(root_fd)).rstrip("/")  # the root as the kernel names it
    if real != base and not real.startswith(base + "/"):
        os.close(fd)
        raise OSError(errno.EXDEV, f"{path}: moved outside the root while it was opened")
    return fd


def _create_in_root(root_fd: int, root: str, path: str, directory: bool) -> None:
    parent, base = os.path.split(path)
    if not base:
        return
    pfd = ensure_at(root_fd, root, parent, True)
    try:
        if directory:
            os.mkdir(base, 0o755, dir_fd=pfd)
        else:
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(base, flags, 0o644, dir_fd=pfd))
    except FileExistsError:
        pass
    finally:
        os.close(pfd)


def ensure_at(root_fd: int, root: str, path: str, directory: bool) -> int:
    """`ensure_mountpoint` as an O_PATH descriptor, checked to be a directory or not."""
    path = os.path.normpath("/" + path.lstrip("/"))
    try:
        fd = open_in_root(root_fd, root, path)
    except FileNotFoundError:
        # Create what the path names once its symlinks are followed inside the root (a
        # dangling /etc/resolv.conf -> ../run/resolv.conf makes run/resolv.conf).
        real = "/" + os.path.relpath(resolve_in_root(root, path), root)
        real = os.path.normpath(real)
        _create_in_root(root_fd, root, real, directory)
        fd = open_in_root(root_fd, root, real)
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode):  # the walk's O_NOFOLLOW met a symlink swapped in: refuse it
        os.close(fd)
        raise OSError(errno.ELOOP, f"{path}: a symbolic link appeared while it was opened")
    is_dir = stat.S_ISDIR(mode)
    if is_dir != directory:
        os.close(fd)
        code = errno.ENOTDIR if directory else errno.EISDIR
        raise OSError(code, f"{path}: {os.strerror(code).lower()}")
    return fd


def enter_cwd(cwd: str) -> None:
    """chdir, then make sure the result is a directory inside the box's root.

    A cwd of /proc/self/fd/N (or a symlink to it) follows whatever descriptor N is: were it a
    host directory, the program would start outside the box (CVE-2024-21626). The init holds
    none by now; this is the check that it stays so. getcwd fails (or says "(unreachable)")
    for a directory outside the process's root."""
    os.chdir(cwd)
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise OSError(errno.ENOTDIR, f"{cwd}: not a directory inside the box")


def find_program(name: str, path_var: str) -> str:
    """execvp's lookup, done before execve so a missing or non-executable program is a clear
    error (127 / 126) naming it; the init and exec share it, so their messages match."""
    candidates = (
        [name] if "/" in name else [os.path.join(d or ".", name) for d in path_var.split(":")]
    )
    denied = None
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK):
            return path
        denied = path
    if denied is not None:
        raise OSError(errno.EACCES, f"{denied}: permission denied")
    raise OSError(errno.ENOENT, f"{name}: no such file or directory")
