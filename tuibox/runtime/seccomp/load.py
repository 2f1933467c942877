"""Load a compiled seccomp filter into the calling thread with seccomp(2).

This is all the box's init and exec children need: the program was compiled by the parent
(compile.py) before the fork, so after pivot_root no libseccomp call is made. Only ctypes,
which linux/syscalls.py has loaded already.
"""

from __future__ import annotations

import binascii
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

SECCOMP_SET_MODE_FILTER = 1
# seccomp(2)'s number, for the machines the kernel's generic table does not cover.
_SYS_SECCOMP = {"x86_64": 317, "i686": 354, "aarch64": 277, "riscv64": 277, "ppc64le": 358}.get(
    os.uname().machine, 317
)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def load_filter(program: bytes, flags: int) -> None:
    """Install `program` (struct sock_filter[], 8 bytes each) for this thread and its children.

    Needs no_new_privs or CAP_SYS_ADMIN; the kernel says EACCES otherwise."""
    if not program or len(program) % 8:
        raise OSError(22, "seccomp: the compiled filter is damaged")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    result = _libc.syscall(
        _SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags), ctypes.byref(prog)
    )
    if result != 0:
        err = ctypes.get_errno() if result < 0 else 3  # TSYNC: the tid that blocked it
        raise OSError(err, f"load seccomp filter: {os.strerror(err).lower()}")


# The box's record keeps the program, so `exec` loads exactly what the init loaded.
def record_entry(program: bytes, flags: int) -> dict[str, object]:
    return {"bpf": binascii.b2a_base64(program, newline=False).decode(), "flags": flags}


def program_from_record(entry: dict[str, object]) -> tuple[bytes, int]:
    raw = entry.get("bpf")
    flags = entry.get("flags", 0)
    if not isinstance(raw, str) or not isinstance(flags, int):
        raise ValueError("damaged seccomp entry in the box's record")
    return binascii.a2b_base64(raw), flags
