"""Consoles of terminal boxes: the pty, where its master goes, and the attach protocol.

A box with `process.terminal` gets a pty from *its own* devpts (mounted with `newinstance`):
the init opens /dev/ptmx after pivot_root, makes the slave its stdin, stdout, stderr and
controlling terminal, bind-mounts it on /dev/console, and sends the master out over a unix
socket with SCM_RIGHTS (as runc does). The master then belongs to exactly one of:

    keeper      a detached box (`create -t`, `run -d -t`): the monitor that reaps the init
                keeps the console (keeper.py) and serves attach clients on <state>/console.sock
    socket      `--console-socket PATH` (OCI): the connection we made to PATH gets it; we keep
                nothing, another manager owns the console
    foreground  `run -t`: the CLI relays it to the user's terminal (relay.py)

Protocol on console.sock, both ways, in frames: one tag byte, a big-endian uint16 length, the
payload. `d` carries terminal bytes (keys in, output out), `r` (client to keeper) a window
size as two uint16 (rows, columns), `x` (keeper to client, the last frame) the box's exit
status in ASCII. A new client first gets the last 64 KiB of output, then live output.

This module is imported (as the `console` stage) only when a box asks for a terminal, always
before the fork: the init needs `_socket` after pivot_root, when the host's library is gone.
"""

from __future__ import annotations

import _signal
import _socket
import errno
import fcntl
import os
import select
import stat
import struct
import termios

from tuibox.runtime.errors import SpecError, TuiboxError
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux.mounts import fresh_dev
from tuibox.runtime.process.exec import get_size, set_size
from tuibox.runtime.stages.base import Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from socket import socket

    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.process.relay import Recorder
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.stages.base import SetupContext

SOCKET_NAME = "console.sock"
RING_SIZE = 64 * 1024
DEFAULT_SIZE = (24, 80)  # rows, columns until a client says otherwise

DATA = 0x64  # b"d"
RESIZE = 0x72  # b"r"
EXIT = 0x78  # b"x"
_HEADER = struct.Struct(">BH")
_SIZE = struct.Struct(">HH")
MAX_PAYLOAD = 0xFFFF

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441
PTMX_RDEV = os.makedev(5, 2)
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the NUL


# ---- frames ----------------------------------------------------------------------------------


def frame(tag: int, payload: bytes = b"") -> bytes:
    """One frame; data longer than a frame holds is split into several."""
    if len(payload) <= MAX_PAYLOAD:
        return _HEADER.pack(tag, len(payload)) + payload
    return b"".join(
        _HEADER.pack(tag, len(chunk)) + chunk
        for chunk in (payload[i : i + MAX_PAYLOAD] for i in range(0, len(payload), MAX_PAYLOAD))
    )


def resize_frame(rows: int, cols: int) -> bytes:
    return frame(RESIZE, _SIZE.pack(rows, cols))


def parse_size(payload: bytes) -> tuple[int, int] | None:
    if len(payload) != _SIZE.size:
        return None
    rows, cols = _SIZE.unpack(payload)
    return (rows, cols) if rows and cols else None


class FrameReader:
    """Turns a byte stream into (tag, payload) frames, however the reads split it."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= 3:
            tag, size = _HEADER.unpack_from(buf, pos)
            if len(buf) - pos - 3 < size:
                break
            out.append((tag, bytes(buf[pos + 3 : pos + 3 + size])))
            pos += 3 + size
        del buf[:pos]
        return out


# ---- the client side (attach, the TUI) -------------------------------------------------------


def connect(root: str | os.PathLike[str] | None, name: str) -> socket:
    """A connected, blocking socket to the console keeper of box `name`.

    Reads bring frames (use FrameReader); write keys with send_input, sizes with send_resize.
    Raises BoxNotFound, InvalidState (not created/running/paused) or TuiboxError (no
    terminal, or its console went elsewhere) with a one-line message."""
    import socket as socket_mod

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.guards import check

    rt = Runtime(root)
    record = rt.get(name)
    if not record.terminal:
        raise TuiboxError(f"box {name!r} has no terminal to attach to (create it with -t)")
    check("attach", name, record.status)
    mode = record.extra.get("console")
    if mode != "keeper":
        where = "--console-socket" if mode == "socket" else "the 'run' that started it"
        raise TuiboxError(f"box {name!r} has no console keeper: its terminal belongs to {where}")
    path = os.path.join(rt.root.box_dir(name), SOCKET_NAME)
    sock = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
    try:
        _with_sun_path(path, sock.connect)
    except OSError as e:
        sock.close()
        status = rt.get(name).status
        if status == "stopped":  # it ended between the status check and the connect
            check("attach", name, status)
        reason = os.strerror(e.errno or 0).lower()
        raise TuiboxError(f"box {name!r}: its console keeper does not answer: {reason}") from None
    return sock


def send_input(sock: _socket.socket, data: bytes) -> None:
    sock.sendall(frame(DATA, data))


def send_resize(sock: _socket.socket, rows: int, cols: int) -> None:
    """Set the box's window size; the box's foreground programs get SIGWINCH."""
    sock.sendall(resize_frame(rows, cols))


# ---- unix sockets and SCM_RIGHTS -------------------------------------------------------------


def _with_sun_path(path: str, op: Callable[[str], object]) -> None:
    """bind/connect `path`, even when it is longer than sun_path holds (deep test roots):
    the directory is then reached through /proc/self/fd of an O_PATH fd."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        op(path)
        return
    d = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        op(f"/proc/self/fd/{d}/{os.path.basename(path)}")
    finally:
        os.close(d)


def send_fd(sock_fd: int, fd: int, payload: bytes = b"/dev/ptmx") -> None:
    """Send `fd` over the unix socket `sock_fd`. The payload is what runc sends (the file's
    name): console-socket servers read at least one byte with the descriptor."""
    s = _socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        s.detach()


def recv_fd(sock_fd: int) -> int | None:
    """The first descriptor the peer sends, or None at end-of-file."""
    s = _socket.socket(fileno=sock_fd)
    try:
        while True:
            try:
                data, ancdata, _flags, _addr = s.recvmsg(
                    4096, _socket.CMSG_SPACE(16 * 4), _socket.MSG_CMSG_CLOEXEC
                )
            except InterruptedError:
                continue
            fds: list[int] = []
            for level, kind, raw in ancdata:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    usable = len(raw) - len(raw) % 4
                    fds += struct.unpack(f"{usable // 4}i", raw[:usable])
            if fds:
                for extra in fds[1:]:
                    os.close(extra)
                return fds[0]
            if not data:
                return None
    finally:
        s.detach()


def listen(path: str) -> int:
    """A listening unix socket at `path`, for the owner only; returns its fd."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        _with_sun_path(path, s.bind)
        os.chmod(path, 0o600)
        s.listen(16)
    except BaseException:
        s.close()
        raise
    return s.detach()


def connect_console_socket(path: str) -> int:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        _with_sun_path(path, s.connect)
    except OSError as e:
        s.close()
        raise SpecError(f"--console-socket {path}: {os.strerror(e.errno or 0).lower()}") from None
    return s.detach()


def _close(fd: int) -> int:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    return -1


# ---- creating a terminal box -----------------------------------------------------------------


class ConsoleSetup:
    """One box's console while it is being created; shared by the CLI, monitor and init
    (they are forks of one process, so each sees the fds it inherited).

    init_fd     the init's end: it sends the master here (a socketpair end, or the
                connection to --console-socket)
    local_fd    the other end of the pair: the monitor's (keeper) or the CLI's (foreground)
    listen_fd   console.sock, bound by the CLI so it exists when `create` returns"""

    def __init__(
        self,
        mode: str,
        init_fd: int,
        local_fd: int,
        listen_fd: int,
        size: tuple[int, int],
        bind_console: bool,
    ) -> None:
        self.mode = mode
        self.init_fd = init_fd
        self.local_fd = local_fd
        self.listen_fd = listen_fd
        self.size = size
        self.bind_console = bind_console

    def monitor_fds(self) -> tuple[int, int] | None:
        """(master source, listener) when the monitor keeps this console, else None."""
        if self.mode == "keeper":
            return self.local_fd, self.listen_fd
        return None

    def close_in_parent(self) -> None:
        """After the fork: the CLI lets go of what the init and the monitor own, so the
        monitor's recv_fd sees end-of-file if the init dies before sending the master."""
        self.init_fd = _close(self.init_fd)
        if self.mode == "keeper":
            self.local_fd = _close(self.local_fd)
            self.listen_fd = _close(self.listen_fd)

    def close_all(self) -> None:
        self.init_fd = _close(self.init_fd)
        self.local_fd = _close(self.local_fd)
        self.listen_fd = _close(self.listen_fd)

    # ---- in the init, after pivot_root -------------------------------------------------------

    def in_init(self, plan: InitPlan) -> None:
        """Open a pty in the box's devpts, hand the master out, take the slave as stdio and
        controlling terminal. Runs as root before the user step (the slave is chowned)."""
        master = _open_ptmx()
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            slave: int = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            (n,) = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))
            set_size(master, *self.size)
            user = plan.spec.process.user
            # What runc's fixStdioPermissions does: the box's user owns its terminal.
            os.fchown(slave, user.uid, user.gid)
            if self.bind_console:
                fd = os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                os.close(fd)
                sc.mount(f"/dev/pts/{n}", "/dev/console", None, sc.MS_BIND, None)
            send_fd(self.init_fd, master)
        finally:
            os.close(master)
        self.init_fd = _close(self.init_fd)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        os.close(slave)

    # ---- foreground run -t, in the CLI ------------------------------------------------------

    def receive_master(self) -> int | None:
        master = recv_fd(self.local_fd) if self.local_fd >= 0 else None
        self.local_fd = _close(self.local_fd)
        return master


def _open_ptmx() -> int:
    # /dev/ptmx is the box's own (a symlink to pts/ptmx in a fresh /dev); O_NONBLOCK so a
    # fifo planted there cannot hang us, then the node is checked to be a ptmx.
    fd = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV:
        os.close(fd)
        raise OSError(errno.ENODEV, "/dev/ptmx in the box is not a pty multiplexer")
    os.set_blocking(fd, True)
    return fd


def _wanted(req: CreateRequest) -> bool:
    return "console" in req.options


def _prepare(ctx: SetupContext) -> None:
    req = ctx.request
    process = req.spec.process
    opts = req.options.get("console") or {}
    socket_path: str | None = opts.get("socket")
    if not process.terminal:
        raise SpecError(
            "--console-socket: the box has no terminal (use -t or process.terminal: true)"
        )
    if process.console_size is not None:
        size = process.console_size
    elif not req.detach:
        size = get_size(0) or get_size(1) or DEFAULT_SIZE
    else:
        size = DEFAULT_SIZE
    # /dev/console is bound only in a /dev the box got fresh from us (as runc does).
    bind_console = fresh_dev(ctx.plan.spec.mounts)
    if socket_path:
        init_end = connect_console_socket(socket_path)
        setup = ConsoleSetup("socket", init_end, -1, -1, size, bind_console)
        ctx.undo.callback(setup.close_all)
    else:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        local, init_end = a.detach(), b.detach()
        mode = "keeper" if req.detach else "foreground"
        setup = ConsoleSetup(mode, init_end, local, -1, size, bind_console)
        ctx.undo.callback(setup.close_all)  # before listen() can fail: the pair is closed too
        if req.detach:
            setup.listen_fd = listen(os.path.join(ctx.box_dir, SOCKET_NAME))
    ctx.plan.console = setup
    ctx.plan.keep_fds.add(setup.init_fd)
    ctx.record.extra["console"] = setup.mode
    if setup.mode == "foreground":
        _FOREGROUND[req.name] = setup
        ctx.undo.callback(_FOREGROUND.pop, req.name, None)


def _attach(ctx: SetupContext) -> None:
    if ctx.plan.console is not None:
        ctx.plan.console.close_in_parent()


STAGE = Stage("console", _wanted, prepare=_prepare, attach=_attach)

# name -> console of a foreground `run -t` in this process, until run() relays it
_FOREGROUND: dict[str, ConsoleSetup] = {}


def relay_foreground(name: str, pid: int) -> int | None:
    """`run -t`: relay the user's terminal to the box's until the init (our child) exits.
    None when there is no console to relay (the caller then just waits)."""
    setup = _FOREGROUND.pop(name, None)
    master = setup.receive_master() if setup is not None else None
    if master is None:
        return None
    from tuibox.runtime.process.exec import ExecHandle
    from tuibox.runtime.process.relay import relay

    return relay(ExecHandle(pid, master, name))


# ---- attach: the user's terminal <-> console.sock --------------------------------------------

DETACHED = -1  # the user typed the detach keys
HUNG_UP = -2  # our terminal went away (SIGHUP, SIGTERM, SIGINT from outside, EIO)


def parse_detach_keys(text: str) -> bytes:
    """docker's --detach-keys: comma-separated keys, each a character or ctrl-<c>
    (ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_). Empty: none."""
    out = bytearray()
    for item in text.split(",") if text else []:
        key = item.strip()
        low = key.lower()
        if low.startswith("ctrl-") and len(key) == 6:
            c = low[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in "@[\\]^_":
                out.append(ord(c) - 0x40)
                continue
        elif len(key) == 1 and key.isprintable():
            out.append(ord(key))
            continue
        raise SpecError(
            f"--detach-keys {text!r}: {item!r} is not a key (use a character or ctrl-X)"
        )
    return bytes(out)


class _DetachScanner:
    """Finds the detach sequence in typed input; bytes of an unfinished prefix are held and
    sent on once the next key shows they were not the sequence."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send, whether the sequence was completed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[: self.matched]
                self.matched = 0
                if b == self.keys[0]:
                    self.matched = 1
                    continue
            out.append(b)
        return bytes(out), False


def attach_terminal(
    sock: _socket.socket,
    detach_keys: bytes = b"\x1d",
    stdin: int = 0,
    stdout: int = 1,
    recorder: Recorder | None = None,
) -> int | None:
    """Relay until the box exits (its exit status), the user detaches (DETACHED), our
    terminal goes away (HUNG_UP), or the keeper goes away without a word (None).

    Our terminal is put in raw mode (every key, ctrl-c included, reaches the box's terminal,
    whose line discipline makes signals of them); our window size is sent at once and on
    every SIGWINCH. SIGHUP/SIGTERM/SIGINT from outside (a closed window, a TUI closing its
    pane) detach: attaching never stops the box. A `recorder` is handed the box's output and
    our window size changes as they pass (`attach --record`)."""
    from tuibox.runtime.process.relay import write_all

    raw = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if raw else None
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    relayed = (_signal.SIGWINCH, _signal.SIGHUP, _signal.SIGTERM, _signal.SIGINT)
    old_handlers = {s: _signal.getsignal(s) for s in relayed}
    old_wakeup = _signal.set_wakeup_fd(wake_w)
    for s in relayed:
        _signal.signal(s, _noop)  # a Python handler, so the wakeup fd gets the signal number
    sock.setblocking(False)
    sfd = sock.fileno()
    scanner = _DetachScanner(detach_keys)
    reader = FrameReader()
    pending = bytearray(_size_frame(stdin, stdout))
    stdin_open = True
    try:
        if raw:
            import tty

            tty.setraw(stdin, termios.TCSANOW)
        while True:
            readers = [sfd, wake_r] + ([stdin] if stdin_open and len(pending) < 65536 else [])
            writers = [sfd] if pending else []
            try:
                ready_r, ready_w, _ = select.select(readers, writers, [])
            except InterruptedError:
                continue
            if wake_r in ready_r:
                signals = os.read(wake_r, 256)
                if any(s != _signal.SIGWINCH for s in signals):
                    return HUNG_UP
                pending += _size_frame(stdin, stdout)
                size = get_size(stdin) or get_size(stdout)
                if recorder is not None and size is not None:
                    recorder.resize(*size)
            if sfd in ready_r:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    return None
                for tag, payload in reader.feed(data or b""):
                    if tag == DATA:
                        if recorder is not None:
                            recorder.output(payload)
                        try:
                            write_all(stdout, payload)
                        except OSError:
                            return HUNG_UP  # our terminal is gone (EIO): the box stays
                    elif tag == EXIT:
                        return int(payload or b"1")
            if stdin in ready_r:
                try:
                    data = os.read(stdin, 65536)
                except OSError:
                    data = b""
                if not data:
                    stdin_open = False  # e.g. < /dev/null: keep showing the output
                else:
                    keys, detach = scanner.feed(data)
                    if keys:
                        pending += frame(DATA, keys)
                    if detach:
                        sock.setblocking(True)
                        sock.sendall(pending)
                        return DETACHED
            if pending and (sfd in ready_w or not writers):
                try:
                    del pending[: sock.send(pending)]
                except BlockingIOError:
                    pass
                except OSError:
                    return None
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            except (termios.error, OSError):
                pass  # the terminal was hung up (a closed pane): nothing to restore
        _signal.set_wakeup_fd(old_wakeup)
        for s, h in old_handlers.items():
            _signal.signal(s, h)
        os.close(wake_r)
        os.close(wake_w)


def _noop(_signum: int, _frame: object) -> None:
    pass


def _size_frame(stdin: int, stdout: int) -> bytes:
    size = get_size(stdin) or get_size(stdout)
    return resize_frame(*size) if size is not None else b""
