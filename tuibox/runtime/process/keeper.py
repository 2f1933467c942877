"""The console keeper of a detached terminal box (a dtach/conmon in a few hundred lines).

It runs in the box's monitor, the process that forked the init and reaps it
(`monitor.monitor_main`), so it needs no second Python: it is a fork of the CLI and imports nothing
heavy (select, _socket; no selectors, no socket, no textual). It:

- receives the pty master from the init (console.py `ConsoleSetup.in_init`);
- keeps the last 64 KiB of output in a ring and appends all of it to the box's capped log
  (`runtime/logfile.py`: under the data root, rotated at the box's --log-max-size);
- serves clients on <state>/console.sock (console.py has the frame format): each new client
  first gets the ring, then live output; input from any client goes to the pty, a resize
  frame sets the pty's window size (last one wins, like docker);
- when the init exits: drains the pty, writes <state>/exit, tells every client the status,
  removes console.sock and returns.

It never blocks on a client: output a client cannot take is queued, and a client that falls
more than CLIENT_BACKLOG behind is dropped (it can attach again and gets the ring). Input is
taken from clients only while the pty accepts it, so a box that stops reading its terminal
slows the typist, not the keeper.
"""

from __future__ import annotations

import _socket
import errno
import os
import select

from tuibox.runtime import console
from tuibox.runtime import state as st
from tuibox.runtime.linux.proc import exit_code
from tuibox.runtime.logfile import CappedLog
from tuibox.runtime.process.exec import set_size

CLIENT_BACKLOG = 4 * 1024 * 1024
INPUT_BACKLOG = 64 * 1024
EXIT_FLUSH_SECONDS = 2.0
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


class _Client:
    __slots__ = ("fd", "mask", "out", "reader")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.out = bytearray()
        self.reader = console.FrameReader()
        self.mask = 0


class Keeper:
    def __init__(
        self,
        master: int | None,
        listen_fd: int,
        init_pid: int,
        box_dir: str,
        log_path: str = "",
        log_max_size: int = -1,
    ) -> None:
        self.master = master
        self.listener = _socket.socket(fileno=listen_fd)
        self.listener.setblocking(False)
        self.init_pid = init_pid
        self.box_dir = box_dir
        self.ring = bytearray()
        self.clients: dict[int, _Client] = {}
        self.to_master = bytearray()
        self.ep = select.epoll()
        self.master_mask = 0
        # Never raises, and drops output it cannot write: a full disk keeps the console up.
        self.log = CappedLog(log_path, log_max_size) if log_path else None

    # ---- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        pidfd = os.pidfd_open(self.init_pid)
        self.ep.register(pidfd, _IN)
        self.ep.register(self.listener.fileno(), _IN)
        if self.master is not None:
            os.set_blocking(self.master, False)
            self.ep.register(self.master, _IN)
            self.master_mask = _IN
        try:
            while True:
                try:
                    events = self.ep.poll()
                except InterruptedError:
                    continue
                exited = False
                for fd, ev in events:
                    if fd == pidfd:
                        exited = True
                    elif fd == self.master:
                        self._on_master(ev)
                    elif fd == self.listener.fileno():
                        self._accept()
                    else:
                        client = self.clients.get(fd)
                        if client is not None:
                            self._on_client(client, ev)
                if exited:
                    return self._finish()
        finally:
            os.close(pidfd)

    # ---- the pty ---------------------------------------------------------------------------

    def _master_interest(self) -> None:
        if self.master is None:
            return
        mask = _IN | (_OUT if self.to_master else 0)
        if mask != self.master_mask:
            self.ep.modify(self.master, mask)
            self.master_mask = mask

    def _on_master(self, ev: int) -> None:
        if ev & _OUT and self.to_master:
            self._write_master()
        if ev & (_IN | select.EPOLLHUP | select.EPOLLERR):
            self._read_master()

    def _read_master(self, limit: int = 1) -> None:
        """Read up to `limit` chunks; on EIO (no slave left open) the pty is done."""
        assert self.master is not None
        for _ in range(limit):
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            if not data:
                self._close_master()
                return
            self._output(data)

    def _write_master(self) -> None:
        assert self.master is not None
        was_full = len(self.to_master) >= INPUT_BACKLOG
        try:
            del self.to_master[: os.write(self.master, self.to_master)]
        except BlockingIOError:
            pass
        except OSError:
            self.to_master.clear()
        self._master_interest()
        if was_full and len(self.to_master) < INPUT_BACKLOG:
            for c in list(self.clients.values()):
                self._client_interest(c)

    def _close_master(self) -> None:
        if self.master is not None:
            self.ep.unregister(self.master)
            os.close(self.master)
            self.master = None
            self.master_mask = 0
            self.to_master.clear()

    def _output(self, data: bytes) -> None:
        ring = self.ring
        ring += data
        if len(ring) > console.RING_SIZE:
            del ring[: len(ring) - console.RING_SIZE]
        if self.log is not None:
            self.log.write(data)
        packet = console.frame(console.DATA, data)
        for c in list(self.clients.values()):
            self._send(c, packet)

    # ---- clients ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                # _socket's accept: the socket module (enum, selectors) stays out of here.
                fd, _ = self.listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. EMFILE: the client sees its connection closed
            os.set_inheritable(fd, False)
            os.set_blocking(fd, False)
            client = _Client(fd)
            self.clients[fd] = client
            self.ep.register(fd, 0)
            self._client_interest(client)
            if self.ring:
                self._send(client, console.frame(console.DATA, bytes(self.ring)))

    def _client_interest(self, c: _Client) -> None:
        if c.fd not in self.clients:
            return
        mask = (_IN if len(self.to_master) < INPUT_BACKLOG else 0) | (_OUT if c.out else 0)
        if mask != c.mask:
            self.ep.modify(c.fd, mask)
            c.mask = mask

    def _send(self, c: _Client, packet: bytes) -> None:
        if not c.out:
            try:
                sent = os.write(c.fd, packet)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(c)
                return
            if sent == len(packet):
                return
            packet = packet[sent:]
        c.out += packet
        if len(c.out) > CLIENT_BACKLOG:
            self._drop(c)
            return
        self._client_interest(c)

    def _on_client(self, c: _Client, ev: int) -> None:
        if ev & _OUT and c.out:
            try:
                del c.out[: os.write(c.fd, c.out)]
            except BlockingIOError:
                pass
            except OSError:
                self._drop(c)
                return
            self._client_interest(c)
        if ev & (_IN | select.EPOLLHUP | select.EPOLLERR):
            try:
                data = os.read(c.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._drop(c)  # detached: the box keeps running
                return
            for tag, payload in c.reader.feed(data):
                if tag == console.DATA and self.master is not None:
                    self.to_master += payload
                elif tag == console.RESIZE and self.master is not None:
                    size = console.parse_size(payload)
                    if size is not None:
                        try:
                            set_size(self.master, *size)
                        except OSError:
                            pass
                # other tags: from a newer client; ignored
            if self.to_master:
                self._write_master()

    def _drop(self, c: _Client) -> None:
        if self.clients.pop(c.fd, None) is None:
            return
        self.ep.unregister(c.fd)
        os.close(c.fd)

    # ---- the end ---------------------------------------------------------------------------

    def _finish(self) -> int:
        status = 0
        while True:
            try:
                status = os.waitpid(self.init_pid, 0)[1]
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        code = exit_code(status)
        # What the box wrote last is still in the pty: read it before telling anyone.
        while self.master is not None:
            before = len(self.ring)
            self._read_master(limit=64)
            if self.master is None or len(self.ring) == before:
                break
        self._close_master()
        # The status is on disk before any client hears of it, so `list` agrees with attach.
        _record_exit(self.box_dir, code)
        self.ep.unregister(self.listener.fileno())
        try:
            os.unlink(os.path.join(self.box_dir, console.SOCKET_NAME))
        except OSError:
            pass
        self.listener.close()
        goodbye = console.frame(console.EXIT, str(code).encode())
        for c in list(self.clients.values()):
            self._send(c, goodbye)
        self._flush_clients()
        for c in list(self.clients.values()):
            self._drop(c)
        if self.log is not None:
            self.log.close()
        self.ep.close()
        return code

    def _flush_clients(self) -> None:
        """Give clients a moment to take their last output and the exit frame."""
        import time

        deadline = time.monotonic() + EXIT_FLUSH_SECONDS
        while any(c.out for c in self.clients.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for fd, ev in self.ep.poll(left):
                c = self.clients.get(fd)
                if c is None:
                    continue
                if ev & _OUT:
                    self._on_client(c, _OUT)
                elif ev & (select.EPOLLHUP | select.EPOLLERR):
                    self._drop(c)
                else:
                    # Input after the end: nothing to send it to; stop listening for it.
                    c.mask = _OUT if c.out else 0
                    self.ep.modify(c.fd, c.mask)


def keep_console(
    source_fd: int,
    listen_fd: int,
    init_pid: int,
    box_dir: str,
    log_path: str = "",
    log_max_size: int = -1,
) -> int:
    """Keep the console of the box whose init is our child; returns its exit status once it
    has exited and the status is recorded. Never raises: if the keeper itself breaks, it
    still reaps the init and records the exit, as a plain monitor would."""
    master = None
    try:
        master = console.recv_fd(source_fd)  # None: the init died before its console step
    except OSError:
        pass
    os.close(source_fd)
    try:
        return Keeper(master, listen_fd, init_pid, box_dir, log_path, log_max_size).run()
    except Exception:
        code = 1
        try:
            code = exit_code(os.waitpid(init_pid, 0)[1])
        except ChildProcessError:
            code = st.read_exit_status(box_dir) or 0
        if st.read_exit_status(box_dir) is None:
            _record_exit(box_dir, code)
        return code


def _record_exit(box_dir: str, code: int) -> None:
    st.record_exit(box_dir, code, attempts=120)
