"""Lifecycle verbs as a small state machine: refresh -> guard -> act -> save.

`Runtime` is the one facade the CLI and the TUI call. Creating a box forks the init (see
init.py) from this single-threaded process. A detached box (create, run -d) gets a monitor
process between the caller and the init: it stays the init's parent, reaps it and records the
exit status, so `wait`, `list` and the TUI can report it after the CLI has gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tuibox.runtime import init as box_init
from tuibox.runtime import state as st
from tuibox.runtime.errors import InvalidState, SpecError, TuiboxError
from tuibox.runtime.linux import proc
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.spec_model import Spec
from tuibox.runtime.sync import Channel, error_from_message

OCI_VERSION = "1.0.2"

# Which statuses allow which verb (the TUI greys keys out with the same table).
GUARDS: dict[str, frozenset[str]] = {
    "start": frozenset({"created"}),
    "kill": frozenset({"created", "running", "paused"}),
    "stop": frozenset({"created", "running", "paused"}),
    "destroy": frozenset({"created", "stopped"}),
    "destroy-force": frozenset({"creating", "created", "running", "paused", "stopped"}),
    "pause": frozenset({"running"}),
    "resume": frozenset({"paused"}),
    "exec": frozenset({"running"}),
}


def can(action: str, status: str) -> bool:
    return status in GUARDS.get(action, frozenset())


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class CreateRequest:
    """A box to make: the loaded spec plus what the command line adds."""

    name: str
    spec: Spec
    detach: bool = True  # output to box.log, a monitor reaps the init
    image: str | None = None
    overlay: tuple[str, str] | None = None  # (image rootfs, box dir) -> overlayfs root
    # Free-form options for later stages (network, ports, cgroup limits), keyed by stage.
    options: dict[str, Any] = field(default_factory=dict)
    stdio: tuple[int, int, int] | None = None  # explicit stdio for the box (foreground run)


@dataclass
class SetupContext:
    """Passed to setup stages: what they may read and where they register undo steps."""

    runtime: Runtime
    request: CreateRequest
    record: st.BoxRecord
    box_dir: Path
    plan: box_init.InitPlan
    undo: ExitStack
    pid: int = 0


# A stage hooks into create (prepare before the fork, attach once the init's namespaces
# exist) and destroy (teardown). Cgroups and networking register here.
@dataclass(frozen=True)
class Stage:
    name: str
    wanted: Callable[[CreateRequest], bool]
    prepare: Callable[[SetupContext], None] | None = None
    attach: Callable[[SetupContext], None] | None = None
    teardown: Callable[[Runtime, st.BoxRecord, Path], None] | None = None


STAGES: list[Stage] = []


def register_stage(stage: Stage) -> None:
    STAGES[:] = [s for s in STAGES if s.name != stage.name] + [stage]


class Runtime:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = st.StateRoot(root)
        self._channels: dict[str, Channel] = {}

    # ---- queries -------------------------------------------------------------------------

    def get(self, name: str) -> st.BoxRecord:
        """The box's record with its status refreshed from kernel facts."""
        record = self.root.read(name)
        return self._refresh(record)

    def _refresh(self, record: st.BoxRecord) -> st.BoxRecord:
        d = self.root.box_dir(record.id)
        status = st.live_status(record, d)
        if status == "stopped" and record.exit_status is None:
            record.exit_status = st.read_exit_status(d)
        if status == "stopped":
            record.pid = 0
        record.status = status
        return record

    def list(self) -> list[st.BoxRecord]:
        out = []
        for name in self.root.names():
            try:
                out.append(self.get(name))
            except TuiboxError:
                continue  # a box being created or destroyed right now
        return out

    def state(self, name: str) -> dict[str, Any]:
        r = self.get(name)
        return {
            "ociVersion": OCI_VERSION,
            "id": r.id,
            "status": r.status,
            "pid": r.pid,
            "bundle": r.bundle,
            "annotations": r.annotations,
        }

    # ---- create / start ------------------------------------------------------------------

    def create(self, req: CreateRequest) -> st.BoxRecord:
        """Set the box up completely; its program waits for `start`."""
        spec = req.spec
        rootfs = str(spec.root.path)
        if req.overlay is None and not os.path.isdir(rootfs):
            raise SpecError(f"config.json: root.path: no such directory: {rootfs}")
        if spec.hostname and spec.namespace("uts") is None:
            raise SpecError("config.json: hostname: needs a uts namespace of its own")
        stages = [s for s in STAGES if s.wanted(req)]
        d = self.root.make_box_dir(req.name)
        with ExitStack() as undo:
            undo.callback(self.root.remove, req.name)
            record = st.BoxRecord(
                id=req.name,
                status="creating",
                bundle=str(spec.bundle),
                rootfs=rootfs,
                created=now_iso(),
                command=list(spec.process.args),
                hostname=spec.hostname or req.name,
                terminal=spec.process.terminal,
                image=req.image,
                namespaces=[n.type for n in spec.linux.namespaces],
                annotations=dict(spec.annotations),
                own_pid_ns=_new_ns(spec, "pid"),
                detached=req.detach,
            )
            plan = self._plan(req, record, d)
            undo.callback(_close_quietly, plan.state_dir_fd)
            ctx = SetupContext(self, req, record, d, plan, undo)
            for stage in stages:
                if stage.prepare is not None:
                    stage.prepare(ctx)
            self.root.write(record)
            os.mkfifo(d / "exec.fifo", 0o600)
            with self.root.locked(req.name):
                ctx.pid = self._launch(ctx, stages)
            undo.pop_all()
        return record

    def _plan(self, req: CreateRequest, record: st.BoxRecord, d: Path) -> box_init.InitPlan:
        spec = req.spec
        rootfs = record.rootfs
        overlay = None
        if req.overlay is not None:
            lower, _ = req.overlay
            for sub in ("upper", "work", "rootfs"):
                (d / sub).mkdir(mode=0o755, exist_ok=True)
            rootfs = str(d / "rootfs")
            record.rootfs = rootfs
            overlay = f"lowerdir={lower},upperdir={d / 'upper'},workdir={d / 'work'}"
        hostname = spec.hostname or req.name
        (d / "hostname").write_text(hostname + "\n")
        (d / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.1.1\t{hostname}\n"
        )
        flags = 0
        join: list[tuple[str, str]] = []
        for ns in spec.linux.namespaces:
            if ns.type == "pid" or ns.type not in sc.NAMESPACE_FLAGS:
                continue
            if ns.path:
                join.append((ns.type, ns.path))
            else:
                flags |= sc.NAMESPACE_FLAGS[ns.type]
        return box_init.InitPlan(
            spec=spec,
            name=req.name,
            rootfs=rootfs,
            state_dir_fd=os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC),
            stdio=req.stdio,
            overlay=overlay,
            etc_files={"/etc/hostname": str(d / "hostname"), "/etc/hosts": str(d / "hosts")},
            unshare_flags=flags,
            join=join,
        )

    def _launch(self, ctx: SetupContext, stages: list[Stage]) -> int:
        """Fork the init (through a monitor when detached) and walk it to `ready`."""
        req, record, d = ctx.request, ctx.record, ctx.box_dir
        parent, child = Channel.pair()
        ctx.undo.callback(parent.close)
        if req.detach:
            log = os.open(
                d / "box.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640
            )
            null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            ctx.plan.stdio = (null, log, log)
            try:
                pid = self._fork_monitor(ctx, child)
            finally:
                os.close(log)
                os.close(null)
        else:
            pid = _spawn_init(ctx.plan, child, parent)
        child.close()
        ctx.undo.callback(_kill_and_reap, pid, not req.detach)
        record.pid = pid
        record.starttime = proc.start_time(pid)
        ctx.pid = pid
        parent.expect("namespaces")
        for stage in stages:
            if stage.attach is not None:
                stage.attach(ctx)
        parent.send("continue")
        parent.expect("ready")
        # Kept so `run` can learn of a failure between start and exec (EOF means exec'd).
        self._channels[record.id] = parent
        record.status = "created"
        self.root.write(record)
        return pid

    def _fork_monitor(self, ctx: SetupContext, child: Channel) -> int:
        r, w = os.pipe()
        monitor = os.fork()
        if monitor == 0:  # pragma: no cover - runs in the forked monitor
            _monitor_main(ctx.plan, child, w, ctx.box_dir)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        os.waitpid(monitor, os.WNOHANG)
        if not raw:
            raise TuiboxError("box monitor failed to start the init")
        return int(raw)

    def start(self, name: str) -> st.BoxRecord:
        with self.root.locked(name) as d:
            record = self.get(name)
            if not can("start", record.status):
                raise InvalidState(name, record.status, "start", "created")
            self._release(record, d)
            record.status = "running"
            record.started = now_iso()
            self.root.write(record)
        return record

    def _release(self, record: st.BoxRecord, d: Path) -> None:
        fifo = d / "exec.fifo"
        # Non-blocking open: a dead init must not hang `start`.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            import select

            deadline = time.monotonic() + 10
            while True:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready and os.read(fd, 1):
                    break
                if not proc.is_alive(record.pid, record.starttime):
                    raise TuiboxError(f"box {record.id!r}: its init died before it could start")
                if time.monotonic() > deadline:
                    raise TuiboxError(f"box {record.id!r}: init did not answer start")
        finally:
            os.close(fd)
            fifo.unlink(missing_ok=True)

    # ---- run -----------------------------------------------------------------------------

    def run(self, req: CreateRequest, keep: bool = False) -> int:
        """create + start in the foreground; returns the program's exit status."""
        req = replace(req, detach=False)
        old = {
            s: signal.getsignal(s)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
        }
        record = self.create(req)
        forwarded: list[int] = []

        def forward(signum: int, _frame: object) -> None:
            forwarded.append(signum)
            with contextlib.suppress(OSError):
                os.kill(record.pid, signum)

        for s in old:
            signal.signal(s, forward)
        try:
            self.start(req.name)
            chan = self._channels.pop(req.name)
            msg = chan.recv()
            chan.close()
            if msg is not None and msg.get("type") == "error":
                raise error_from_message(msg)
            status = _wait_child(record.pid)
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            st.atomic_write(self.root.box_dir(req.name) / "exit", f"{code}\n".encode())
        except BaseException:
            _kill_and_reap(record.pid, True)
            self._cleanup(record)
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if not keep:
            self._cleanup(self.root.read(req.name))
        return code

    # ---- signals and destroy -------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        record = self.get(name)
        if not can("kill", record.status):
            raise InvalidState(name, record.status, "kill", "created, running or paused")
        os.kill(record.pid, sig)

    def stop(self, name: str, timeout: float = 10.0) -> st.BoxRecord:
        """SIGTERM, then SIGKILL after timeout seconds, like docker stop."""
        record = self.get(name)
        if record.status == "stopped":
            return record
        self.kill(name, signal.SIGTERM)
        if not _wait_gone(record.pid, record.starttime, timeout):
            with contextlib.suppress(OSError):
                os.kill(record.pid, signal.SIGKILL)
            _wait_gone(record.pid, record.starttime, 5.0)
        return self.get(name)

    def destroy(self, name: str, force: bool = False) -> None:
        with self.root.locked(name):
            record = self.get(name)
            if not can("destroy-force" if force else "destroy", record.status):
                raise InvalidState(
                    name, record.status, "destroy", "stopped or created (or use --force)"
                )
            if record.status != "stopped":
                _kill_box(record)
                if not _wait_gone(record.pid, record.starttime, 10.0):
                    raise TuiboxError(f"box {name!r}: init {record.pid} did not die after SIGKILL")
            self._cleanup(record)

    def _cleanup(self, record: st.BoxRecord) -> None:
        d = self.root.box_dir(record.id)
        for stage in reversed(STAGES):
            if stage.teardown is not None:
                with contextlib.suppress(Exception):
                    stage.teardown(self, record, d)
        self.root.remove(record.id)


# ---- process plumbing (module level: it runs in forked children too) ---------------------


def _new_ns(spec: Spec, kind: str) -> bool:
    ns = spec.namespace(kind)
    return ns is not None and not ns.path


def _spawn_init(plan: box_init.InitPlan, child: Channel, parent: Channel | None) -> int:
    """Fork the init inside the box's PID namespace (new or joined); return its host pid."""
    pid_ns = plan.spec.namespace("pid")
    own = None
    if pid_ns is not None:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if pid_ns.path:
            fd = os.open(pid_ns.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.CLONE_NEWPID)
            finally:
                os.close(fd)
        else:
            sc.unshare(sc.CLONE_NEWPID)
    try:
        pid = os.fork()
    except BaseException:
        _restore_pid_ns(own)
        raise
    if pid == 0:  # pragma: no cover - the box's init
        keep = {0, 1, 2, child.fileno(), plan.state_dir_fd, *(plan.stdio or ())}
        _close_all_but(keep)
        box_init.run(plan, child)
    _restore_pid_ns(own)
    return pid


def _restore_pid_ns(own: int | None) -> None:
    # Later forks of this process (hooks, helpers) must stay in the host's PID namespace.
    if own is not None:
        sc.setns(own, sc.CLONE_NEWPID)
        os.close(own)


def _monitor_main(
    plan: box_init.InitPlan, child: Channel, pid_pipe: int, box_dir: Path
) -> None:  # pragma: no cover
    """The detached box's parent: start the init, report its pid, reap it, record the exit."""
    code = 1
    try:
        os.setsid()
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(s, signal.SIG_IGN)
        sc.prctl(sc.PR_SET_NAME, _cstr(b"tuibox-monitor"))
        init_pid = _spawn_init(plan, child, None)
        os.write(pid_pipe, str(init_pid).encode())
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _close_all_but({0, 1, 2})
        status = _wait_child(init_pid)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        if box_dir.is_dir():
            st.atomic_write(box_dir / "exit", f"{code}\n".encode())
        code = 0
    except BaseException:
        pass
    os._exit(code)


def _cstr(raw: bytes) -> int:
    import ctypes

    buf = ctypes.create_string_buffer(raw)
    _KEEP.append(buf)
    return ctypes.addressof(buf)


_KEEP: list[Any] = []


def _close_all_but(keep: set[int]) -> None:
    last = 3
    for fd in sorted(f for f in keep if f >= 3):
        if fd > last:
            os.closerange(last, fd)
        last = fd + 1
    os.closerange(last, 1 << 16)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _wait_child(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def _kill_and_reap(pid: int, is_child: bool) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    if is_child:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    else:
        _wait_gone(pid, None, 5.0)


def _kill_box(record: st.BoxRecord) -> None:
    """SIGKILL the box. With its own PID namespace the kernel then kills every process in it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGKILL)


def _wait_gone(pid: int, starttime: int | None, timeout: float) -> bool:
    """Poll until the process is gone or a zombie; no fixed sleep after the signal."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while proc.is_alive(pid, starttime):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True


@contextlib.contextmanager
def _ignore(*errnos: int) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        if e.errno not in errnos:
            raise


__all__ = [
    "GUARDS",
    "STAGES",
    "CreateRequest",
    "Runtime",
    "Stage",
    "can",
    "errno",
    "register_stage",
]
