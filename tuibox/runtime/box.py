"""Lifecycle verbs as a small state machine: refresh -> guard -> act -> save.

`Runtime` is the one facade the CLI and the TUI call. Creating a box forks the init (see
init.py) from this single-threaded process. A detached box (create, run -d) gets a monitor
process between the caller and the init: it stays the init's parent, reaps it and records the
exit status, so `wait`, `list` and the TUI can report it after the CLI has gone.

This module is on `tuibox run`'s start-up path, so it imports only C modules and our own
lean ones (no pathlib, json, signal, contextlib or dataclasses: see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import _signal
import builtins
import os
import time

from tuibox.runtime import state as st
from tuibox.runtime.actions import Actions
from tuibox.runtime.errors import (
    CorruptRecord,
    ResourceTeardownError,
    SpecError,
    TeardownError,
    TuiboxError,
)
from tuibox.runtime.guards import GUARDS, can, check, refuse_threads
from tuibox.runtime.linux import proc
from tuibox.runtime.queries import OCI_VERSION as OCI_VERSION
from tuibox.runtime.queries import Queries

# What only create, run and destroy need (the init's code, ctypes, the spec model, the
# stages) is imported inside them: `state`, `list`, `kill` and `start` stay lean
# (tests/unit/test_hot_imports.py holds each verb's import set).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.images.store import ImageStore
    from tuibox.runtime.process import init as box_init
    from tuibox.runtime.process.sync import Channel
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.spec_model import Spec
    from tuibox.runtime.stages.base import SetupContext, Stage

__all__ = ["GUARDS", "CreateRequest", "Runtime", "SetupContext", "can"]


def __getattr__(name: str) -> object:
    # The two re-exports in __all__, loaded on first use like the package's own API.
    if name == "CreateRequest":
        from tuibox.runtime.request import CreateRequest

        return CreateRequest
    if name == "SetupContext":
        from tuibox.runtime.stages.base import SetupContext

        return SetupContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# get, list, state: queries.py; exec, ps, stats, wait, pause, resume, update: actions.py
class Runtime(Queries, Actions):
    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(root, data_root)
        self._channels: dict[str, Channel] = {}
        # What the last start of a stopped box has to say (another address: its own was
        # taken); the CLI prints it.
        self.warnings: builtins.list[str] = []

    @property
    def images(self) -> ImageStore:
        """The image store under `data_root` (imported on first use)."""
        from tuibox.runtime.images.store import ImageStore

        return ImageStore(self.data_root)

    # ---- create / start ------------------------------------------------------------------

    def create(self, req: CreateRequest, again: st.BoxRecord | None = None) -> st.BoxRecord:
        """Set the box up completely; its program waits for `start`.

        `again` (recreate.py only): the stopped record of the box being started again, whose
        old resources were released already; it keeps its dir, writable layer and log, and a
        failure writes `again` back (the box stays stopped) instead of removing the dir."""
        refuse_threads("create")
        from tuibox.runtime.stages.base import SetupContext
        from tuibox.runtime.stages.order import for_request
        from tuibox.runtime.undo import Undo

        spec = req.spec
        rootfs = os.fspath(spec.root.path)
        if req.overlay is None and not os.path.isdir(rootfs):
            raise SpecError(f"config.json: root.path: no such directory: {rootfs}")
        if spec.hostname and spec.namespace("uts") is None:
            raise SpecError("config.json: hostname: needs a uts namespace of its own")
        if spec.process.terminal:
            req.options.setdefault("console", {})  # the console stage (runtime/console.py)
        if spec.namespace("user") is not None:
            req.options.setdefault("userns", {})  # the userns stage (runtime/userns.py)
        if any(ns.path for ns in spec.linux.namespaces):
            from tuibox.runtime.userns import check_namespace_paths

            check_namespace_paths(spec)
        if spec.linux.seccomp is not None:
            req.options.setdefault("seccomp", {})  # runtime/seccomp/stage.py
        stages = for_request(req)
        d = self.root.make_box_dir(req.name) if again is None else self.root.box_dir(req.name)
        with Undo() as undo:
            if again is None:
                undo.callback(self.root.remove, req.name)
            else:
                undo.callback(self._put_back, again)
            if "poststop" in spec.hooks:  # a failed create ends as a destroy does (runc)
                from tuibox.runtime.hooks import after_failed_create

                undo.callback(after_failed_create, spec, req.name)
            record = st.BoxRecord(
                req.name,
                "creating",
                os.fspath(spec.bundle),
                rootfs,
                created=now_iso() if again is None else again.created,
                command=list(spec.process.args),
                hostname=spec.hostname or req.name,
                terminal=spec.process.terminal,
                image=req.image,
                namespaces=[n.type for n in spec.linux.namespaces],
                annotations=dict(spec.annotations),
                own_pid_ns=_new_ns(spec, "pid"),
                detached=req.detach,
            )
            record.extra["stages"] = [s.name for s in stages]
            if req.engine:  # its exit status belongs to the caller's reaper (and see write)
                record.extra["engine"] = True
            # Intent before side effects: who is creating it (dead creator = debris) and
            # what it will make, on disk before any cgroup, lease, veth or mount exists.
            me = os.getpid()
            record.extra["creator"] = [me, proc.start_time(me)]
            record.extra["boot_id"] = st.boot_id()
            record.extra["intent"] = _intent(req, stages, self.root.path)
            if req.overlay is not None or (req.detach and req.stdio is None and not req.engine):
                # The writable layer and the log on disk (the data root), not in the
                # RAM-backed state root; named here, made by `_plan`.
                data = req.overlay[1] if req.overlay is not None else self._data_root()
                disk = self._disk_path(data, req.name)
                key = "layer" if req.overlay is not None else "disk"
                if again is not None:  # kept where it is (another --data-root may start it)
                    disk = str(again.extra.get(key) or disk)
                record.extra[key] = disk
            if req.restart is not None:
                record.extra["restart"] = req.restart
            if again is not None:
                # Until the new init is ready: a start killed half-way leaves a stopped box
                # (state.live_status), whose next start or destroy releases what it made.
                record.extra["recreate"] = True
                if "restart" in again.extra:  # the policy's state goes on (count, exits)
                    record.extra["restart"] = again.extra["restart"]
            # Until the intent is on disk, the lock says "being created" (gc leaves it alone).
            with self.root.locked(req.name):
                fault("mkdir")
                self.root.write(record)
            fault("record")
            if again is None:
                undo.callback(_remove_layer, record)
                if req.recipe is not None and req.detach and not req.engine:
                    _save_recipe(req.recipe, d)
            plan = self._plan(req, record, d)
            undo.callback(_close_quietly, plan.fifo_fd)
            ctx = SetupContext(self, req, record, d, plan, undo)
            for stage in stages:
                if stage.prepare is not None:
                    stage.prepare(ctx)
                    fault(stage.name)
            self.root.write(record)
            with self.root.locked(req.name):
                self._launch(ctx, stages)
                # Before `start` can look: from now on only the init holds the fifo.
                _close_quietly(plan.fifo_fd)
            undo.discard()
        return record

    def _plan(self, req: CreateRequest, record: st.BoxRecord, d: str) -> box_init.InitPlan:
        from tuibox.runtime.linux import syscalls as sc
        from tuibox.runtime.process import init as box_init

        spec = req.spec
        rootfs = record.rootfs
        overlay = None
        logged = req.detach and req.stdio is None and not req.engine
        disk = str(record.extra.get("layer") or record.extra.get("disk") or "")
        again = bool(record.extra.get("recreate"))  # a stopped box started again: keep it
        if disk:  # named in the first record (create): a crash from here on cannot leak it
            self._make_disk(disk, keep=again)
        if req.overlay is not None:
            lower = req.overlay[0]
            for sub in ("upper", "work"):
                _mkdir(os.path.join(disk, sub), 0o755, again)
            _mkdir(os.path.join(d, "rootfs"), 0o755, again)
            rootfs = record.rootfs = os.path.join(d, "rootfs")
            # `image rm` asks which boxes use an image; the name alone is ambiguous when
            # two data roots share one state root.
            record.extra["image_rootfs"] = lower
            overlay = f"lowerdir={lower},upperdir={disk}/upper,workdir={disk}/work"
        hostname = spec.hostname or req.name
        _write(os.path.join(d, "hostname"), hostname + "\n")
        _write(
            os.path.join(d, "hosts"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.1.1\t{hostname}\n",
        )
        flags = 0
        join: list[tuple[str, str]] = []
        for ns in spec.linux.namespaces:
            # pid: the parent makes it (monitor.spawn_init); user: the init's first step (userns.py)
            if ns.type in ("pid", "user") or ns.type not in sc.NAMESPACE_FLAGS:
                continue
            if ns.path:
                join.append((ns.type, ns.path))
            else:
                flags |= sc.NAMESPACE_FLAGS[ns.type]
        fifo = os.path.join(d, "exec.fifo")
        os.mkfifo(fifo, 0o600)
        plan = box_init.InitPlan(
            spec=spec,
            name=req.name,
            rootfs=rootfs,
            # Read-write: opening cannot block, and the init holds a reader until it execs.
            fifo_fd=os.open(fifo, os.O_RDWR | os.O_CLOEXEC),
            stdio=req.stdio,
            overlay=overlay,
            etc_files={"/etc/hostname": f"{d}/hostname", "/etc/hosts": f"{d}/hosts"},
            unshare_flags=flags,
            join=join,
        )
        if logged:
            from tuibox.runtime.logfile import DEFAULT_MAX_SIZE, NAME

            plan.log_path = record.extra["log"] = os.path.join(disk, NAME)
            cap = req.options.get("log_max_size", DEFAULT_MAX_SIZE)
            plan.log_max_size = record.extra["log_max_size"] = cap
        plan.restart = "restart" in record.extra
        plan.new_keyring = not req.options.get("no_new_keyring", False)
        plan.die_with_parent = not req.detach
        record.extra["no_new_keyring"] = not plan.new_keyring
        plan.no_pivot = bool(req.options.get("no_pivot"))
        preserved = tuple(range(3, 3 + int(req.options.get("preserve_fds", 0))))
        if preserved:
            plan.keep_fds.update(preserved)
            plan.before_exec.append(lambda _plan: _inheritable(preserved))
        return plan

    def _data_root(self) -> str:
        # images.store.default_data_root's answer, without importing the store on `run -d`
        return self.data_root or os.environ.get("TUIBOX_DATA") or "/var/lib/tuibox"

    def _disk_path(self, data_root: str, name: str) -> str:
        """`<data>/boxes/<root tag>-<name>`: a box's writable layer and log; derivable from
        the name, the state root and the data root (destroy --force, gc)."""
        return layer_path(data_root, self.root.path, name)

    def _make_disk(self, path: str, keep: bool = False) -> None:
        """Made afresh (0700): a left-over of a box of this name that died before its
        record named it is removed first. `keep`: the box's own, from its last run."""
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        if not keep:
            st.remove_tree(path)
        _mkdir(path, 0o700, keep)

    def _put_back(self, record: st.BoxRecord) -> None:
        """A failed start of a stopped box: its record as it was (stopped), for a retry."""
        with self.root.locked(record.id):
            self._note(record)

    def _launch(self, ctx: SetupContext, stages: builtins.list[Stage]) -> None:
        """Fork the init (through a monitor when detached) and walk it to `ready`.

        In engine mode (runc's create) there is no monitor: the init is this process's child
        with its stdio, and once we exit, the caller's subreaper (conmon, a shim) reaps it."""
        from tuibox.runtime.process.monitor import fork_monitor, spawn_init
        from tuibox.runtime.process.sync import Channel

        req, record, d = ctx.request, ctx.record, ctx.box_dir
        parent, child = Channel.pair()
        ctx.undo.callback(parent.close)
        monitored = req.detach and not req.engine
        if monitored and req.stdio is None:
            null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            if ctx.plan.console is None and ctx.record.extra.get("console") is None:
                # 1-2 are a pipe the monitor pumps into the capped log (process/logpump.py).
                r, w = os.pipe2(os.O_CLOEXEC)
                if r < 3:  # the monitor makes 0-2 /dev/null: keep the read end above them
                    import fcntl

                    r2 = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 3)
                    os.close(r)
                    r = r2
                ctx.plan.log_pipe = r
                ctx.plan.stdio = (null, w, w)
            else:
                # A terminal: the keeper logs what the pty says; nothing reads 1-2 before.
                ctx.plan.stdio = (null, null, null)
        try:
            if monitored:
                pid, monitor = fork_monitor(ctx.plan, child, parent, d)
                started = proc.start_time(monitor)
                record.extra["monitor"] = [monitor, started]
                # Undone after the init's kill below (LIFO): a failed create leaves no process.
                ctx.undo.callback(proc.wait_gone, monitor, started, 5.0)
            else:
                pid = spawn_init(ctx.plan, child, parent)
        finally:
            child.close()
            if monitored and req.stdio is None and ctx.plan.stdio is not None:
                for fd in {*ctx.plan.stdio, ctx.plan.log_pipe} - {-1}:
                    os.close(fd)
                ctx.plan.log_pipe = -1
        ctx.undo.callback(_kill_and_reap, pid, not monitored)
        record.pid = ctx.pid = pid
        record.starttime = proc.start_time(pid)
        fault("fork")
        parent.expect("namespaces")
        for stage in stages:
            if stage.attach is not None:
                stage.attach(ctx)
        if req.spec.hooks:
            from tuibox.runtime.hooks import at_create

            at_create(req.spec, record, pid)  # the init waits for `continue` meanwhile
        try:
            parent.send("continue")
        except BrokenPipeError:
            pass  # the init already failed; `expect` below reads its own account
        fault("attach")
        parent.expect("ready")
        fault("ready")
        if req.detach:
            parent.close()  # a detached box's caller (an embedder) keeps no fd per box
        else:
            # Kept so `run` can learn of a failure between start and exec (EOF means exec'd).
            self._channels[record.id] = parent
        record.status = "created"
        self.root.write(record)
        pid_file = req.options.get("pid_file")
        if pid_file:  # runc's --pid-file: there before create returns (a foreground run too)
            # Read by the caller right away; meaningless after a reboot: no fsync (as runc).
            st.atomic_write(pid_file, str(pid).encode(), 0o644, durable=False)

    def start(self, name: str) -> st.BoxRecord:
        """Let a created box's program run. A stopped box is made again from the request it
        was created with and started (runtime/recreate.py; not an engine's box)."""
        with self.root.locked(name) as d:
            record = self.get(name)
            again = record.status == "stopped"
            if not again:
                check("start", name, record.status)
                self._release(record, d)
                record.status = "running"
                record.started = now_iso()
                record.extra.pop("recreate", None)
                self.root.write(record)
        if again:
            from tuibox.runtime.recreate import start_again

            return start_again(self, name)
        if "hooks" in record.extra:
            from tuibox.runtime.hooks import from_box

            from_box(record, "poststart", "running")
        return record

    def _release(self, record: st.BoxRecord, d: str) -> None:
        fifo = os.path.join(d, "exec.fifo")
        # The init holds the fifo open for reading until it execs, and nobody else does: a
        # non-blocking open for writing succeeds while it waits, fails with ENXIO once it died.
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno != 6:  # ENXIO
                raise
            raise TuiboxError(f"box {record.id!r}: its init died before it could start") from None
        # Unlinked before the byte that lets the program run: `created` (fifo present) must
        # never be shown while the program already runs (state.live_status).
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    # ---- run -----------------------------------------------------------------------------

    def run(self, req: CreateRequest, keep: bool = False) -> int:
        """create + start in the foreground; returns the program's exit status."""
        refuse_threads("run")
        from tuibox.runtime.process.monitor import wait_child
        from tuibox.runtime.process.sync import error_from_message

        req.detach = False
        forwarded = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
        old = {s: _signal.getsignal(s) for s in forwarded}
        record = self.create(req)
        if keep and req.recipe is not None:  # a kept box can be started again (detached)
            _save_recipe(req.recipe, self.root.box_dir(req.name))
        if not keep:
            # Should this CLI be SIGKILLed, PDEATHSIG takes the init; this mark lets `gc`
            # remove the stopped box the run would have removed (docker's --rm).
            record.extra["remove"] = True
            with self.root.locked(req.name):
                self.root.write(record)

        def forward(signum: int, _frame: object) -> None:
            try:
                os.kill(record.pid, signum)
            except OSError:
                pass

        for s in forwarded:
            _signal.signal(s, forward)
        try:
            chan = self._channels.pop(req.name)
            try:
                self.start(req.name)
            except TuiboxError:
                # The init's own account of why it died beats "it is stopped".
                msg = chan.recv()
                if msg is not None and msg.get("type") == "error":
                    raise error_from_message(msg) from None
                raise
            msg = chan.recv()
            chan.close()
            if msg is not None and msg.get("type") == "error":
                raise error_from_message(msg)
            relayed = None
            if record.extra.get("console") == "foreground":
                from tuibox.runtime.console import relay_foreground  # loaded by its stage

                relayed = relay_foreground(req.name, record.pid)
            code = proc.exit_code(wait_child(record.pid)) if relayed is None else relayed
            # The caller gets `code` either way; a full state disk only loses it for a later
            # `wait` on a kept box, which then says the status is unknown.
            # Durable only for a kept box: the others' dirs go right after.
            st.record_exit(self.root.box_dir(req.name), code, attempts=3, durable=keep)
        except BaseException:
            _kill_and_reap(record.pid, True)
            try:
                self._cleanup(record)
            except TeardownError:
                pass  # the run's own failure is the one to report; the dir stays for destroy
            raise
        finally:
            for s, h in old.items():
                _signal.signal(s, h)
        if not keep:
            self._cleanup(record)
        return code

    # ---- signals and destroy -------------------------------------------------------------

    def kill(self, name: str, sig: int = _signal.SIGTERM) -> None:
        record = self.get(name)
        check("kill", name, record.status)
        if "restart" in record.extra:
            from tuibox.runtime.restart_policy import STOP_SIGNALS

            if sig in STOP_SIGNALS:
                self._stopped_by_user(name)
        os.kill(record.pid, sig)

    def _stopped_by_user(self, name: str) -> None:
        """Before the signal: the monitor must know, when the init exits, that a user
        stopped it (no restart; `start` clears it)."""
        with self.root.locked(name):
            record = self.root.read(name)
            policy = record.extra.get("restart")
            if isinstance(policy, dict) and not policy.get("user_stopped"):
                policy["user_stopped"] = True
                self.root.write(record)

    def stop(self, name: str, timeout: float = 10.0) -> st.BoxRecord:
        """SIGTERM, then SIGKILL after timeout seconds, like docker stop."""
        record = self.get(name)
        if record.status == "stopped":
            if "restart" in record.extra:  # perhaps between two runs: none comes now
                self._stopped_by_user(name)
            return record  # already what stop wants (guards.py)
        check("stop", name, record.status)
        self.kill(name, _signal.SIGTERM)
        if record.status == "paused":
            self._cgroup(record).thaw()  # a frozen init only sees the SIGTERM once thawed
        if not proc.wait_gone(record.pid, record.starttime, timeout):
            _kill_box(record)
            proc.wait_gone(record.pid, record.starttime, 5.0)
        return self.get(name)

    def restart(self, name: str, timeout: float = 10.0) -> st.BoxRecord:
        """`stop` (SIGTERM, SIGKILL after `timeout`), then `start`: a new init in the same
        box (writable layer, limits, ports; its address when still free)."""
        self.stop(name, timeout)
        return self.start(name)

    def boot(self) -> builtins.list[tuple[str, str | None]]:
        """Start the stopped boxes whose restart policy says so after a reboot (`always`;
        `unless-stopped` unless a user stopped it): (name, None) for each started, (name,
        why) for each that could not be. What `tuibox boot` runs (recreate.py)."""
        from tuibox.runtime.recreate import boot

        return boot(self)

    def destroy(self, name: str, force: bool = False) -> None:
        """Tear the box down and remove its state dir.

        A failed teardown step raises TeardownError (one line per resource) and keeps the
        state dir, so a retry knows what to release. With `force`, an unreadable record or a
        killed create is torn down from kernel facts (`recovery.py`), every step that can be
        done is done, the dir goes, and failures are still raised."""
        from tuibox.runtime.process.monitor import monitors_in, monitors_of

        with self.root.locked(name):
            try:
                record: st.BoxRecord | None = self.get(name)
            except CorruptRecord:
                if not force:
                    raise
                record = None
            # An engine's record names everything its create made once that create finished
            # (no monitor, log or layer; the cgroup and stages are in it): `--force` has
            # nothing to find beyond it, and engines delete every container they make.
            whole = (
                record is not None
                and bool(record.extra.get("engine"))
                and record.status in ("created", "running", "paused", "stopped")
            )
            # A create killed early has a monitor its record does not name: only /proc knows.
            monitors = monitors_in(self.root.box_dir(name)) if force and not whole else []
            if record is not None:
                check("destroy-force" if force else "destroy", name, record.status)
                # A create killed before its last record names no pid or monitor: the
                # cgroup's processes lead to it (it outlives the init by its log's drain).
                pids = [record.pid, *_cgroup_pids(record)]
                monitors += monitors_of(pids, record.extra.get("monitor"))
                # Intent again: a destroy killed half-way leaves debris that gc recognises.
                me = os.getpid()
                live = record.status
                record.status = "destroying"
                record.extra["destroyer"] = [me, proc.start_time(me)]
                self._note(record)
                if live not in ("stopped", "debris"):
                    _kill_box(record)
                    if not proc.wait_gone(record.pid, record.starttime, 10.0) and not force:
                        record.status = live
                        self._note(record)
                        raise TuiboxError(
                            f"box {name!r}: init {record.pid} did not die after SIGKILL"
                        )
                fault("destroy-kill")
                failures = self._teardown(record)
            else:
                failures = []
            if force and not (whole and not failures):
                from tuibox.runtime.recovery import force_teardown

                failures += force_teardown(self, name, record)
            if failures and not force:
                if record is not None:
                    record.status = "stopped"  # what a retry of destroy needs, as it was
                    self._note(record)
                raise TeardownError(name, failures)
            fault("destroy-teardown")
            self.root.remove(name)
        # Outside the lock: a monitor sleeping out a restart backoff may be waiting on a
        # `start --restarted` that blocks on this lock; it gives up once the lock is free
        # (the record is gone), and the monitor leaves.
        for pid, started in monitors:  # it records the exit and leaves; wait for that
            proc.wait_gone(pid, started, 5.0)
        # After the monitor left: its log pump no longer writes (or rotates) there.
        if record is not None:
            _remove_layer(record)
        if force:  # and what the name and the roots say, whatever the record says
            st.remove_tree(self._disk_path(self._data_root(), name))
        if record is not None and "hooks" in record.extra:
            from tuibox.runtime.hooks import from_box

            from_box(record, "poststop", "stopped")
        if failures:
            raise TeardownError(name, failures)

    def _note(self, record: st.BoxRecord) -> None:
        """A destroy's own record writes are best effort: a full state disk must not make a
        box impossible to destroy (the old record stays whole; status still comes from the
        kernel)."""
        try:
            self.root.write(record)
        except OSError:
            pass

    def _teardown(self, record: st.BoxRecord) -> builtins.list[str]:
        """Every stage's teardown, in reverse order; one line per failure."""
        from tuibox.runtime.stages.order import with_teardown

        chan = self._channels.pop(record.id, None)
        if chan is not None:  # a foreground create that was never `run`
            chan.close()
        d = self.root.box_dir(record.id)
        failures = []
        for stage in reversed(with_teardown(record.extra.get("stages", []))):
            if stage.teardown is not None:
                try:
                    stage.teardown(self, record, d)
                except ResourceTeardownError as e:  # the stage names each resource
                    failures += [f"{stage.name}: {f}" for f in e.failures]
                except Exception as e:  # every stage must get its turn
                    failures.append(f"{stage.name}: {e}")
        return failures

    def _cleanup(self, record: st.BoxRecord) -> None:
        """Teardown after a foreground run: a failure keeps the state dir and is reported."""
        failures = self._teardown(record)
        if failures:
            raise TeardownError(record.id, failures)
        self.root.remove(record.id)
        _remove_layer(record)  # an image box's writable layer, as destroy removes it
        if "hooks" in record.extra:
            from tuibox.runtime.hooks import from_box

            from_box(record, "poststop", "stopped")


# ---- process plumbing (module level: it runs in forked children too) ---------------------


def _mkdir(path: str, mode: int, exist_ok: bool) -> None:
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not exist_ok:
            raise


def _save_recipe(recipe: dict[str, Any], d: str) -> None:
    """request.json (0600: env may hold secrets), what `start` of the stopped box rebuilds
    its request from (recreate.py); a bundle's config.json is kept beside it, so the box
    starts again with the config it was made with."""
    from tuibox.runtime import fastjson

    recipe = dict(recipe)
    if recipe.get("kind") == "bundle":
        with open(recipe["config"], "rb") as f:
            _write(os.path.join(d, "config.json"), f.read(), 0o600)
        recipe["config"] = "config.json"  # in the box dir
    _write(os.path.join(d, "request.json"), fastjson.dumps(recipe, indent=1), 0o600)


def _write(path: str, text: str | bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    data = text.encode() if isinstance(text, str) else text
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def fault(point: str) -> None:
    """Test-only fault injection: TUIBOX_FAULT=POINT SIGKILLs this process at that point
    (tests/integration/test_faults.py); one dict lookup when unset."""
    if os.environ.get("TUIBOX_FAULT") == point:
        os.kill(os.getpid(), _signal.SIGKILL)


def _intent(req: CreateRequest, stages: builtins.list[Stage], root: str) -> dict[str, Any]:
    """What this create is about to make, written before it makes any of it."""
    names = [s.name for s in stages]
    intent: dict[str, Any] = {"mounts": "in the box's own mount namespace"}
    if "cgroups" in names:
        from tuibox.runtime.cgroups.hierarchy import box_path

        intent["cgroup"] = box_path(req.spec.linux.cgroups_path, req.name, root)
    if "userns" in names:
        intent["userns_lease"] = f"{root}/.userns/{req.name}.lease"
    if "network" in names:
        from tuibox.runtime.network.veth import host_name

        opt = req.options.get("network")
        named = opt.get("name") if isinstance(opt, dict) else None
        intent["network"] = opt if isinstance(opt, str) else str(named or "netconf")
        intent["veth"] = host_name(root, req.name, 0)
    if "console" in names:
        intent["console"] = "console.sock in the box dir"
    if req.overlay is not None:
        intent["layer"] = layer_path(req.overlay[1], root, req.name)
    return intent


def layer_path(data_root: str, root: str, name: str) -> str:
    """A box's dir on the data root (an image box's writable layer, a detached box's log):
    `<data>/boxes/<root tag>-<name>`, derivable from the names alone, so `destroy --force`
    finds it without a record."""
    from tuibox.runtime.cgroups.hierarchy import default_leaf

    return os.path.join(data_root, "boxes", default_leaf(name, root).rpartition("/")[2])


def _new_ns(spec: Spec, kind: str) -> bool:
    ns = spec.namespace(kind)
    return ns is not None and not ns.path


def _remove_layer(record: st.BoxRecord) -> None:
    """The box's dir under the data root: its writable layer and its log."""
    for key in ("layer", "disk"):
        path = record.extra.get(key)
        if isinstance(path, str) and path:
            st.remove_tree(path)


def _cgroup_pids(record: st.BoxRecord) -> builtins.list[int]:
    if record.pid or not record.extra.get("cgroup_dirs"):
        return []
    from tuibox.runtime.cgroups import for_record

    try:
        cg = for_record(record)
        return cg.procs() if cg is not None else []
    except (TuiboxError, OSError):
        return []


def _inheritable(fds: tuple[int, ...]) -> None:
    # Runs in the init right before execve: the fds it kept were made close-on-exec.
    for fd in fds:
        os.set_inheritable(fd, True)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _kill_and_reap(pid: int, is_child: bool) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except OSError:
        pass
    if is_child:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    else:
        proc.wait_gone(pid, None, 5.0)


def _kill_box(record: st.BoxRecord) -> None:
    """SIGKILL the box. With its own PID namespace the kernel then kills every process in it;
    without one, a cgroup stage's teardown kills the rest."""
    try:
        os.kill(record.pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass
    if record.extra.get("cgroup_dirs"):
        # Every process of the cgroup too, and thaw a paused box: frozen tasks die only thawed.
        from tuibox.runtime.cgroups import for_record

        cg = for_record(record)
        if cg is not None:
            try:
                cg.signal_all(_signal.SIGKILL)
            except (TuiboxError, OSError):
                pass
