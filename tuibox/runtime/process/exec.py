"""exec: start a new process inside a running box, confined like the box's own.

The caller (the CLI: single-threaded, so it may fork) does, in this order:

1. opens what the child needs while it can still see the host: the box's namespaces
   (/proc/<init>/ns/*, only those that differ from ours), its root (/proc/<init>/root) and,
   for a terminal, a pty from the box's own devpts (so `tty` inside names /dev/pts/N);
2. joins the box's PID namespace for its children only (setns), forks, and goes back: the
   child is born inside the box's pid tree yet stays our child, so we can wait for it;
3. the child joins the cgroup (host paths, before the mount namespace hides them), then the
   user, ipc, uts, net, cgroup and time namespaces, the mount namespace last, then
   `fchdir(root fd); chroot(".")`; takes the pty as controlling terminal; applies rlimits,
   the bounding set and keep-caps, the user, cwd, lookup, no_new_privs, capset; execve.

A failing child step comes back as error{step, errno, msg} on a close-on-exec pipe, exactly
like the init's (so 126/127 and the messages match `run`); end-of-file means execve worked.
Every module the child uses is imported here, at module level, before the fork.
"""

from __future__ import annotations

import _signal
import binascii
import errno
import fcntl
import os
import resource
import select
import stat
import struct
import termios

from tuibox.runtime import defaults
from tuibox.runtime.cgroups import fs as cgroup_fs
from tuibox.runtime.errors import SpecError
from tuibox.runtime.guards import check
from tuibox.runtime.linux import capabilities as caps
from tuibox.runtime.linux import lsm
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux import sysctl as knobs
from tuibox.runtime.linux.paths import enter_cwd, find_program
from tuibox.runtime.linux.proc import exit_code
from tuibox.runtime.plain import Plain
from tuibox.runtime.process import warmer
from tuibox.runtime.process.sync import Channel, error_from_message
from tuibox.runtime.seccomp.load import (
    agent_message,
    connect_agent,
    host_pid,
    listener_from_record,
    load_filter,
    program_from_record,
    send_to_agent,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from tuibox.runtime.spec_model import Process
    from tuibox.runtime.state import BoxRecord

# Joined in this order; the mount namespace last (it hides /proc/<init> and the cgroup files),
# pid is handled by the parent (it only affects children).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "mount")

TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
PTMX_RDEV = os.makedev(5, 2)


class ExecRequest(Plain):
    """What to run. `process` (a runc process.json) replaces the box's defaults entirely."""

    __slots__ = (
        "args",
        "cwd",
        "detach",
        "env",
        "interactive",
        "preserve_fds",
        "process",
        "size",
        "tty",
        "user",
    )

    def __init__(
        self,
        args: tuple[str, ...] = (),
        env: tuple[str, ...] = (),
        cwd: str | None = None,
        user: tuple[int, int] | None = None,
        tty: bool = False,
        interactive: bool = False,
        detach: bool = False,
        process: Process | None = None,
        size: tuple[int, int] | None = None,
        preserve_fds: int = 0,
    ) -> None:
        self.args = args
        self.env = env  # K=V laid over the box's environment
        self.cwd = cwd
        self.user = user  # (uid, gid); None: the box's user
        self.tty = tty
        self.interactive = interactive  # keep stdin attached
        self.detach = detach
        self.process = process
        self.size = size  # (rows, cols) of the pty before the program starts
        self.preserve_fds = preserve_fds  # runc's: the caller's fds 3 .. 3+N-1 reach it


class _Plan(Plain):
    """Everything the child does, resolved by the parent."""

    __slots__ = (
        "apparmor_profile",
        "args",
        "cwd",
        "env",
        "gid",
        "groups",
        "no_new_privileges",
        "oom_score_adj",
        "rlimits",
        "seccomp",
        "seccomp_agent",
        "selinux_label",
        "sets",
        "uid",
        "umask",
    )

    def __init__(
        self,
        args: tuple[str, ...],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        groups: tuple[int, ...],
        umask: int,
        sets: caps.CapSets,
        no_new_privileges: bool,
        rlimits: tuple[tuple[str, int, int, int], ...],
        oom_score_adj: int | None = None,
        apparmor_profile: str | None = None,
        selinux_label: str | None = None,
        seccomp: tuple[bytes, int] | None = None,
        seccomp_agent: tuple[str, str] | None = None,
    ) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.umask = umask
        self.sets = sets
        self.no_new_privileges = no_new_privileges
        self.rlimits = rlimits
        self.oom_score_adj = oom_score_adj
        self.apparmor_profile = apparmor_profile
        self.selinux_label = selinux_label
        self.seccomp = seccomp  # the box's filter: (BPF program, flags)
        self.seccomp_agent = seccomp_agent  # (listenerPath, metadata) for SCMP_ACT_NOTIFY


def _box_seccomp(record: BoxRecord) -> tuple[tuple[bytes, int] | None, tuple[str, str] | None]:
    """The filter the box's init loaded, and its agent: every exec'd process gets them too."""
    entry = record.extra.get("seccomp")
    if entry is None:
        return None, None
    try:
        return program_from_record(entry), listener_from_record(entry)
    except (ValueError, binascii.Error):
        # Fail closed: a box that had a filter never gets a process without one.
        raise SpecError(f"box {record.id!r}: its record's seccomp filter is damaged") from None


def _env_dict(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key:
            out[key] = value
    return out


def plan_for(record: BoxRecord, req: ExecRequest) -> _Plan:
    """The box's confinement (from its record) with the request laid over it."""
    box: dict[str, Any] = record.extra.get("process") or {}
    program, agent = _box_seccomp(record)
    if req.process is not None:
        from tuibox.runtime.confine import check

        p = req.process
        # As runc exec: the process's own labels and score, else the box's.
        apparmor = p.apparmor_profile or box.get("apparmor_profile")
        selinux = p.selinux_label or box.get("selinux_label")
        problem = lsm.host_problem(apparmor, selinux, None)
        if problem is not None:
            raise SpecError(f"process.json: {problem[0].partition('.')[2]}: {problem[1]}")
        return _Plan(
            args=p.args,
            env=_env_dict(p.env),
            cwd=p.cwd,
            uid=p.user.uid,
            gid=p.user.gid,
            groups=p.user.additional_gids,
            umask=p.user.umask if p.user.umask is not None else 0o022,
            sets=check(p, "process.json: capabilities"),
            no_new_privileges=p.no_new_privileges,
            rlimits=tuple((r.type, r.resource, r.soft, r.hard) for r in p.rlimits),
            oom_score_adj=(
                p.oom_score_adj if p.oom_score_adj is not None else box.get("oom_score_adj")
            ),
            apparmor_profile=apparmor,
            selinux_label=selinux,
            seccomp=program,
            seccomp_agent=agent,
        )
    if box.get("capabilities"):
        sets = caps.CapSets.from_json(box["capabilities"])
    else:
        sets = caps.resolve(None, defaults.CAPABILITIES)
    env = _env_dict(box.get("env") or list(defaults.DEFAULT_ENV))
    env.update(_env_dict(req.env))
    uid, gid = (
        req.user if req.user is not None else (int(box.get("uid", 0)), int(box.get("gid", 0)))
    )
    groups = tuple(box.get("additional_gids") or ()) if req.user is None else ()
    umask = box.get("umask")
    cwd = req.cwd or box.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise SpecError(f"--workdir {cwd!r}: must be an absolute path")
    if not req.args:
        raise SpecError("exec: no command given")
    return _Plan(
        args=req.args,
        env=env,
        cwd=cwd,
        uid=uid,
        gid=gid,
        groups=groups,
        umask=umask if isinstance(umask, int) else 0o022,
        sets=sets,
        no_new_privileges=bool(box.get("no_new_privileges", False)),
        rlimits=tuple((str(k), int(r), int(s), int(h)) for k, r, s, h in box.get("rlimits") or ()),
        oom_score_adj=box.get("oom_score_adj"),
        apparmor_profile=box.get("apparmor_profile"),
        selinux_label=box.get("selinux_label"),
        seccomp=program,
        seccomp_agent=agent,
    )


# ---- the handle ----------------------------------------------------------------------------------


class ExecHandle:
    """A process started in a box: its host pid, its pty master (with -t), a way to wait.

    `wait` reaps it, so only the process that called `start` (its parent) can use it."""

    def __init__(self, pid: int, master_fd: int | None, box: str) -> None:
        self.pid = pid
        self.master_fd = master_fd
        self.box = box
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = exit_code(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (128+N for a signal), or None when `timeout` ran out."""
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            while True:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except InterruptedError:
                    continue
                except ChildProcessError:
                    self.returncode = -1
                    return self.returncode
                self.returncode = exit_code(status)
                return self.returncode
        fd = os.pidfd_open(self.pid)
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return self.poll()

    def resize(self, rows: int, cols: int) -> None:
        if self.master_fd is not None:
            set_size(self.master_fd, rows, cols)

    def signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.master_fd is not None:
            _close(self.master_fd)
            self.master_fd = None


# ---- ptys ----------------------------------------------------------------------------------------


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


def box_pty(init_pid: int) -> tuple[int, int]:
    """(master, slave) of a new pty in the box's devpts, else on the host's.

    The box's own devpts keeps `tty` and ttyname() right inside. The path runs through the
    box's root, which the box controls, so what it opens is checked to be a ptmx."""
    try:
        master = os.open(
            f"/proc/{init_pid}/root/dev/pts/ptmx",
            os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
        )
    except OSError:
        return os.openpty()
    try:
        st = os.fstat(master)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV:
            raise OSError(errno.EINVAL, "not a ptmx")
        os.set_blocking(master, True)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        os.close(master)
        return os.openpty()
    return master, slave


# ---- starting it ---------------------------------------------------------------------------------


def _namespace_fds(init_pid: int) -> tuple[list[tuple[str, int]], int | None]:
    """([(kind, fd)] to join in JOIN_ORDER, pid namespace fd) for those not already ours."""
    joins: list[tuple[str, int]] = []
    pid_fd: int | None = None
    try:
        for kind in (*JOIN_ORDER, "pid"):
            name = sc.NAMESPACE_PROC_NAMES[kind]
            theirs = f"/proc/{init_pid}/ns/{name}"
            try:
                if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
            except FileNotFoundError:
                continue  # a namespace kind this kernel does not have
            fd = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
            if kind == "pid":
                pid_fd = fd
            else:
                joins.append((kind, fd))
    except BaseException:
        for _, fd in joins:
            os.close(fd)
        raise
    return joins, pid_fd


def start(
    record: BoxRecord, req: ExecRequest, stdio: tuple[int, int, int] | None = None
) -> ExecHandle:
    """Fork a process into the running box described by `record`; returns once it exec'd.

    Call only from a single-threaded process (the CLI): it forks."""
    check("exec", record.id, record.status)
    plan = plan_for(record, req)
    from tuibox.runtime.cgroups import for_record

    cg = for_record(record)
    cgroup_dirs = cg.dirs() if cg is not None else []
    opened: list[int] = []
    master: int | None = None
    try:
        joins, pid_fd = _namespace_fds(record.pid)
        opened += [fd for _, fd in joins] + ([pid_fd] if pid_fd is not None else [])
        root_fd = os.open(f"/proc/{record.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        opened.append(root_fd)
        if req.tty:
            master, slave = box_pty(record.pid)
            opened.append(slave)
            rows, cols = req.size or (24, 80)
            set_size(master, rows, cols)  # before the program starts: its first frame is right
            child_stdio = (slave, slave, slave)
        elif stdio is not None:
            child_stdio = stdio
        else:
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            opened.append(null)
            if req.detach and req.process is None:
                # docker's -d: nothing of ours stays attached (runc's --process -d keeps the
                # caller's stdio: podman's conmon reads the output there).
                child_stdio = (null, null, null)
            else:
                child_stdio = (0 if req.interactive else null, 1, 2)
        agent = None
        if plan.seccomp_agent is not None:
            path, metadata = plan.seccomp_agent
            try:
                sock = connect_agent(path)
            except OSError as e:
                raise SpecError(e.strerror or str(e)) from None
            opened.append(sock)
            state: dict[str, object] = {
                "ociVersion": "1.0.2",
                "id": record.id,
                "status": "running",
                "bundle": record.bundle,
                "annotations": dict(record.annotations),
            }
            agent = (sock, state, metadata)
        parent, child = Channel.pair()
        opened += [child.rfd, child.wfd]
        pid = _fork_in_pid_ns(pid_fd)
        if pid == 0:  # pragma: no cover - the exec'd process
            parent.close()
            new_keyring = not record.extra.get("no_new_keyring", False)
            _child(
                plan,
                child,
                joins,
                root_fd,
                child_stdio,
                cgroup_dirs,
                req.tty,
                agent,
                new_keyring,
                tuple(range(3, 3 + req.preserve_fds)),
            )
    except BaseException:
        for fd in opened:
            _close(fd)
        if master is not None:
            _close(master)
        raise
    for fd in opened:
        _close(fd)
    handle = ExecHandle(pid, master, record.id)
    msg = parent.recv()
    parent.close()
    warmer.stop()  # the child has joined the box's cgroups (process/warmer.py)
    if msg is not None and msg.get("type") == "error":
        handle.wait()
        handle.close()
        raise error_from_message(msg)
    return handle


def _fork_in_pid_ns(pid_fd: int | None) -> int:
    """fork() with the child inside the box's PID namespace; this process stays where it is.

    The child is born non-dumpable with our argv and environment blanked (fork_unexposed):
    the box sees it from its first instant and must not read the operator's environment,
    descriptors or the host's Python through /proc/PID."""
    if pid_fd is None:
        return sc.fork_unexposed(b"tuibox-exec")
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(pid_fd, sc.CLONE_NEWPID)
        try:
            pid = sc.fork_unexposed(b"tuibox-exec")
        except BaseException:
            sc.setns(own, sc.CLONE_NEWPID)
            raise
        if pid != 0:
            # Our own later children stay on the host. (The child keeps the box's, for its own.)
            sc.setns(own, sc.CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


def _child(
    plan: _Plan,
    chan: Channel,
    joins: list[tuple[str, int]],
    root_fd: int,
    stdio: tuple[int, int, int],
    cgroup_dirs: list[str],
    tty: bool,
    agent: tuple[int, dict[str, object], str] | None = None,
    new_keyring: bool = True,
    preserved: tuple[int, ...] = (),
) -> NoReturn:  # pragma: no cover - runs in the forked child
    step = "reset"
    try:
        # Nothing but what this child uses may reach the box (close_range, no upper bound).
        sc.close_fds_except(
            {
                *chan.fds(),
                *(fd for _, fd in joins),
                root_fd,
                *stdio,
                *((agent[0],) if agent is not None else ()),
                *preserved,
            }
        )
        # (the host's /proc is still ours: the agent wants the pid the host sees)
        message = agent_message(host_pid(), agent[1], agent[2]) if agent is not None else b""
        for sig in (
            _signal.SIGPIPE,
            _signal.SIGXFSZ,
            _signal.SIGINT,
            _signal.SIGTERM,
            _signal.SIGHUP,
            _signal.SIGQUIT,
            _signal.SIGWINCH,
            _signal.SIGCHLD,
        ):
            _signal.signal(sig, _signal.SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
        # Through the host's /proc, before joining anything of the box.
        if plan.oom_score_adj is not None:
            step = "process.oomScoreAdj"
            knobs.set_oom_score_adj(plan.oom_score_adj)
        step = "process.apparmorProfile"
        lsm.set_exec_labels(plan.apparmor_profile, None)
        step = "process.selinuxLabel"
        lsm.set_exec_labels(None, plan.selinux_label)
        step = "cgroup"
        for d in cgroup_dirs:
            cgroup_fs.write(os.path.join(d, "cgroup.procs"), "0")  # 0: the writer itself
        step = "namespaces"
        for kind, fd in joins:
            try:
                sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
            except OSError as e:
                raise OSError(e.errno, f"join {kind} namespace: {e.strerror}") from None
        step = "keyring"
        if new_keyring:
            sc.join_session_keyring(None)
        step = "root"
        os.fchdir(root_fd)
        os.chroot(".")
        step = "terminal"
        os.setsid()
        if tty:
            fcntl.ioctl(stdio[0], termios.TIOCSCTTY, 0)
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        # No upper bound: an fd the caller opened above 65535 must not reach a box either.
        sc.close_fds_except({chan.wfd, *((agent[0],) if agent is not None else ()), *preserved})
        for fd in preserved:  # --preserve-fds: these outlive execve
            os.set_inheritable(fd, True)
        step = "rlimits"
        for kind, res, soft, hard in plan.rlimits:
            try:
                resource.setrlimit(res, (soft, hard))
            except (OSError, ValueError) as e:
                raise OSError(getattr(e, "errno", 0) or errno.EPERM, f"{kind}: {e}") from None
        # As the init: a filter needs CAP_SYS_ADMIN unless no_new_privs is set, in which
        # case it is loaded last, right before execve.
        step = "seccomp"
        if plan.seccomp is not None and not plan.no_new_privileges:
            _load_seccomp(plan.seccomp, agent, message)
        step = "user"
        caps.drop_bounding(plan.sets)
        os.umask(plan.umask)
        os.setgroups(list(plan.groups))
        os.setgid(plan.gid)
        os.setuid(plan.uid)
        step = "cwd"
        enter_cwd(plan.cwd)
        step = "lookup"
        exe = _lookup(plan)
        step = "no-new-privileges"
        if plan.no_new_privileges:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        step = "confine"
        caps.apply_sets(plan.sets)
        step = "seccomp"
        if plan.seccomp is not None and plan.no_new_privileges:
            _load_seccomp(plan.seccomp, agent, message)
        step = "exec"
        os.execve(exe, list(plan.args), plan.env)
    except BaseException as e:
        try:
            chan.send_error(step, e)
        except OSError:
            pass
    os._exit(127 if step == "lookup" else 126 if step == "exec" else 1)


def _load_seccomp(
    compiled: tuple[bytes, int], agent: tuple[int, dict[str, object], str] | None, message: bytes
) -> None:
    notify_fd = load_filter(*compiled)
    if agent is not None:
        send_to_agent(agent[0], notify_fd, message)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _lookup(plan: _Plan) -> str:
    # The init's own lookup (linux/paths.py), so exec's 126/127 messages match run's.
    return find_program(plan.args[0], plan.env.get("PATH", defaults.DEFAULT_ENV[0][5:]))
