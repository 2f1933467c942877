"""Resolve a path inside a root filesystem the way the box will see it.

A symlink in an image may point at /etc or ../../.. ; followed naively on the host, a mount
destination would land outside the rootfs. Here every symlink is resolved relative to the root
and `..` never climbs above it (the same idea as Go's filepath-securejoin).
"""

from __future__ import annotations

import os
import stat

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
