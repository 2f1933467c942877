"""linux.seccomp and the default profile, on the real kernel.

Each denial is checked against the same box without the filter, so a test that passes
because the call fails anyway (a missing capability, a kernel without the feature) cannot
hide: the profile must be what makes the difference.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import TB, unique

pytestmark = pytest.mark.root

ALLOW_ALL_BUT: Callable[..., dict[str, Any]] = lambda *rules, **top: {  # noqa: E731
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": list(rules),
    **top,
}

DENIED_BY_DEFAULT = (
    "keyctl",
    "add_key",
    "bpf",
    "kexec_load",
    "open_by_handle_at",
    "io_uring_setup",
    "unshare_user",
)


def run(tb: TB, bundle: Path, *args: str) -> Any:
    return tb("run", "--bundle", str(bundle), unique("sc"), *args, check=False)


def spec_bundle(tb: TB, tmp_path: Path, rootfs: Path, **changes: Any) -> Path:
    """A bundle whose config.json `tuibox spec` wrote (the default profile in it)."""
    bundle = tmp_path / unique("spec")
    bundle.mkdir()
    tb("spec", "--bundle", str(bundle), "--rootfs", str(rootfs))
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    caps = changes.pop("add_caps", ())
    for name in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][name] += list(caps)
    if changes.pop("unconfined", False):
        del config["linux"]["seccomp"]
    config.update(changes)
    path.write_text(json.dumps(config))
    return bundle


# ---- a profile of one's own -------------------------------------------------------------------


@pytest.mark.parametrize("nnp", [False, True], ids=["privileged-load", "no-new-privs"])
def test_a_profile_denying_mkdir_makes_mkdir_fail(
    tb: TB, make_bundle: Callable[..., Path], nnp: bool
) -> None:
    script = ["/bin/sh", "-c", "mkdir /tmp/d && echo made"]
    deny = ALLOW_ALL_BUT({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    denied = make_bundle(script, linux={"seccomp": deny}, process={"noNewPrivileges": nnp})
    proc = run(tb, denied)
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr, proc
    # the same box without the profile: the test can fail
    assert run(tb, make_bundle(script, process={"noNewPrivileges": nnp})).stdout == "made\n"


def test_flags_reach_the_kernel(tb: TB, make_bundle: Callable[..., Path]) -> None:
    flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ]
    deny = ALLOW_ALL_BUT({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}, flags=flags)
    # The kernel refuses flags it does not know (EINVAL): the filter is loaded and active.
    # (This host reports no store-bypass mitigation, so SPEC_ALLOW's own effect is not seen.)
    proc = run(
        tb, make_bundle(["sh", "-c", "mkdir /tmp/d || echo refused"], linux={"seccomp": deny})
    )
    assert proc.stdout == "refused\n", proc


def test_kill_process_action_kills_the_program_with_sigsys(
    tb: TB, make_bundle: Callable[..., Path], probe_rootfs: Path
) -> None:
    kill = ALLOW_ALL_BUT({"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"})
    bundle = make_bundle(["/bin/probe", "getppid"], linux={"seccomp": kill})
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(probe_rootfs)
    (bundle / "config.json").write_text(json.dumps(config))
    proc = run(tb, bundle)
    assert proc.returncode == 128 + 31, proc  # SIGSYS
    assert proc.stdout == ""


def test_errno_ret_is_the_errno_the_program_sees(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path], probe_rootfs: Path
) -> None:
    rule = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
    proc = run(tb, make_bundle(["mkdir", "/tmp/d"], linux={"seccomp": ALLOW_ALL_BUT(rule)}))
    assert "No space left on device" in proc.stderr, proc
    # defaultErrnoRet: what every call the allowlist does not name fails with
    bundle = spec_bundle(tb, tmp_path, probe_rootfs)
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"]["defaultErrnoRet"] = 13
    (bundle / "config.json").write_text(json.dumps(config))
    assert run(tb, bundle, "probe", "keyctl").stdout == "keyctl: EACCES\n"


def test_argument_filters(tb: TB, make_bundle: Callable[..., Path]) -> None:
    # kill(2) refused for SIGUSR1 and SIGUSR2 only (two comparisons of one argument: either)
    rule = {
        "names": ["kill"],
        "action": "SCMP_ACT_ERRNO",
        "args": [
            {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"},
        ],
    }
    script = (
        "trap '' USR1 USR2; for s in 0 USR1 USR2 HUP; do kill -$s $$ 2>/dev/null; echo $s=$?; done"
    )
    trap_hup = script.replace("trap '' USR1 USR2", "trap '' USR1 USR2 HUP")
    filtered = make_bundle(["sh", "-c", trap_hup], linux={"seccomp": ALLOW_ALL_BUT(rule)})
    assert run(tb, filtered).stdout.split() == ["0=0", "USR1=1", "USR2=1", "HUP=0"]
    plain = make_bundle(["sh", "-c", trap_hup])
    assert run(tb, plain).stdout.split() == ["0=0", "USR1=0", "USR2=0", "HUP=0"]
    # a masked comparison: opening with O_CREAT (0o100) refused, other opens allowed
    creat = {"index": 1, "value": 0o100, "valueTwo": 0o100, "op": "SCMP_CMP_MASKED_EQ"}
    rules = (
        {"names": ["open"], "action": "SCMP_ACT_ERRNO", "args": [creat]},  # open(path, flags)
        {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "args": [dict(creat, index=2)]},
    )
    script = "head -c4 /etc/passwd && echo; echo x > /tmp/f || echo refused"
    bundle = make_bundle(["sh", "-c", script], linux={"seccomp": ALLOW_ALL_BUT(*rules)})
    assert run(tb, bundle).stdout == "root\nrefused\n"


# ---- SCMP_ACT_NOTIFY: a seccomp agent ----------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


class Agent:
    """A seccomp agent on a unix socket: keeps each containerProcessState it is sent and
    answers every notification with EXDEV, an errno mkdir never gets here otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = []
        self.answered: list[int] = []  # syscall numbers
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            self.messages.append(json.loads(msg))
            for fd in fds:
                threading.Thread(target=self._answer, args=(fd,), daemon=True).start()

    def _answer(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while True:
                events = poller.poll(30_000)
                if not events or events[0][1] & (select.POLLHUP | select.POLLERR):
                    return  # every process of the filter is gone
                notif = bytearray(80)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, notif)
                except OSError:
                    continue  # the caller died meanwhile
                (ident,) = struct.unpack_from("Q", notif, 0)
                (nr,) = struct.unpack_from("i", notif, 16)
                resp = struct.pack("QqiI", ident, 0, -errno.EXDEV, 0)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp)
                    self.answered.append(nr)
                except OSError:
                    continue
        finally:
            os.close(fd)

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("nnp", [False, True], ids=["privileged-load", "no-new-privs"])
def test_notify_hands_the_fd_to_the_agent_for_the_box_and_each_exec(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path], nnp: bool
) -> None:
    agent = Agent(tmp_path / "agent.sock")
    try:
        notify = ALLOW_ALL_BUT(
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
            listenerPath=str(agent.path),
            listenerMetadata="from-the-test",
        )
        script = "mkdir /tmp/d 2>&1; sleep 1000"
        bundle = make_bundle(["sh", "-c", script], linux={"seccomp": notify})
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["noNewPrivileges"] = nnp
        (bundle / "config.json").write_text(json.dumps(config))
        name = unique("nt")
        tb("run", "-d", "--bundle", str(bundle), name)
        (first,) = agent.wait_for(1)
        assert first["fds"] == ["seccompFd"] and first["metadata"] == "from-the-test"
        assert first["state"]["id"] == name and first["state"]["status"] == "creating"
        assert first["pid"] == first["state"]["pid"] == tb.state(name)["pid"]
        proc = tb("exec", name, "mkdir", "/tmp/e", check=False)
        assert proc.returncode != 0 and "Invalid cross-device link" in proc.stderr, proc
        second = agent.wait_for(2)[1]
        assert second["state"]["status"] == "running" and second["pid"] > 1
        # the box's own mkdir (before sleep) was answered by the agent too
        for _ in range(100):
            if "Invalid cross-device link" in tb("logs", name).stdout:
                break
            time.sleep(0.05)
        assert "Invalid cross-device link" in tb("logs", name).stdout
        assert len(agent.answered) >= 2
        assert tb("exec", name, "touch", "/tmp/f").returncode == 0
    finally:
        tb("destroy", "--force", *tb.names(), check=False)
        agent.close()


def test_notify_without_an_agent_listening_is_one_line(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    notify = ALLOW_ALL_BUT(
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}, listenerPath=str(tmp_path / "none")
    )
    line = tb.fails("run", "--bundle", str(make_bundle(linux={"seccomp": notify})), unique("n"))
    assert "linux.seccomp.listenerPath: cannot connect to" in line, line
    assert tb.names() == []


# ---- the default profile ------------------------------------------------------------------------


def test_default_box_refuses_the_dangerous_calls(tb: TB, probe_rootfs: Path) -> None:
    out = tb("run", "--rootfs", str(probe_rootfs), unique("d"), "probe", *DENIED_BY_DEFAULT)
    assert out.stdout.split("\n")[:-1] == [f"{name}: EPERM" for name in DENIED_BY_DEFAULT]
    status = tb("run", "--image", "busybox", unique("d"), "grep", "^Seccomp:", "/proc/self/status")
    assert status.stdout.split() == ["Seccomp:", "2"]
    # without the filter the same box can make a keyring, an io_uring, a user namespace
    free = tb(
        "run", "--security-opt", "seccomp=unconfined", "--rootfs", str(probe_rootfs),
        unique("u"), "probe", "keyctl", "add_key", "io_uring_setup", "unshare_user",
    )  # fmt: skip
    assert "EPERM" not in free.stdout, free.stdout


def test_default_profile_blocks_what_the_kernel_would_allow(
    tb: TB, tmp_path: Path, probe_rootfs: Path
) -> None:
    """With the capabilities the kernel asks for, only the profile stands in the way."""
    caps = ("CAP_DAC_READ_SEARCH", "CAP_BPF", "CAP_SYS_BOOT")
    confined = spec_bundle(tb, tmp_path, probe_rootfs, add_caps=caps)
    free = spec_bundle(tb, tmp_path, probe_rootfs, add_caps=caps, unconfined=True)
    names = ("open_by_handle_at", "bpf", "kexec_load", "keyctl", "io_uring_setup")
    out = run(tb, confined, "probe", *names).stdout
    assert out.split("\n")[:-1] == [f"{n}: EPERM" for n in names], out
    assert "EPERM" not in run(tb, free, "probe", *names).stdout


def test_unshare_user_then_mount_fails_in_a_default_box(tb: TB, busybox_rootfs: Path) -> None:
    script = "unshare -U -r -m mount -t tmpfs none /tmp && echo mounted"
    box = tb("run", "--rootfs", str(busybox_rootfs), unique("d"), "sh", "-c", script, check=False)
    assert "Operation not permitted" in box.stderr and "mounted" not in box.stdout, box
    free = tb(
        "run", "--security-opt", "seccomp=unconfined", "--rootfs", str(busybox_rootfs),
        unique("u"), "sh", "-c", script,
    )  # fmt: skip
    assert free.stdout == "mounted\n"


def test_busybox_tools_work_in_a_default_box(tb: TB, tmp_path: Path, busybox_rootfs: Path) -> None:
    out = tb("run", "--image", "busybox", unique("d"), "sh", "-c", "ps; top -b -n1 | head -1")
    assert "PID" in out.stdout and "Mem:" in out.stdout
    # lo is down in a box without a network: it needs CAP_NET_ADMIN to come up
    bundle = spec_bundle(tb, tmp_path, busybox_rootfs, add_caps=("CAP_NET_ADMIN",))
    script = (
        "ip link set lo up && ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok; "
        "mkdir -p /tmp/www && echo served > /tmp/www/index.html && "
        "httpd -p 127.0.0.1:8080 -h /tmp/www && wget -q -O- http://127.0.0.1:8080/; "
        "grep ^Seccomp: /proc/self/status"
    )
    proc = run(tb, bundle, "sh", "-c", script)
    assert proc.stdout.split("\n")[:-1] == ["ping-ok", "served", "Seccomp:\t2"], proc


def test_vi_works_in_a_default_box(tb: TB, busybox_rootfs: Path) -> None:
    argv = tb.argv(
        "run", "-t", "--rootfs", str(busybox_rootfs), unique("vi"), "sh", "-c",
        "vi /tmp/note; cat /tmp/note; grep ^Seccomp: /proc/self/status",
    )  # fmt: skip
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(24, 80), encoding="utf-8", timeout=15)
    try:
        child.expect("~")
        child.send("ihey")
        time.sleep(0.3)
        child.send("\x1b")
        time.sleep(0.5)  # vi reads ESC + a byte at once as an escape sequence
        child.send(":wq\r")
        child.expect(r"hey\r\nSeccomp:\t2")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_exec_gets_the_box_filter(tb: TB, tmp_path: Path, probe_rootfs: Path) -> None:
    name = unique("ex")
    tb("run", "-d", "--rootfs", str(probe_rootfs), name, "sleep", "1000")
    assert tb("exec", name, "probe", "keyctl").stdout == "keyctl: EPERM\n"
    status = tb("exec", name, "grep", "^Seccomp:", "/proc/self/status").stdout
    assert status.split() == ["Seccomp:", "2"]
    # --process replaces the box's process settings, never its filter
    process = {"args": ["probe", "add_key"], "cwd": "/", "env": ["PATH=/bin"]}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    assert tb("exec", "--process", str(path), name).stdout == "add_key: EPERM\n"


def test_exec_into_a_box_without_no_new_privs(tb: TB, make_bundle: Callable[..., Path]) -> None:
    deny = ALLOW_ALL_BUT({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    name = unique("ex")
    tb("run", "-d", "--bundle", str(make_bundle(["sleep", "1000"], linux={"seccomp": deny})), name)
    proc = tb("exec", name, "mkdir", "/tmp/x", check=False)
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr
    assert tb("exec", name, "touch", "/tmp/x", check=False).returncode == 0


def test_security_opt_file_in_docker_format(tb: TB, tmp_path: Path, busybox_rootfs: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "comment": "no dirs"},
            # not for a box without CAP_SYS_ADMIN: dropped
            {
                "names": ["rmdir"],
                "action": "SCMP_ACT_ERRNO",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    script = "mkdir /tmp/a || echo no-mkdir; rmdir /tmp && echo never; rmdir /none 2>&1; true"
    out = tb(
        "run", "--security-opt", f"seccomp={path}", "--rootfs", str(busybox_rootfs),
        unique("f"), "sh", "-c", script,
    ).stdout  # fmt: skip
    assert out.startswith("no-mkdir\n") and "No such file" in out


def test_compiled_default_profile_is_cached_privately(tb: TB, busybox_rootfs: Path) -> None:
    tb("run", "--rootfs", str(busybox_rootfs), unique("c"), "true")
    cache = tb.root / ".seccomp"
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".bpf"
    assert cache.stat().st_mode & 0o777 == 0o700
    assert files[0].stat().st_mode & 0o777 == 0o600
    before = files[0].stat().st_mtime_ns
    tb("run", "--rootfs", str(busybox_rootfs), unique("c"), "true")
    assert [f.stat().st_mtime_ns for f in cache.iterdir()] == [before]


# ---- bad profiles -------------------------------------------------------------------------------

BAD_PROFILES = [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction: unknown action"),
    (
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
        "linux.seccomp.architectures[0]: unknown architecture",
    ),
    (
        ALLOW_ALL_BUT(
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}],
            }
        ),
        "linux.seccomp.syscalls[0].args[0].op:",
    ),
    (
        ALLOW_ALL_BUT(
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
            }
        ),
        "linux.seccomp.syscalls[0].args[0].index: must be at most 5",
    ),
    (
        ALLOW_ALL_BUT(
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": "1", "op": "SCMP_CMP_EQ"}],
            }
        ),
        "linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer",
    ),
    (
        ALLOW_ALL_BUT({"names": "mkdir", "action": "SCMP_ACT_ERRNO"}),
        "syscalls[0].names: must be a list",
    ),
    (ALLOW_ALL_BUT({"names": ["mkdir"]}), "linux.seccomp.syscalls[0].action: is required"),
    (
        ALLOW_ALL_BUT({"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}),
        "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
    ),
    (
        ALLOW_ALL_BUT({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
        "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
    ),
    (
        {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock"},
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
    ),
    (
        ALLOW_ALL_BUT(
            {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/run/agent.sock"
        ),
        "SCMP_ACT_NOTIFY cannot be used for sendmsg",
    ),
    (ALLOW_ALL_BUT(listenerPath="agent.sock"), "linux.seccomp.listenerPath: must be an absolute"),
    (ALLOW_ALL_BUT(flags=["SECCOMP_FILTER_FLAG_FAST"]), "linux.seccomp.flags[0]:"),
    ("SCMP_ACT_ALLOW", "linux.seccomp: must be an object"),
]


@pytest.mark.parametrize(("profile", "message"), BAD_PROFILES)
def test_bad_profiles_are_one_line_and_leave_nothing(
    tb: TB, make_bundle: Callable[..., Path], profile: Any, message: str
) -> None:
    bundle = make_bundle(linux={"seccomp": profile})
    line = tb.fails("run", "--bundle", str(bundle), unique("bad"))
    assert message in line, line
    assert tb.names() == []


def test_bad_security_opts_are_one_line_and_leave_nothing(
    tb: TB, tmp_path: Path, busybox_rootfs: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"defaultAction": ')
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": 3}]})
    )
    cases = [
        ("seccomp=/nonexistent/profile.json", "cannot read /nonexistent/profile.json"),
        ("seccomp=", "must be seccomp=unconfined or seccomp=FILE"),
        ("apparmor=foo", "unknown option"),
        (f"seccomp={broken}", "invalid JSON at line 1"),
        (f"seccomp={wrong}", "syscalls[0].action: must be a string"),
        (f"seccomp={tmp_path}", "cannot read"),
    ]
    for opt, message in cases:
        for verb in ("run", "create"):
            line = tb.fails(
                verb, "--security-opt", opt, "--rootfs", str(busybox_rootfs), unique("b")
            )
            assert message in line, (opt, line)
    assert tb.names() == []
