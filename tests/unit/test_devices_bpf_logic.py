"""The cgroup v2 device program, without a kernel: the generated BPF is run by a small
interpreter of the instructions it uses and compared, for every device and access, with a
model of the v1 devices controller fed the same rules. (The real kernel:
tests/integration/test_devices_bpf.py.)"""

from __future__ import annotations

import itertools
import struct

import pytest

from tuibox.runtime.cgroups import devices_bpf as bpf
from tuibox.runtime.cgroups.resources import (
    DEFAULT_DEVICE_RULES,
    DeviceRule,
    device_rules,
    parse_resources,
)
from tuibox.runtime.spec_model import Device

U32 = 0xFFFFFFFF


def run(insns: bytes, kind: int, access: int, major: int, minor: int) -> int:
    """Interpret the program on a bpf_cgroup_dev_ctx; only the opcodes program() emits."""
    ctx = struct.pack("<III", (access << 16) | kind, major, minor)
    regs = [0] * 11
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps < 10_000, "no loop can exist in a straight-line program"
        code, regs_byte, off, imm = struct.unpack_from("<BBhi", insns, pc * 8)
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:  # ldxw from the context (r1 is its pointer until overwritten)
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = (regs[dst] & imm) & U32
        elif code == 0x74:
            regs[dst] = (regs[dst] & U32) >> imm
        elif code == 0xB4:
            regs[dst] = imm & U32
        elif code == 0xBC:
            regs[dst] = regs[src] & U32
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x45:
            pc += off if regs[dst] & imm else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def v1_model(rules: list[DeviceRule], kind: str, access: str, major: int, minor: int) -> bool:
    """The v1 controller (security/device_cgroup.c) as a list of exceptions, rule by rule."""
    allow_all = True
    exc: list[list[object]] = []  # [type, major, minor, access set]
    for r in rules:
        if r.type == "a":
            allow_all, exc = r.allow, []
            continue
        same = [e for e in exc if e[:3] == [r.type, r.major, r.minor]]
        if r.allow != allow_all:
            if same:
                same[0][3] = set(same[0][3]) | set(r.access)  # type: ignore[arg-type]
            else:
                exc.append([r.type, r.major, r.minor, set(r.access)])
        elif same:
            same[0][3] = set(same[0][3]) - set(r.access)  # type: ignore[arg-type]
            if not same[0][3]:
                exc.remove(same[0])

    def matches(e: list[object], partial: bool) -> bool:
        if e[0] != kind or e[1] not in (None, major) or e[2] not in (None, minor):
            return False
        have: set[str] = e[3]  # type: ignore[assignment]
        return bool(set(access) & have) if partial else set(access) <= have

    if allow_all:
        return not any(matches(e, True) for e in exc)
    return any(matches(e, False) for e in exc)


KINDS = {"c": bpf.DEV_CHAR, "b": bpf.DEV_BLOCK}
ACCESSES = ["r", "w", "m", "rw", "rm", "wm", "rwm"]


def _bits(access: str) -> int:
    return sum({"m": 1, "r": 2, "w": 4}[c] for c in access)


RULE_SETS = {
    "docker-defaults": device_rules(parse_resources({}), ()),
    "spec-device-and-rule": device_rules(
        parse_resources(
            {"devices": [{"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]}
        ),
        (Device("/dev/fuse", "c", 10, 229), Device("/dev/sda", "b", 8, 0)),
    ),
    "privileged": [DeviceRule(True, "a", None, None, "rwm")],
    "allow-all-but": [
        DeviceRule(True, "a", None, None, "rwm"),
        DeviceRule(False, "c", 1, 7, "w"),
        DeviceRule(False, "b", 8, None, "rwm"),
        DeviceRule(True, "b", 8, None, "r"),  # takes r back off the blacklist entry
    ],
    "merge-and-remove": [
        DeviceRule(False, "a", None, None, "rwm"),
        DeviceRule(True, "c", 1, 3, "r"),
        DeviceRule(True, "c", 1, 3, "w"),  # merged with the line above, as v1 does
        DeviceRule(True, "c", 1, 5, "rwm"),
        DeviceRule(False, "c", 1, 5, "w"),
        DeviceRule(True, "c", 4, None, "rwm"),
        DeviceRule(False, "c", 4, 1, "rwm"),  # no exact match: v1 changes nothing
        DeviceRule(True, "c", 9, 9, "m"),
        DeviceRule(False, "c", 9, 9, "m"),  # removed entirely
    ],
    "reset-midway": [
        DeviceRule(True, "c", 1, 3, "rwm"),
        DeviceRule(False, "a", None, None, "rwm"),
        DeviceRule(True, "c", 1, 5, "rwm"),
    ],
}
DEVICES = [(1, 3), (1, 5), (1, 7), (1, 9), (4, 1), (4, 2), (5, 2), (8, 0), (8, 16), (9, 9),
           (10, 200), (10, 229), (136, 4), (0, 0), (4095, 1048575)]  # fmt: skip


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_program_decides_like_the_v1_controller(name: str) -> None:
    rules = RULE_SETS[name]
    insns = bpf.program(rules)
    assert len(insns) % 8 == 0 and len(insns) // 8 < 4096  # BPF_MAXINSNS for unprivileged
    for kind, access, (major, minor) in itertools.product("cb", ACCESSES, DEVICES):
        want = v1_model(rules, kind, access, major, minor)
        got = run(insns, KINDS[kind], _bits(access), major, minor)
        assert got == int(want), (name, kind, access, major, minor)


def test_default_rules_allow_the_usual_nodes_and_nothing_else() -> None:
    insns = bpf.program(device_rules(parse_resources({}), ()))
    rw = _bits("rw")
    assert run(insns, bpf.DEV_CHAR, rw, 1, 3) == 1  # /dev/null
    assert run(insns, bpf.DEV_CHAR, rw, 136, 7) == 1  # a pty
    assert run(insns, bpf.DEV_CHAR, rw, 1, 11) == 0  # /dev/kmsg
    assert run(insns, bpf.DEV_BLOCK, _bits("r"), 8, 0) == 0  # /dev/sda
    assert run(insns, bpf.DEV_BLOCK, _bits("m"), 8, 0) == 1  # mknod of anything is fine
    assert DEFAULT_DEVICE_RULES[0] == DeviceRule(True, "c", None, None, "m")


def test_reduce_keeps_only_what_matters() -> None:
    default_allow, exceptions = bpf.reduce(RULE_SETS["merge-and-remove"])
    assert default_allow is False
    assert exceptions == [
        ((bpf.DEV_CHAR, 1, 3), _bits("rw")),
        ((bpf.DEV_CHAR, 1, 5), _bits("rm")),
        ((bpf.DEV_CHAR, 4, None), _bits("rwm")),
    ]
    assert bpf.reduce([DeviceRule(True, "a", None, None, "rwm")]) == (True, [])


def test_instruction_encoding() -> None:
    # exit: opcode 0x95, no registers; mov32 r0, 1: 0xb4, dst 0, imm 1
    tail = bpf.program([DeviceRule(False, "a", None, None, "rwm")])[-16:]
    assert tail == bytes([0xB4, 0, 0, 0, 0, 0, 0, 0]) + bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
