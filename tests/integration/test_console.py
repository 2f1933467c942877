"""Terminal boxes on the real kernel: the pty from the box's devpts, the console keeper and
`tuibox attach`, `run -t` in the foreground, and OCI --console-socket."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import TB, unique

pytestmark = pytest.mark.root

PROMPT = "/ # "


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


class Consoles:
    """Terminal boxes and attach sessions of one test; every session is closed at the end."""

    def __init__(self, tb: TB, rootfs: Path) -> None:
        self.tb = tb
        self.rootfs = rootfs
        self.sessions: list[pexpect.spawn] = []

    def run(self, *cmd: str, name: str | None = None) -> str:
        name = name or unique("con")
        self.tb("run", "-d", "-t", "--rootfs", str(self.rootfs), name, *(cmd or ("/bin/sh",)))
        return name

    def attach(self, name: str, *opts: str, size: tuple[int, int] = (24, 80)) -> pexpect.spawn:
        argv = self.tb.argv("attach", *opts, name)
        child = pexpect.spawn(argv[0], argv[1:], dimensions=size, encoding="utf-8", timeout=15)
        self.sessions.append(child)
        return child

    def pid(self, name: str) -> int:
        return int(self.tb.state(name)["pid"])

    def status(self, name: str) -> str:
        return str(self.tb.state(name)["status"])

    def close(self) -> None:
        for child in self.sessions:
            child.close(force=True)


@pytest.fixture
def consoles(tb: TB, busybox_rootfs: Path) -> Iterator[Consoles]:
    c = Consoles(tb, busybox_rootfs)
    try:
        yield c
    finally:
        c.close()


def detach(child: pexpect.spawn) -> None:
    child.sendcontrol("]")
    child.expect("detached from box")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_detach_leaves_the_shell_running_and_reattach_replays_it(consoles: Consoles) -> None:
    name = consoles.run()
    a = consoles.attach(name)
    a.expect_exact(PROMPT)
    a.sendline("export X=42")
    a.expect_exact(PROMPT)
    detach(a)
    assert consoles.status(name) == "running"

    b = consoles.attach(name)
    b.expect_exact("export X=42")  # the earlier output, replayed from the keeper's ring
    b.sendline("echo value=$X")
    b.expect(r"\r\nvalue=42\r\n")
    detach(b)
    assert consoles.status(name) == "running"


def test_two_clients_attached_at_once_both_see_output(consoles: Consoles) -> None:
    name = consoles.run()
    a = consoles.attach(name)
    b = consoles.attach(name)
    a.expect_exact(PROMPT)
    b.expect_exact(PROMPT)
    a.sendline("echo from-a-$((6*7))")
    for child in (a, b):
        child.expect(r"\r\nfrom-a-42\r\n")
    b.sendline("echo from-b-$((6*8))")
    for child in (a, b):
        child.expect(r"\r\nfrom-b-48\r\n")
    detach(a)
    detach(b)


def test_box_exit_ends_attach_with_its_status_and_the_keeper_exits(
    tb: TB, consoles: Consoles
) -> None:
    name = consoles.run()
    init = consoles.pid(name)
    keeper = parent_of(init)
    assert not gone(keeper)
    with open(f"/proc/{keeper}/status") as f:
        rss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    assert rss_kb < 15 * 1024  # the goal; bench/keeper_bench.py has the figures
    a = consoles.attach(name)
    a.expect_exact(PROMPT)
    a.sendline("exit 7")
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 7
    wait_for(lambda: gone(keeper))
    assert not (tb.root / name / "console.sock").exists()
    row = next(r for r in json.loads(tb("list", "--format", "json").stdout) if r["id"] == name)
    assert row["status"] == "stopped" and row["exit_status"] == 7
    assert row["terminal"] is True and row["console"] == "keeper"
    # The console's output is in the box's log too.
    assert "exit 7" in tb("logs", name).stdout


def test_destroy_while_attached_ends_attach_and_the_keeper(tb: TB, consoles: Consoles) -> None:
    name = consoles.run()
    keeper = parent_of(consoles.pid(name))
    a = consoles.attach(name)
    a.expect_exact(PROMPT)
    tb("destroy", "--force", name)
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus in (137, 125), a.before  # SIGKILL'ed box, or the state already gone
    wait_for(lambda: gone(keeper))
    assert name not in tb.names()


def test_window_size_follows_the_attaching_terminal(consoles: Consoles) -> None:
    name = consoles.run()
    a = consoles.attach(name, size=(30, 100))
    a.expect_exact(PROMPT)
    a.sendline("tty; stty size")
    a.expect(r"(/dev/pts/\d+)\r\n(\d+) (\d+)\r\n")
    assert a.match.groups() == ("/dev/pts/0", "30", "100")  # the box's own devpts
    a.setwinsize(40, 120)
    time.sleep(0.3)  # SIGWINCH reaches attach, which sends the size to the keeper
    a.sendline("stty size")
    a.expect(r"\r\n(\d+) (\d+)\r\n")
    assert a.match.groups() == ("40", "120")
    detach(a)


def test_attach_as_the_tui_runs_it_under_spawn_local(consoles: Consoles) -> None:
    """The TUI's recipe (docs/ARCHITECTURE.md, Consoles): `attach --detach-keys=` on a pty
    from ptyspawn; sizes follow the pty; closing the pane (SIGHUP) only detaches."""
    import select
    import signal

    from tuibox.widgets.ptyspawn import set_window_size, spawn_local

    name = consoles.run()
    fd, pid = spawn_local(consoles.tb.argv("attach", "--detach-keys=", name), rows=27, columns=91)

    def read_until(needle: bytes) -> bytes:
        buf = b""
        deadline = time.monotonic() + 15
        while needle not in buf:
            assert time.monotonic() < deadline, buf
            if select.select([fd], [], [], 0.5)[0]:
                buf += os.read(fd, 65536)
        return buf

    try:
        os.write(fd, b"stty size\n")
        read_until(b"27 91\r\n")
        os.write(fd, b"\x1d")  # no detach keys: ctrl-] is the box's
        set_window_size(fd, 35, 101)
        time.sleep(0.3)
        os.write(fd, b"\x15stty size\n")
        read_until(b"35 101\r\n")
    finally:
        os.close(fd)
        os.kill(pid, signal.SIGHUP)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert consoles.status(name) == "running"


def test_detach_keys_are_configurable(consoles: Consoles) -> None:
    name = consoles.run()
    a = consoles.attach(name, "--detach-keys", "ctrl-p,ctrl-q")
    a.expect_exact(PROMPT)
    a.sendcontrol("]")  # not a detach key now: it goes to the shell
    a.sendcontrol("p")
    a.send("x")  # an unfinished sequence is passed on
    a.sendcontrol("u")
    a.sendline("echo still-$((1+1))")
    a.expect(r"\r\nstill-2\r\n")
    a.sendcontrol("p")
    a.sendcontrol("q")
    a.expect("detached from box")
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 0
    assert consoles.status(name) == "running"


def test_attach_before_start_sees_the_first_prompt(tb: TB, consoles: Consoles) -> None:
    name = unique("con")
    tb("create", "-t", "--rootfs", str(consoles.rootfs), name, "/bin/sh")
    a = consoles.attach(name)
    tb("start", name)
    a.expect_exact(PROMPT)
    a.sendline("exit 0")
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 0


def test_foreground_run_t_relays_a_pty_from_the_box(tb: TB, busybox_rootfs: Path) -> None:
    argv = tb.argv("run", "-t", "--rootfs", str(busybox_rootfs), unique("con"), "/bin/sh")
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(33, 99), encoding="utf-8", timeout=15)
    try:
        child.expect_exact(PROMPT)
        child.sendline("tty; stty size; stat -c %t:%T /dev/console; tty <&-; echo $?")
        child.expect(r"(/dev/pts/\d+)\r\n(\d+) (\d+)\r\n(\w+):(\w+)\r\n")
        path, rows, cols, major, minor = child.match.groups()
        assert (path, rows, cols) == ("/dev/pts/0", "33", "99")
        assert (int(major, 16), int(minor, 16)) == (136, 0)  # /dev/console is the pty slave
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 5


def test_console_socket_receives_a_working_master(
    tb: TB, busybox_rootfs: Path, tmp_path: Path
) -> None:
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: dict[str, object] = {}

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            got["msg"], got["fds"], _, _ = socket.recv_fds(conn, 1024, 4)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    name = unique("con")
    tb("create", "-t", "--console-socket", path, "--rootfs", str(busybox_rootfs), name, "/bin/sh")
    thread.join(10)
    server.close()
    fds = got["fds"]
    assert isinstance(fds, list) and len(fds) == 1, got
    master = fds[0]
    try:
        assert got["msg"] == b"/dev/ptmx"  # what runc sends with it
        # We kept nothing: no keeper socket, and the init's parent holds no pty.
        assert not (tb.root / name / "console.sock").exists()
        init = tb.state(name)["pid"]
        monitor_fds = os.listdir(f"/proc/{parent_of(init)}/fd")
        links = [os.readlink(f"/proc/{parent_of(init)}/fd/{fd}") for fd in monitor_fds]
        assert not [ln for ln in links if "pts" in ln], links
        tb("start", name)
        os.write(master, b"echo hello-$((40+2)); exit 4\n")
        out = b""
        deadline = time.monotonic() + 10
        while b"hello-42" not in out and time.monotonic() < deadline:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        assert b"hello-42" in out, out
    finally:
        os.close(master)
    assert tb("wait", name).stdout.split()[-1] == "4"


def test_bad_attach_requests_fail_with_one_line(tb: TB, consoles: Consoles) -> None:
    assert "does not exist" in tb.fails("attach", unique("nobox"))
    plain = unique("plain")
    tb("run", "-d", "--rootfs", str(consoles.rootfs), plain, "sleep", "1000")
    assert "has no terminal" in tb.fails("attach", plain)
    name = consoles.run("/bin/sh", "-c", "exit 3")
    wait_for(lambda: consoles.status(name) == "stopped")
    assert "it is stopped" in tb.fails("attach", name)
    assert "not a key" in tb.fails("attach", "--detach-keys", "ctrl-zz", plain)
    assert "needs -d" in tb.fails(
        "run", "-t", "--console-socket", "/nonexistent", "--rootfs", str(consoles.rootfs), "x"
    )
    assert "no terminal" in tb.fails(
        "create", "--console-socket", "/nonexistent", "--rootfs", str(consoles.rootfs), "x"
    )
    assert "no such file" in tb.fails(
        "create", "-t", "--console-socket", "/nonexistent", "--rootfs", str(consoles.rootfs), "x"
    )
    assert "x" not in tb.names()  # a failed create leaves nothing
