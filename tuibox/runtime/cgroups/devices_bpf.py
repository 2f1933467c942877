"""The device allowlist on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program on the box's cgroup.

cgroup v2 has no devices.allow / devices.deny files: the kernel asks a BPF program attached
to the cgroup (BPF_CGROUP_DEVICE) whether an open or mknod of a device may go ahead. As runc
and crun do, tuibox generates that program from the same rule list it writes to v1:

1. `reduce` replays the rules the way the v1 controller applies them (a wildcard `a` rule
   resets to allow-all or deny-all; a rule of the other verdict adds or merges an exception;
   one of the same verdict removes access bits from the exception with exactly that type,
   major and minor). What is left is a default verdict and a list of exceptions.
2. `program` turns that into straight-line BPF: load type, access, major and minor from the
   context, then one block per exception that compares them and returns its verdict, then
   the default. An exception to a deny-all default matches when it covers every access bit
   asked for (v1's match_exception); one to an allow-all default when it shares any bit (v1's
   match_exception_partial). So the v2 result is v1's, bit for bit.
3. `attach` loads it with bpf(BPF_PROG_LOAD) and attaches it to the cgroup directory with
   BPF_F_ALLOW_MULTI (programs of ancestors still apply: all must allow). The attachment
   holds the program: our fd is closed, and removing the cgroup frees it.

Not on `tuibox run`'s path unless the host serves devices from cgroup v2 (imported lazily).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from tuibox.runtime.errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.cgroups.resources import DeviceRule

# include/uapi/linux/bpf.h
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
DEV_BLOCK = 1  # BPF_DEVCG_DEV_BLOCK
DEV_CHAR = 2  # BPF_DEVCG_DEV_CHAR
ACC_MKNOD = 1  # BPF_DEVCG_ACC_MKNOD
ACC_READ = 2
ACC_WRITE = 4
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE

_SYSCALL_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351}

# opcodes (class | op | source)
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_AND32_K = 0x54
_RSH32_K = 0x74
_MOV32_K = 0xB4
_MOV32_X = 0xBC
_JEQ_K = 0x15
_JNE_K = 0x55
_JSET_K = 0x45
_EXIT = 0x95

_TYPES = {"c": DEV_CHAR, "b": DEV_BLOCK}
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

Key = tuple[int, int | None, int | None]  # (type, major or None = any, minor or None = any)


def _access(text: str) -> int:
    bits = 0
    for c in text:
        bits |= _ACCESS[c]
    return bits


def reduce(rules: list[DeviceRule]) -> tuple[bool, list[tuple[Key, int]]]:
    """(default allow?, [(key, access bits)]) after replaying the rules as v1 does."""
    default_allow = True  # an empty v1 cgroup that inherits the root's: allow all
    exceptions: dict[Key, int] = {}
    for rule in rules:
        if rule.type == "a":
            default_allow = rule.allow
            exceptions = {}
            continue
        key = (_TYPES[rule.type], rule.major, rule.minor)
        bits = _access(rule.access)
        if rule.allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | bits
        elif key in exceptions:
            left = exceptions[key] & ~bits
            if left:
                exceptions[key] = left
            else:
                del exceptions[key]
    return default_allow, [(k, a) for k, a in exceptions.items() if a]


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def program(rules: list[DeviceRule]) -> bytes:
    """The BPF instructions (8 bytes each) that enforce `rules`."""
    default_allow, exceptions = reduce(rules)
    verdict = 0 if default_allow else 1  # what an exception returns
    # r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx)
    out = [
        _insn(_LDX_MEM_W, 2, 1, 0),
        _insn(_AND32_K, 2, imm=0xFFFF),
        _insn(_LDX_MEM_W, 3, 1, 0),
        _insn(_RSH32_K, 3, imm=16),
        _insn(_LDX_MEM_W, 4, 1, 4),
        _insn(_LDX_MEM_W, 5, 1, 8),
    ]
    for (kind, major, minor), access in exceptions:
        tests: list[tuple[int, int, int, int]] = [(_JNE_K, 2, 0, kind)]  # (code, dst, src, imm)
        if access != ACC_ALL:
            if default_allow:
                # deny when any asked-for bit is listed: skip when r3 & access == 0
                tests += [(_MOV32_X, 1, 3, 0), (_AND32_K, 1, 0, access), (_JEQ_K, 1, 0, 0)]
            else:
                # allow only when every asked-for bit is listed: skip on any other bit
                tests.append((_JSET_K, 3, 0, ACC_ALL & ~access))
        if major is not None:
            tests.append((_JNE_K, 4, 0, major))
        if minor is not None:
            tests.append((_JNE_K, 5, 0, minor))
        block = len(tests) + 2  # the tests, then mov r0 + exit
        for i, (code, dst, src, imm) in enumerate(tests):
            is_jump = code in (_JNE_K, _JEQ_K, _JSET_K)
            # a failed test jumps past the rest of this block to the next one
            out.append(_insn(code, dst, src, block - i - 1 if is_jump else 0, imm))
        out += [_insn(_MOV32_K, 0, imm=verdict), _insn(_EXIT)]
    out += [_insn(_MOV32_K, 0, imm=1 if default_allow else 0), _insn(_EXIT)]
    return b"".join(out)


# ---- the kernel ------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    number = _SYSCALL_BPF.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown for {os.uname().machine}")
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(ctypes.c_long(number), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)


def load(insns: bytes, log_size: int = 0) -> int:
    """BPF_PROG_LOAD; returns the program's fd. `log_size` asks for the verifier's log."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = struct.pack(
        "<IIQQIIQII16sII",
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(insns) // 8,
        ctypes.addressof(code),
        ctypes.addressof(license),
        1 if log else 0,
        log_size,
        ctypes.addressof(log) if log else 0,
        0,  # kern_version
        0,  # prog_flags
        b"tuibox_devices",
        0,  # prog_ifindex
        BPF_CGROUP_DEVICE,  # expected_attach_type
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr.ljust(128, b"\0"))
    except OSError as e:
        if log is not None and log.value:
            raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')}") from None
        raise


def attach(directory: str, rules: list[DeviceRule]) -> None:
    """Enforce `rules` on the cgroup v2 directory; CgroupError in one line otherwise."""
    insns = program(rules)
    try:
        prog = load(insns)
    except OSError as e:
        raise CgroupError(
            f"cannot load the device allowlist program for cgroup v2: {e.strerror} "
            "(the box would get every device, so it is not created)"
        ) from None
    try:
        target = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = struct.pack("<IIIII", target, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0)
            _bpf(BPF_PROG_ATTACH, attr.ljust(32, b"\0"))
        finally:
            os.close(target)
    except OSError as e:
        raise CgroupError(
            f"cannot attach the device allowlist program to {directory}: {e.strerror}"
        ) from None
    finally:
        os.close(prog)
