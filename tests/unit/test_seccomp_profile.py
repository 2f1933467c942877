"""Seccomp profiles without root: checking, docker's format, the default, compiling."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tuibox.cli.security import seccomp_choice
from tuibox.runtime import defaults
from tuibox.runtime.errors import SpecError
from tuibox.runtime.seccomp import profile
from tuibox.runtime.spec import _Invalid, parse_spec

SHARED = Path(os.environ.get("TUIBOX_SHARED", Path(__file__).resolve().parents[3] / "shared"))
PODMAN = SHARED / "fixtures" / "podman-4.3"

MINIMAL: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"]},
}


def spec_with(seccomp: object) -> Any:
    data = copy.deepcopy(MINIMAL)
    data["linux"] = {"seccomp": seccomp}
    return parse_spec(data, "/b")


def error(seccomp: object) -> str:
    with pytest.raises(SpecError) as e:
        spec_with(seccomp)
    return str(e.value)


def allowed(prof: dict[str, Any]) -> set[str]:
    """Names allowed without conditions."""
    return {
        n
        for rule in prof["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for n in rule["names"]
    }


# ---- checking the spec's object ---------------------------------------------------------------


def test_a_full_profile_is_read_field_by_field() -> None:
    spec = spec_with(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PPC64LE"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerMetadata": "",
            "syscalls": [
                {
                    "names": ["kill"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": 9, "valueTwo": 0, "op": "SCMP_CMP_NE"}],
                },
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            ],
        }
    )
    sc = spec.linux.seccomp
    assert sc.default_action == "SCMP_ACT_ERRNO" and sc.default_errno_ret == 38
    assert sc.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_PPC64LE")
    assert sc.flags == ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
    assert profile.flag_bits(sc) == 2  # no agent: the kernel refuses the receive flag alone
    assert sc.syscalls[0].args[0].op == "SCMP_CMP_NE" and sc.syscalls[0].args[0].value == 9
    assert sc.syscalls[2].errno_ret == 7
    assert "linux.seccomp" not in spec.unsupported


def test_notify_asks_the_kernel_for_a_listener() -> None:
    spec = spec_with(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "m",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
        }
    )
    sc = spec.linux.seccomp
    assert sc.listener_path == "/run/agent.sock" and sc.listener_metadata == "m"
    assert profile.flag_bits(sc) == 1 | 8 | 16 | 32  # TSYNC, NEW_LISTENER, TSYNC_ESRCH, WAIT


def test_no_seccomp_means_no_filter() -> None:
    data = copy.deepcopy(MINIMAL)
    assert parse_spec(data, "/b").linux.seccomp is None


@pytest.mark.parametrize(
    ("seccomp", "message"),
    [
        ([], "linux.seccomp: must be an object"),
        ({}, "linux.seccomp.defaultAction: is required"),
        ({"defaultAction": 1}, "linux.seccomp.defaultAction: must be a string"),
        ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction: unknown action 'SCMP_ACT_NOPE'"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
            "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take it",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
            "linux.seccomp.defaultErrnoRet: must be a non-negative integer",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]},
            "linux.seccomp.architectures[0]: unknown architecture 'x86_64'",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]},
            "linux.seccomp.flags[0]: 'SECCOMP_FILTER_FLAG_NEW_LISTENER' is not one of",
        ),
        (
            {"defaultAction": "SCMP_ACT_NOTIFY"},
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
            },
            "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}},
            "linux.seccomp.syscalls: must be a list of objects",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]},
            "linux.seccomp.syscalls[0].names: is required",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "x"}]},
            "linux.seccomp.syscalls[0].names: must not be empty",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a", 1], "action": "x"}]},
            "linux.seccomp.syscalls[0].names: must be a list of strings",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["b"]}],
            },
            "linux.seccomp.syscalls[1].action: is required",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["a"], "action": "SCMP_ACT_LOG", "errnoRet": 1}],
            },
            "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0}]}],
            },
            "linux.seccomp.syscalls[0].args[0].value: is required",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["a"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].value: must be at most 18446744073709551615",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["a"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].op: 'SCMP_CMP_MASKED' is not one of SCMP_CMP_NE",
        ),
    ],
)
def test_bad_profiles_name_the_field(seccomp: object, message: str) -> None:
    assert message in error(seccomp)
    assert error(seccomp).startswith("config.json: ")


def test_keys_the_spec_does_not_define_are_listed() -> None:
    spec = spec_with(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "comment": "x",
            "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {}}],
        }
    )
    assert spec.unsupported == ("linux.seccomp.comment", "linux.seccomp.syscalls.includes")


# ---- architectures ------------------------------------------------------------------------------


def test_a_filter_holds_the_native_arch_and_only_listed_ones_the_host_runs() -> None:
    listed = ["SCMP_ARCH_PPC64LE", "SCMP_ARCH_ARM", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert profile.host_arches(listed, "x86_64") == [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
    ]
    assert profile.host_arches([], "x86_64") == ["SCMP_ARCH_X86_64"]
    assert profile.host_arches(listed, "aarch64") == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert profile.host_arches(listed, "ppc64le") == ["SCMP_ARCH_PPC64LE"]


# ---- docker's format ----------------------------------------------------------------------------


def test_docker_format_is_resolved_for_the_box() -> None:
    docker = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
            {"name": "write", "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["mount"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "excludes": {"caps": ["CAP_SYS_ADMIN"]},
            },
            {
                "names": ["arch_prctl"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"arches": ["amd64"]},
            },
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.1"}},
            {"names": ["no32"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        ],
    }
    out = profile.to_spec_form(docker, defaults.CAPABILITIES, "x86_64", "6.18.0-1-amd64")
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert "archMap" not in out
    assert [r["names"] for r in out["syscalls"]] == [
        ["read"],
        ["write"],
        ["clone"],
        ["arch_prctl"],
        ["ptrace"],
    ]
    assert all(set(r) == {"names", "action"} for r in out["syscalls"])
    admin = profile.to_spec_form(docker, ["CAP_SYS_ADMIN"], "aarch64", "4.4")
    assert admin["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    names = [r["names"][0] for r in admin["syscalls"]]
    assert names == ["read", "write", "mount", "set_tls", "no32"]


def test_security_opt_values() -> None:
    assert seccomp_choice([]) is None
    assert seccomp_choice(["seccomp=unconfined"]) == "unconfined"
    assert seccomp_choice(["seccomp=/a.json"]) == "/a.json"
    for bad in ("seccomp", "seccomp=", "label=disable", "no-new-privileges"):
        with pytest.raises(SpecError):
            seccomp_choice([bad])


def test_read_profile_errors_are_one_line(tmp_path: Path) -> None:
    for text, message in (("{", "invalid JSON at line 1"), (b"\xff", "not valid UTF-8")):
        path = tmp_path / "p.json"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        with pytest.raises(_Invalid) as e:
            profile.read_profile(str(path))
        assert message in e.value.problem
    with pytest.raises(_Invalid) as e:
        profile.read_profile(str(tmp_path / "missing.json"))
    assert "cannot read" in e.value.problem


# ---- the default profile ------------------------------------------------------------------------

REFUSED = {
    "unshare",
    "mount",
    "umount2",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "init_module",
    "finit_module",
    "reboot",
    "ptrace_unknown",
    "clock_settime",
    "userfaultfd",
    "perf_event_open",
    "swapon",
    "pivot_root",
    "clone3",
}


def test_default_profile_for_docker_default_caps() -> None:
    prof = profile.default_profile(defaults.CAPABILITIES)
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    names = allowed(prof)
    assert not names & REFUSED, names & REFUSED
    assert {"read", "execve", "chroot", "ptrace", "socketpair", "capset"} <= names
    clone = [r for r in prof["syscalls"] if r["names"] == ["clone"]]
    assert clone == [
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    ]
    (clone3,) = [r for r in prof["syscalls"] if r["names"] == ["clone3"]]
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38  # ENOSYS
    seccomp, unknown = profile.parse(prof)
    assert unknown == []
    assert seccomp.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")


def test_default_profile_follows_capabilities() -> None:
    caps = [*defaults.CAPABILITIES, "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"]
    names = allowed(profile.default_profile(caps))
    assert {"mount", "unshare", "setns", "clone", "open_by_handle_at", "bpf"} <= names
    assert not {"keyctl", "kexec_load", "io_uring_setup"} & names
    no_chroot = allowed(profile.default_profile(["CAP_CHOWN"]))
    assert "chroot" not in no_chroot


def test_default_profile_file_is_docker_format_and_sorted_sensibly() -> None:
    raw = json.loads(Path(profile.DEFAULT_PROFILE).read_text())
    assert "archMap" in raw
    main = raw["syscalls"][0]["names"]
    assert len(main) == len(set(main)) > 300


# ---- compiling (libseccomp, no root needed) ------------------------------------------------------

libseccomp = pytest.importorskip("tuibox.runtime.seccomp.compile")


def compile_or_skip(prof: dict[str, Any]) -> bytes:
    try:
        program: bytes = libseccomp.compile_filter(profile.parse(prof)[0])
    except SpecError as e:
        if "not installed" in str(e):
            pytest.skip(str(e))
        raise
    return program


def test_default_profile_compiles_the_same_every_time() -> None:
    prof = profile.default_profile(defaults.CAPABILITIES)
    one = compile_or_skip(prof)
    assert len(one) % 8 == 0 and len(one) > 8 * 300
    assert compile_or_skip(prof) == one


def test_unknown_names_and_foreign_arches_do_not_break_a_compile() -> None:
    prof = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390X", "SCMP_ARCH_ARM", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["read", "a_syscall_from_2030"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO"},  # the default again: skipped
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                ],
            },
        ],
    }
    assert len(compile_or_skip(prof)) % 8 == 0


@pytest.mark.parametrize("action", sorted(profile.ACTIONS))
def test_every_action_compiles(action: str) -> None:
    rule: dict[str, Any] = {"names": ["getppid"], "action": action}
    listener = {"listenerPath": "/a"} if action == "SCMP_ACT_NOTIFY" else {}
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        rule["errnoRet"] = 5
    default = "SCMP_ACT_LOG" if action == "SCMP_ACT_ALLOW" else "SCMP_ACT_ALLOW"
    assert compile_or_skip({"defaultAction": default, "syscalls": [rule], **listener})


@pytest.mark.parametrize("name", ["basic", "rich", "tty", "userns"])
def test_podman_profiles_compile(name: str) -> None:
    path = PODMAN / f"config.{name}.json"
    if not path.is_file():
        pytest.skip("shared podman fixtures not found")
    compile_or_skip(json.loads(path.read_text())["linux"]["seccomp"])


def test_tuibox_spec_writes_the_default_profile(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    subprocess.run(
        [sys.executable, "-m", "tuibox", "spec", "--bundle", str(tmp_path)], check=True, env=env
    )
    config = json.loads((tmp_path / "config.json").read_text())
    written = config["linux"]["seccomp"]
    assert written == profile.default_profile(defaults.CAPABILITIES)
    # and it loads back as the spec's own field, nothing unsupported
    spec = parse_spec(config, str(tmp_path))
    assert spec.linux.seccomp is not None and spec.unsupported == ()
