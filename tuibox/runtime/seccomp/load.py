"""Load a compiled seccomp filter into the calling thread with seccomp(2).

This is all the box's init and exec children need: the program was compiled by the parent
(compile.py) before the fork, so after pivot_root no libseccomp call is made. Only ctypes,
which linux/syscalls.py has loaded already.
"""

from __future__ import annotations

import binascii
import ctypes
import os
import sys

from tuibox.runtime import fastjson

_libc = ctypes.CDLL(None, use_errno=True)

SECCOMP_SET_MODE_FILTER = 1
_NEW_LISTENER = 8
# seccomp(2)'s number, for the machines the kernel's generic table does not cover.
_SYS_SECCOMP = {"x86_64": 317, "i686": 354, "aarch64": 277, "riscv64": 277, "ppc64le": 358}.get(
    os.uname().machine, 317
)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def load_filter(program: bytes, flags: int) -> int:
    """Install `program` (struct sock_filter[], 8 bytes each) for this thread and its children;
    the notification fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0.

    Needs no_new_privs or CAP_SYS_ADMIN; the kernel says EACCES otherwise."""
    if not program or len(program) % 8:
        raise OSError(22, "seccomp: the compiled filter is damaged")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    result = _libc.syscall(
        _SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags), ctypes.byref(prog)
    )
    if result < 0 or (result > 0 and not flags & _NEW_LISTENER):
        err = ctypes.get_errno() if result < 0 else 3  # TSYNC: the tid that blocked it
        raise OSError(err, f"load seccomp filter: {os.strerror(err).lower()}")
    return int(result)


# ---- the seccomp agent (listenerPath) -------------------------------------------------------


def host_pid() -> int:
    """Our pid as the host (and so the agent) sees it. Read while /proc is still the host's
    procfs, before pivot_root or the mount namespace join: it answers in its own pid
    namespace, and the box's pid namespace says 1."""
    return int(os.readlink("/proc/self"))


def agent_message(pid: int, state: dict[str, object], metadata: str) -> bytes:
    """The spec's containerProcessState, sent with the notification fd."""
    return fastjson.dumps(
        {
            "ociVersion": "1.0.2",
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": metadata,
            "state": dict(state, pid=pid),
        }
    ).encode()


def send_to_agent(sock_fd: int, notify_fd: int, message: bytes) -> None:
    """One sendmsg: the message, and the notification fd as SCM_RIGHTS; both fds closed.

    `_socket` was imported by the parent before the fork (stage.py, exec.py)."""
    import _socket

    sock = _socket.socket(fileno=sock_fd)
    try:
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, notify_fd.to_bytes(4, sys.byteorder))]
        sock.sendmsg([message], rights)
    except OSError as e:
        raise OSError(e.errno, f"send the seccomp fd to the agent: {e.strerror}") from None
    finally:
        sock.close()
        os.close(notify_fd)


# The box's record keeps the program, so `exec` loads exactly what the init loaded.
def record_entry(
    program: bytes, flags: int, listener: tuple[str, str] | None = None, profile: str = ""
) -> dict[str, object]:
    entry: dict[str, object] = {
        "bpf": binascii.b2a_base64(program, newline=False).decode(),
        "flags": flags,
    }
    if profile:  # what `inspect` names: "default", "config.json" or the profile's path
        entry["profile"] = profile
    if listener is not None:
        entry["listener"] = {"path": listener[0], "metadata": listener[1]}
    return entry


def program_from_record(entry: dict[str, object]) -> tuple[bytes, int]:
    raw = entry.get("bpf")
    flags = entry.get("flags", 0)
    if not isinstance(raw, str) or not isinstance(flags, int):
        raise ValueError("damaged seccomp entry in the box's record")
    return binascii.a2b_base64(raw), flags


def listener_from_record(entry: dict[str, object]) -> tuple[str, str] | None:
    raw = entry.get("listener")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        raise ValueError("damaged seccomp listener in the box's record")
    return str(raw["path"]), str(raw.get("metadata") or "")


def connect_agent(path: str) -> int:
    """A connected socket to the seccomp agent, made before the fork: the child sends on it
    from inside the box, where the path cannot be reached."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        reason = (e.strerror or str(e)).lower()
        raise OSError(
            e.errno, f"linux.seccomp.listenerPath: cannot connect to {path}: {reason}"
        ) from None
    fd: int = sock.detach()
    return fd
