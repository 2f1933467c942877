"""The in-box init: what the forked child does, as one ordered list of named steps.

Everything the steps use is imported at module level: after pivot_root the host's Python
library is out of reach, so a lazy import inside a step would fail.

It runs in a process forked from a single-threaded CLI, already pid 1 of the box's new PID
namespace when it has one. A failing step is reported to the parent as error{step, errno,
msg} and the child exits; the parent re-raises it with the child's own words.
"""

from __future__ import annotations

import _signal
import os
import resource

from tuibox.runtime import defaults
from tuibox.runtime.linux import devices, lsm, mounts
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux import sysctl as knobs
from tuibox.runtime.linux.cgroup_mount import CgroupView, plan_view
from tuibox.runtime.linux.paths import ensure_at, enter_cwd, find_program
from tuibox.runtime.seccomp.load import agent_message, host_pid, load_filter, send_to_agent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from tuibox.runtime.console import ConsoleSetup
    from tuibox.runtime.process.sync import Channel
    from tuibox.runtime.spec_model import Spec
    from tuibox.runtime.userns import UsernsSetup


class InitPlan:
    """Everything the child needs, computed and validated by the parent before the fork."""

    def __init__(
        self,
        spec: Spec,
        name: str,
        rootfs: str,
        fifo_fd: int,
        stdio: tuple[int, int, int] | None = None,
        overlay: str | None = None,
        etc_files: dict[str, str] | None = None,
        unshare_flags: int = 0,
        join: list[tuple[str, str]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.rootfs = rootfs  # host path of the root the box pivots into
        # exec.fifo opened read-write by the parent: `start` writes the byte we wait for.
        # A fifo, not a directory: no fd the init holds can give the box a host cwd.
        self.fifo_fd = fifo_fd
        self.root_fd = -1  # O_PATH fd of rootfs, from `rootfs` to `pivot_root` (mount targets)
        self.die_with_parent = False  # a foreground run: the program dies with the CLI
        self.new_keyring = True  # a session keyring of its own (runc's default)
        self.no_pivot = False  # --no-pivot: MS_MOVE + chroot (a ramfs root cannot pivot)
        self.stdio = stdio  # fds to become 0, 1, 2 (detached boxes)
        # A detached box's output: the read end of its 1-2 pipe (the monitor pumps it; -1:
        # none), the capped log on disk and its cap (runtime/logfile.py; the keeper's too).
        self.log_pipe = -1
        self.log_path = ""
        self.log_max_size = -1
        self.overlay = overlay  # overlayfs mount data to mount on rootfs first
        self.etc_files = etc_files if etc_files is not None else {}  # box path -> host file
        self.unshare_flags = unshare_flags  # namespaces to create (pid: the parent did it)
        self.join = join if join is not None else []  # (type, path), pid excluded
        # Hooks that stages add (capabilities, seccomp, console); all run in the child.
        self.before_user: list[Callable[[InitPlan], None]] = []
        self.before_exec: list[Callable[[InitPlan], None]] = []
        self.keep_fds: set[int] = set()  # further fds the child must not close
        self.console: ConsoleSetup | None = None  # process.terminal (console.py)
        self.userns: UsernsSetup | None = None  # a user namespace (userns.py)
        self.exe = ""  # filled by the lookup step
        self.host_ready = False  # the parent's `continue` already came (linux.sysctl)
        # (BPF program, seccomp(2) flags), compiled by the parent (runtime/seccomp/stage.py)
        self.seccomp: tuple[bytes, int] | None = None
        # SCMP_ACT_NOTIFY: (socket to the agent, container state, metadata); the message
        # itself once the init knows its host pid
        self.seccomp_agent: tuple[int, dict[str, object], str] | None = None
        self.seccomp_message = b""
        self.cgroup_view: CgroupView | None = None  # for `type: cgroup` mounts
        self.start_hooks: Callable[[], None] | None = None  # startContainer, made ready
        self.restart = False  # a restart policy: the monitor consults process/restart.py


def _reset_process(plan: InitPlan, chan: Channel) -> None:
    # Python ignores SIGPIPE and SIGXFSZ and handles SIGINT; an ignored signal survives
    # execve, so the box program would inherit Python's choices.
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    if plan.stdio is not None:
        for target, fd in enumerate(plan.stdio):
            if fd != target:
                os.dup2(fd, target)
        # The originals (box.log, /dev/null) are not needed once they are 0-2.
        keep = {*plan.keep_fds, plan.fifo_fd, *chan.fds()}
        for fd in set(plan.stdio):
            if fd > 2 and fd not in keep:
                os.close(fd)
    # The box's init dies with the parent only while it is being set up.
    sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)


def _oom_score_adj(plan: InitPlan, chan: Channel) -> None:
    # Through the host's /proc, before any namespace; every process of the box inherits it.
    if plan.spec.process.oom_score_adj is not None:
        knobs.set_oom_score_adj(plan.spec.process.oom_score_adj)


def _user_namespace(plan: InitPlan, chan: Channel) -> None:
    # Before every other namespace, so that the ones we unshare are owned by it.
    if plan.userns is not None:
        plan.userns.enter()


def _namespaces(plan: InitPlan, chan: Channel) -> None:
    for kind, path in plan.join:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
        except OSError as e:
            raise OSError(e.errno, f"join {kind} namespace {path}: {e.strerror}") from None
        finally:
            os.close(fd)
    # A cgroup namespace waits until we are in the box's cgroups (`_cgroup_namespace`):
    # its root is the cgroup we are in when it is made.
    flags = plan.unshare_flags & ~sc.CLONE_NEWCGROUP
    if flags:
        sc.unshare(flags)


def _keyring(plan: InitPlan, chan: Channel) -> None:
    # Otherwise the box shares the operator's session keyring and reads what it holds.
    if plan.new_keyring:
        sc.join_session_keyring(None)


def _announce_namespaces(plan: InitPlan, chan: Channel) -> None:
    # The parent now places us in cgroups and wires the network (stage attach) while we do
    # the mount work; we meet again at `_await_host` before anything the box runs.
    chan.send("namespaces")


def _await_host(plan: InitPlan, chan: Channel) -> None:
    if not plan.host_ready:
        chan.expect("continue")
        plan.host_ready = True


def _hostname(plan: InitPlan, chan: Channel) -> None:
    if plan.spec.namespace("uts") is not None:
        sc.sethostname(plan.spec.hostname or plan.name)


def _sysctl(plan: InitPlan, chan: Channel) -> None:
    # Written through the host's /proc, which resolves each key in our own namespaces, before
    # the box's /proc/sys turns read-only. A key of an interface (net.ipv4.conf.eth0.*) needs
    # the parent's network set up first: a box with sysctls gives up that overlap.
    values = dict(plan.spec.linux.sysctl)
    if plan.spec.domainname:
        values = {"kernel.domainname": plan.spec.domainname, **values}
    if values:
        _await_host(plan, chan)
        knobs.apply_sysctls(values)


def _apparmor(plan: InitPlan, chan: Channel) -> None:
    # Takes effect at execve; written now, while /proc is still the host's.
    lsm.set_exec_labels(plan.spec.process.apparmor_profile, None)


def _selinux(plan: InitPlan, chan: Channel) -> None:
    lsm.set_exec_labels(None, plan.spec.process.selinux_label)


# Root propagations that can be set before pivot_root; the others wait until after it.
_BEFORE_PIVOT = frozenset({"private", "rprivate", "slave", "rslave"})


def _rootfs(plan: InitPlan, chan: Channel) -> None:
    # Never shared before pivot_root: a shared "/" (systemd hosts) would carry every mount
    # below to the host's namespace, and pivot_root refuses a shared parent. A shared or
    # unbindable root is applied once the box's root is "/" (`_pivot_root`), as runc does.
    prop = plan.spec.linux.rootfs_propagation or "rprivate"
    flags = mounts.PROPAGATION[prop if prop in _BEFORE_PIVOT else "rslave"]
    sc.mount(None, "/", None, flags | sc.MS_REC, None)
    if plan.overlay is not None:
        sc.mount("overlay", plan.rootfs, "overlay", 0, plan.overlay)
    if plan.userns is None or not plan.userns.attach_root(plan):
        # pivot_root needs the new root to be a mount point (a userns box's root is one
        # already: a detached mount the parent made, see userns.py).
        sc.mount(plan.rootfs, plan.rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    # Every mount target from here to pivot_root is resolved inside the root through it.
    plan.root_fd = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _cgroup_namespace(plan: InitPlan, chan: Channel) -> None:
    # Both need the parent to have put us in the box's cgroups (stage attach) first.
    view = any(m.type == "cgroup" for m in plan.spec.mounts)
    new_ns = bool(plan.unshare_flags & sc.CLONE_NEWCGROUP)
    if not (view or new_ns):
        return
    _await_host(plan, chan)
    if view:
        # Read before the namespace, which would show our cgroup paths as "/".
        plan.cgroup_view = plan_view(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"))
    if new_ns:
        sc.unshare(sc.CLONE_NEWCGROUP)


def _mounts(plan: InitPlan, chan: Channel) -> None:
    bundle = str(plan.spec.bundle)
    own_ns = bool(plan.unshare_flags & sc.CLONE_NEWCGROUP)
    for m in lsm.labelled_mounts(plan.spec.mounts, plan.spec.linux.mount_label):
        if m.type == "cgroup" and plan.cgroup_view is not None:
            mounts.mount_cgroup(m, plan.root_fd, plan.rootfs, plan.cgroup_view, own_ns)
        else:
            mounts.mount_one(plan.rootfs, m, bundle, plan.root_fd)


def _devices(plan: InitPlan, chan: Channel) -> None:
    wanted = list(plan.spec.linux.devices)
    if mounts.fresh_dev(plan.spec.mounts):
        given = {d.path for d in wanted}
        wanted = [d for d in defaults.DEVICES if d.path not in given] + wanted
    for dev in wanted:
        devices.create_device(plan.rootfs, dev, plan.root_fd)
    if mounts.fresh_dev(plan.spec.mounts):
        # /dev/core only where the kernel has /proc/kcore (CONFIG_PROC_KCORE), as runc.
        kcore = os.path.exists("/proc/kcore")
        links = [ln for ln in defaults.DEV_SYMLINKS if kcore or ln[1] != "/proc/kcore"]
        devices.create_symlinks(plan.rootfs, tuple(links), plan.root_fd)


def _etc_files(plan: InitPlan, chan: Channel) -> None:
    taken = {m.destination for m in plan.spec.mounts}
    for dest, source in plan.etc_files.items():
        if dest in taken:
            continue
        try:
            target = ensure_at(plan.root_fd, plan.rootfs, dest, False)
        except OSError:
            # A read-only image without /etc cannot take the file; the box runs without it.
            continue
        try:
            if plan.userns is not None and plan.userns.attach_file(source, target):
                continue  # a detached mount the parent made (userns.py)
            mounts.mount_at(source, target, None, sc.MS_BIND, None, dest)
        finally:
            os.close(target)


def _cwd_exists(plan: InitPlan, chan: Channel) -> None:
    # runc creates a missing cwd; so do we, before the root may become read-only. A cwd
    # through a magic link (/proc/self/fd/N) is not created here and is refused by `cwd`.
    try:
        os.close(ensure_at(plan.root_fd, plan.rootfs, plan.spec.process.cwd, True))
    except OSError:
        pass


def _console(plan: InitPlan, chan: Channel) -> None:
    # After pivot_root: the pty must come from the box's own devpts, so that `tty` and
    # /dev/console name it inside; console.py sends the master out and takes the slave.
    if plan.console is not None:
        plan.console.in_init(plan)


def _pivot_root(plan: InitPlan, chan: Channel) -> None:
    os.close(plan.root_fd)
    plan.root_fd = -1
    os.chdir(plan.rootfs)
    if plan.no_pivot:
        # runc's --no-pivot: pivot_root(2) refuses a root on initramfs; move the box's root
        # over "/" and chroot into it (the old root stays below it, out of reach).
        sc.mount(plan.rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
        os.chdir("/")
        return
    sc.pivot_root(".", ".")
    # The old root now sits under the new one; detach it without touching the host's mounts.
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    prop = plan.spec.linux.rootfs_propagation
    if prop is not None and prop not in _BEFORE_PIVOT:
        sc.mount(None, "/", None, mounts.PROPAGATION[prop], None)


def _create_container_hooks(plan: InitPlan, chan: Channel) -> None:
    hooks = plan.spec.hooks
    if "createContainer" not in hooks and "startContainer" not in hooks:
        return
    # Imported and encoded now, while the host's library is at hand (pivot_root is next).
    from tuibox.runtime import hooks as runner

    _await_host(plan, chan)  # the parent ran prestart and createRuntime first
    pid = host_pid()
    spec = plan.spec

    def state(status: str) -> bytes:
        return runner.state_json(
            spec.oci_version, plan.name, status, pid, spec.bundle, spec.annotations
        )

    runner.run_hooks("createContainer", hooks.get("createContainer", ()), state("creating"))
    if "startContainer" in hooks:
        started = state("created")
        plan.start_hooks = lambda: runner.run_hooks(
            "startContainer", hooks["startContainer"], started
        )


def _start_container_hooks(plan: InitPlan, chan: Channel) -> None:
    if plan.start_hooks is not None:
        plan.start_hooks()


# Masking runs before pivot_root, on paths resolved inside the rootfs: the host's /dev/null
# is then at hand even when the box's /dev has none.
def _masked_paths(plan: InitPlan, chan: Channel) -> None:
    for path in plan.spec.linux.masked_paths:
        mounts.mask_path(plan.root_fd, plan.rootfs, path)


def _readonly_paths(plan: InitPlan, chan: Channel) -> None:
    for path in plan.spec.linux.readonly_paths:
        mounts.readonly_path(plan.root_fd, plan.rootfs, path)


def _readonly_root(plan: InitPlan, chan: Channel) -> None:
    if plan.spec.root.readonly:
        mounts.remount_readonly("/")


def _rlimits(plan: InitPlan, chan: Channel) -> None:
    for rl in plan.spec.process.rlimits:
        try:
            resource.setrlimit(rl.resource, (rl.soft, rl.hard))
        except (OSError, ValueError) as e:
            _, hard_now = resource.getrlimit(rl.resource)
            if rl.hard > hard_now:
                raise OSError(
                    1,
                    f"{rl.type}: cannot raise the hard limit from {hard_now} to {rl.hard} "
                    "(this host does not give CAP_SYS_RESOURCE)",
                ) from e
            raise OSError(getattr(e, "errno", 22), f"{rl.type}: {e}") from e


def _seccomp_agent(plan: InitPlan, chan: Channel) -> None:
    # The agent wants our pid as the host sees it: readable only while /proc is the host's.
    if plan.seccomp_agent is not None:
        _, state, metadata = plan.seccomp_agent
        plan.seccomp_message = agent_message(host_pid(), state, metadata)


def _load_seccomp(plan: InitPlan, compiled: tuple[bytes, int]) -> None:
    notify_fd = load_filter(*compiled)
    if plan.seccomp_agent is not None:
        # at once: a notified call of ours would wait for an agent without the fd
        send_to_agent(plan.seccomp_agent[0], notify_fd, plan.seccomp_message)


# Loading a filter needs no_new_privs or CAP_SYS_ADMIN. With noNewPrivileges it waits until
# just before execve (as runc), so it never filters our own set-up; without, it must come
# while the init is still privileged: before the user and capability steps.
def _seccomp_privileged(plan: InitPlan, chan: Channel) -> None:
    if plan.seccomp is not None and not plan.spec.process.no_new_privileges:
        _load_seccomp(plan, plan.seccomp)


def _seccomp_last(plan: InitPlan, chan: Channel) -> None:
    if plan.seccomp is not None and plan.spec.process.no_new_privileges:
        _load_seccomp(plan, plan.seccomp)


def _user(plan: InitPlan, chan: Channel) -> None:
    for hook in plan.before_user:
        hook(plan)
    user = plan.spec.process.user
    os.umask(user.umask if user.umask is not None else 0o022)
    os.setgroups(list(user.additional_gids))
    os.setgid(user.gid)
    os.setuid(user.uid)


def _cwd(plan: InitPlan, chan: Channel) -> None:
    enter_cwd(plan.spec.process.cwd)


def _env_path(plan: InitPlan) -> str:
    for item in plan.spec.process.env:
        if item.startswith("PATH="):
            return item[5:]
    return defaults.DEFAULT_ENV[0][5:]


def _lookup(plan: InitPlan, chan: Channel) -> None:
    plan.exe = find_program(plan.spec.process.args[0], _env_path(plan))


def _no_new_privileges(plan: InitPlan, chan: Channel) -> None:
    if plan.spec.process.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def _before_exec(plan: InitPlan, chan: Channel) -> None:
    for hook in plan.before_exec:
        hook(plan)


def _ready_then_wait_for_start(plan: InitPlan, chan: Channel) -> None:
    if not plan.die_with_parent:
        # Before `ready`: in engine mode our parent, the CLI, exits as soon as it reads it.
        sc.prctl(sc.PR_SET_PDEATHSIG, 0)
    chan.send("ready")
    # Blocks until `start` writes its byte into exec.fifo. We hold the fifo open read-write,
    # so `start` can tell a live init (its open for writing succeeds) from a dead one (ENXIO).
    while True:
        try:
            if os.read(plan.fifo_fd, 1):
                break
        except InterruptedError:
            continue
    os.close(plan.fifo_fd)
    # A foreground run's program dies with its CLI even by SIGKILL (then `gc` removes the
    # box); set again here since a change of credentials clears it. Others outlive `create`.
    sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL if plan.die_with_parent else 0)


STEPS: tuple[tuple[str, Callable[[InitPlan, Channel], None]], ...] = (
    ("reset", _reset_process),
    ("process.oomScoreAdj", _oom_score_adj),
    ("user-namespace", _user_namespace),
    ("namespaces", _namespaces),
    ("keyring", _keyring),
    ("sync", _announce_namespaces),
    ("seccomp", _seccomp_agent),
    ("hostname", _hostname),
    ("linux.sysctl", _sysctl),
    ("process.apparmorProfile", _apparmor),
    ("process.selinuxLabel", _selinux),
    ("rootfs", _rootfs),
    ("cgroup-namespace", _cgroup_namespace),
    ("mounts", _mounts),
    ("devices", _devices),
    ("etc-files", _etc_files),
    ("cwd", _cwd_exists),
    ("readonly-paths", _readonly_paths),  # then masking, as runc: a mask may sit below
    ("masked-paths", _masked_paths),
    ("hooks.createContainer", _create_container_hooks),
    ("pivot_root", _pivot_root),
    ("console", _console),
    ("readonly-root", _readonly_root),
    ("rlimits", _rlimits),
    ("seccomp", _seccomp_privileged),
    ("user", _user),
    ("cwd", _cwd),
    ("lookup", _lookup),
    ("no-new-privileges", _no_new_privileges),
    ("confine", _before_exec),
    ("host-setup", _await_host),
    ("start", _ready_then_wait_for_start),
    ("hooks.startContainer", _start_container_hooks),
    ("seccomp", _seccomp_last),
)


def run(plan: InitPlan, chan: Channel) -> NoReturn:
    """Run every step, then exec the box program. Never returns."""
    step = "init"
    try:
        for step, fn in STEPS:  # noqa: B007 - `step` names the failure below
            fn(plan, chan)
        step = "exec"
        env = dict(item.split("=", 1) for item in plan.spec.process.env)
        os.execve(plan.exe, list(plan.spec.process.args), env)
    except BaseException as e:
        try:
            chan.send_error(step, e)
        except OSError:
            pass
    os._exit(127 if step == "lookup" else 1)
