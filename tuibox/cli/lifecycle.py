"""Lifecycle verbs: create, start, run, kill, stop, restart, destroy, logs, spec, boot.

The queries `state` and `list` are in cli/query.py (engines call `state` often: it loads
none of the option tables below)."""

from __future__ import annotations

import os
import sys

from tuibox.cli import Globals, for_each, warn
from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry
from tuibox.cli.limits import LIMIT_OPTS, LimitOptions
from tuibox.cli.network import NET_OPTS
from tuibox.runtime import fastjson
from tuibox.runtime.errors import BoxNotFound, SpecError, TuiboxError, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tuibox.runtime.box import CreateRequest, Runtime
    from tuibox.runtime.state import BoxRecord

NAME = Arg("name", "the box's name")

SPEC_OPTS = (
    Opt(("--spec", "-s"), "spec", "FILE", help="config.json to use (default ./config.json)"),
    Opt(("--bundle", "-b"), "bundle", "DIR", help="bundle directory (its config.json)"),
    Opt(("--netconf", "-n"), "netconf", "FILE", help="netconf.json (default ./netconf.json)"),
    Opt(("--rootfs",), "rootfs", "DIR", help="run this root filesystem with a generated spec"),
    Opt(("--image",), "image", "NAME", help="an image to run (busybox is built in)"),
    Opt(("--hostname",), "hostname", "NAME", help="the box's hostname"),
    Opt(("-e", "--env"), "env", "K=V", multiple=True, help="set an environment variable"),
    Opt(("-w", "--workdir", "--cwd"), "cwd", "DIR", help="working directory inside the box"),
    Opt(("-u", "--user"), "user", "UID[:GID]", help="user (and group) to run as"),
    Opt(("-t", "--tty"), "tty", help="give the box a terminal"),
    Opt(("--read-only",), "read_only", help="mount the root filesystem read-only"),
    Opt(
        ("--userns",),
        "userns",
        "auto|host",
        help="auto: a user namespace with a private range of 65536 ids (default: host)",
    ),
    Opt(("--pid-file",), "pid_file", "FILE", help="write the init's pid here (runc)"),
    Opt(
        ("--no-new-keyring",),
        "no_new_keyring",
        help="share the caller's session keyring instead of a new one (runc)",
    ),
    Opt(
        ("--console-socket",),
        "console_socket",
        "PATH",
        help="send the terminal's master fd to this unix socket (OCI; needs -t, detached)",
    ),
    Opt(
        ("--preserve-fds",),
        "preserve_fds",
        "N",
        help="pass the caller's fds 3 .. 3+N-1 to the box program (runc)",
    ),
    Opt(("--no-pivot",), "no_pivot", help="MS_MOVE + chroot instead of pivot_root (runc)"),
    Opt(
        ("--security-opt",),
        "security_opt",
        "OPT",
        multiple=True,
        help="seccomp=unconfined, or seccomp=FILE: a docker or OCI seccomp profile",
    ),
    Opt(
        ("--log-max-size",),
        "log_max_size",
        "SIZE",
        help="cap a detached box's log (default 10m; -1: no cap); rotated to box.log.1",
    ),
    Opt(
        ("--restart",),
        "restart",
        "POLICY",
        help="no, on-failure[:N], always or unless-stopped: its monitor starts the program "
        "again when it exits (detached boxes)",
    ),
    *LIMIT_OPTS,
    *NET_OPTS,
)


class CreateOptions(LimitOptions):
    COMMAND = Command(
        "create",
        "Create a box; its program waits for 'tuibox start'.",
        SPEC_OPTS,
        (NAME, Arg("command", required=False, rest=True)),
    )
    __slots__ = (
        "bundle",
        "command",
        "console_socket",
        "cwd",
        "env",
        "hostname",
        "image",
        "log_max_size",
        "name",
        "netconf",
        "network",
        "no_new_keyring",
        "no_pivot",
        "pid_file",
        "preserve_fds",
        "publish",
        "read_only",
        "restart",
        "rootfs",
        "security_opt",
        "spec",
        "tty",
        "user",
        "userns",
    )
    spec: str | None
    bundle: str | None
    netconf: str | None
    rootfs: str | None
    image: str | None
    log_max_size: str | None
    restart: str | None
    hostname: str | None
    env: list[str]
    cwd: str | None
    user: str | None
    tty: bool
    read_only: bool
    userns: str | None
    pid_file: str | None
    no_new_keyring: bool
    console_socket: str | None
    preserve_fds: str | None
    no_pivot: bool
    security_opt: list[str]
    network: str | None
    publish: list[str]
    name: str
    command: list[str]


class RunOptions(CreateOptions):
    COMMAND = Command(
        "run",
        "Create and start a box. In the foreground its exit status is tuibox's and the box\n"
        "is removed afterwards unless --keep; -d detaches and logs its output.",
        (
            *SPEC_OPTS,
            Opt(("-d", "--detach"), "detach", help="run in the background"),
            Opt(("--keep",), "keep", help="keep the box after it exits (foreground)"),
            Opt(("--rm",), "rm", help="remove after exit (the default in the foreground)"),
            Opt(("-i", "--interactive"), "interactive", help="accepted for docker habits"),
        ),
        (NAME, Arg("command", required=False, rest=True)),
    )
    __slots__ = ("detach", "interactive", "keep", "rm")
    detach: bool
    keep: bool
    rm: bool
    interactive: bool


class NameOptions(Options):
    """Verbs whose only word is the box's name."""

    __slots__ = ("name",)
    name: str


class StartOptions(Options):
    COMMAND = Command(
        "start",
        "Start the program of a created box; a stopped one is made again from its request\n"
        "(same config, writable layer, limits, ports; its address when still free).",
        (
            Opt(
                ("--restarted",),
                "restarted",
                help="(the box's monitor) a restart by its policy: counted, and skipped "
                "if a user stopped or started the box meanwhile",
            ),
        ),
        (NAME,),
    )
    __slots__ = ("name", "restarted")
    name: str
    restarted: bool


class RestartOptions(Options):
    COMMAND = Command(
        "restart",
        "Stop boxes (SIGTERM, then SIGKILL after the timeout) and start them again.",
        (Opt(("-t", "--timeout", "--time"), "timeout", "SECONDS", default="10"),),
        (Arg("names", rest=True),),
    )
    __slots__ = ("names", "timeout")
    timeout: str
    names: list[str]


class BootOptions(Options):
    COMMAND = Command(
        "boot",
        "Start the stopped boxes whose restart policy is always, or unless-stopped and not\n"
        "stopped by a user: run it once at boot (a systemd unit or rc.local; see README).",
        (),
        (),
    )
    __slots__ = ()


class KillOptions(Options):
    COMMAND = Command(
        "kill",
        "Send a signal (default TERM) to a box's init.",
        (
            Opt(("-a", "--all"), "all", help="signal every process of the box"),
            Opt(("--pid",), "pid", "PID", help="signal one process of the box (host pid)"),
        ),
        (NAME, Arg("signal", required=False)),
    )
    __slots__ = ("all", "name", "pid", "signal")
    all: bool
    pid: str | None
    name: str
    signal: str | None


class StopOptions(Options):
    COMMAND = Command(
        "stop",
        "Send SIGTERM, then SIGKILL after the timeout.",
        (Opt(("-t", "--timeout", "--time"), "timeout", "SECONDS", default="10"),),
        (NAME,),
    )
    __slots__ = ("name", "timeout")
    timeout: str
    name: str


class DestroyOptions(Options):
    COMMAND = Command(
        "destroy",
        "Remove a box; a running one only with --force.",
        (Opt(("-f", "--force"), "force", help="kill it first if it runs"),),
        (Arg("names", rest=True),),
        aliases=("delete", "rm"),
    )
    __slots__ = ("force", "names")
    force: bool
    names: list[str]


class LogsOptions(Options):
    COMMAND = Command(
        "logs",
        "Print the output of a detached box.",
        (Opt(("-f", "--follow"), "follow", help="keep printing new output"),),
        (NAME,),
    )
    __slots__ = ("follow", "name")
    follow: bool
    name: str


class SpecOptions(Options):
    COMMAND = Command(
        "spec",
        "Write a starter config.json into the bundle directory.",
        (
            Opt(("-b", "--bundle"), "bundle", "DIR", default="."),
            Opt(("--rootfs",), "rootfs", "PATH", default="rootfs"),
        ),
        (Arg("command", required=False, rest=True),),
    )
    __slots__ = ("bundle", "command", "rootfs")
    bundle: str
    rootfs: str
    command: list[str]


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


def runtime(g: Globals) -> Runtime:
    from tuibox.runtime.box import Runtime

    return Runtime(g.root, g.data_root)  # the data root: boxes' logs and layers


# ---- building the request -------------------------------------------------------------------


# How the runtime's request builder names each option in its errors: our flags.
FLAG_NAMES = {
    "env": "--env",
    "workdir": "--workdir",
    "user": "--user",
    "userns": "--userns",
    "terminal": "-t",
    "console_socket": "--console-socket",
    "log_max_size": "--log-max-size",
    "restart": "--restart",
    "preserve_fds": "--preserve-fds",
    "network": "--network",
    "netconf": "--netconf",
    "publish": "--publish",
    "seccomp": "--security-opt seccomp",
    "memory": "--memory",
    "memory_swap": "--memory-swap",
    "cpus": "--cpus",
    "cpu_shares": "--cpu-shares",
    "cpuset_cpus": "--cpuset-cpus",
    "cpuset_mems": "--cpuset-mems",
    "pids_limit": "--pids-limit",
}
DEFAULT_NETCONF = "netconf.json"


def engine_mode(opts: CreateOptions, g: Globals) -> bool:
    """runc's create (docs/OCI_CLI.md): the global --log or --pid-file, the flags every
    engine passes and tuibox's own boxes never need, mean the caller reaps the init."""
    return bool(g.log or opts.pid_file)


def systemd_path(path: str) -> str:
    """A "slice:prefix:name" cgroupsPath as the cgroupfs path runc's systemd driver gives it:
    "machine.slice:libpod:ID" -> "/machine.slice/libpod-ID.scope", "a-b.slice" nests as
    "/a.slice/a-b.slice"."""
    parts = path.split(":")
    if len(parts) != 3:
        raise SpecError(
            f"config.json: linux.cgroupsPath {path!r}: with --systemd-cgroup it must be "
            "slice:prefix:name"
        )
    slice_name, prefix, name = parts
    slice_name = slice_name or "system.slice"
    if not slice_name.endswith(".slice") or "/" in slice_name or not name or "/" in name:
        raise SpecError(f"config.json: linux.cgroupsPath {path!r}: not a systemd slice:prefix:name")
    out = ""
    if slice_name != "-.slice":
        words = slice_name[: -len(".slice")].split("-")
        if "" in words:
            raise SpecError(f"config.json: linux.cgroupsPath {path!r}: bad slice {slice_name!r}")
        for k in range(1, len(words) + 1):
            out += "/" + "-".join(words[:k]) + ".slice"
    unit = name if name.endswith(".slice") else f"{prefix + '-' if prefix else ''}{name}.scope"
    return f"{out}/{unit}"


def load_request(opts: CreateOptions, g: Globals, detach: bool) -> CreateRequest:
    """The options -> the runtime's request builder (runtime/request.py)."""
    from tuibox.cli.security import seccomp_choice
    from tuibox.runtime.request import CreateRequest

    if opts.rootfs and opts.image:
        raise SpecError("use either --rootfs or --image, not both")
    if opts.image and (opts.spec or opts.bundle):
        raise SpecError("--image makes its own spec: drop --spec/--bundle")
    if opts.console_socket and not detach:
        raise UsageError("run: --console-socket needs -d (the box's terminal goes there)")
    netconf = opts.netconf
    if netconf is None and opts.network is None and os.path.isfile(DEFAULT_NETCONF):
        netconf = DEFAULT_NETCONF  # box's behaviour: ./netconf.json unless --network
    options: dict[str, Any] = {
        "detach": detach,
        "hostname": opts.hostname,
        "env": opts.env,
        "workdir": opts.cwd,
        "user": opts.user,
        "terminal": opts.tty,
        "read_only": opts.read_only,
        **opts.limit_flags(),
        "network": opts.network,
        "netconf": netconf,
        "publish": opts.publish,
        "seccomp": seccomp_choice(opts.security_opt),
        "userns": opts.userns,
        "no_new_keyring": opts.no_new_keyring,
        "console_socket": opts.console_socket,
        "log_max_size": opts.log_max_size,
        "engine": detach and engine_mode(opts, g),
        "preserve_fds": opts.preserve_fds,
        "no_pivot": opts.no_pivot,
        "pid_file": opts.pid_file,
        "restart": opts.restart,
        "names": FLAG_NAMES,
    }
    if opts.rootfs:
        req = CreateRequest.from_rootfs(opts.name, opts.rootfs, opts.command or None, **options)
    elif opts.image:
        req = CreateRequest.from_image(
            opts.name, opts.image, opts.command, data_root=g.data_root, root=g.root, **options
        )
    else:
        req = CreateRequest.from_bundle(
            opts.name, opts.bundle, config=opts.spec, command=opts.command or None, **options
        )
    cg_path = req.spec.linux.cgroups_path
    if g.systemd_cgroup and cg_path and ":" in cg_path:
        linux = req.spec.linux.replace(cgroups_path=systemd_path(cg_path))
        req.spec = req.spec.replace(linux=linux)
        if req.recipe is not None:  # a start of the stopped box translates it no more
            req.recipe["cgroups_path"] = linux.cgroups_path
    for line in req.warnings:
        warn(line)
    return req


# ---- verbs ----------------------------------------------------------------------------------


def do_create(opts: CreateOptions, g: Globals) -> int:
    req = load_request(opts, g, detach=True)
    runtime(g).create(req)
    return 0


def do_run(opts: RunOptions, g: Globals) -> int:
    rt = runtime(g)
    if opts.detach:
        req = load_request(opts, g, detach=True)
        rt.create(req)
        try:
            rt.start(req.name)
        except TuiboxError:
            rt.destroy(req.name, force=True)
            raise
        if not req.engine:  # runc's run -d prints nothing
            sys.stdout.write(req.name + "\n")
        return 0
    req = load_request(opts, g, detach=False)
    return int(rt.run(req, keep=opts.keep))


def do_start(opts: StartOptions, g: Globals) -> int:
    rt = runtime(g)
    if opts.restarted:
        from tuibox.runtime.recreate import start_again

        start_again(rt, opts.name, restarted=True)
    else:
        rt.start(opts.name)
    for line in rt.warnings:
        warn(line)
    return 0


def _timeout(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"--timeout {text!r}: must be a number of seconds") from None


def do_restart(opts: RestartOptions, g: Globals) -> int:
    if not opts.names:
        raise UsageError("restart: missing NAME")
    timeout = _timeout(opts.timeout)
    rt = runtime(g)

    def restart(name: str) -> None:
        rt.restart(name, timeout)
        for line in rt.warnings:
            warn(line)

    return for_each(opts.names, restart)


def do_boot(opts: BootOptions, g: Globals) -> int:
    from tuibox.cli import fail

    failed = 0
    for name, problem in runtime(g).boot():
        if problem is None:
            sys.stdout.write(name + "\n")
        else:
            failed = fail(problem if repr(name) in problem else f"box {name!r}: {problem}")
    return failed


def do_kill(opts: KillOptions, g: Globals) -> int:
    from tuibox.runtime.units import parse_signal

    sig = parse_signal(opts.signal)
    rt = runtime(g)
    if opts.all or opts.pid:
        if not hasattr(rt, "kill_processes"):
            raise Unsupported("kill --all/--pid needs the box's cgroup (not available yet)")
        rt.kill_processes(opts.name, sig, int(opts.pid) if opts.pid else None)
        return 0
    rt.kill(opts.name, sig)
    return 0


def do_stop(opts: StopOptions, g: Globals) -> int:
    runtime(g).stop(opts.name, _timeout(opts.timeout))
    return 0


def do_destroy(opts: DestroyOptions, g: Globals) -> int:
    names = opts.names
    if not names:
        raise UsageError("destroy: missing NAME")
    rt = runtime(g)
    force = opts.force

    def destroy(name: str) -> None:
        try:
            rt.destroy(name, force=force)
        except BoxNotFound:
            # runc's `delete --force` of an unknown id succeeds (engines clean up twice);
            # tuibox's own `destroy`/`rm --force` (the TUI's) still says it does not exist.
            if not (force and g.word == "delete"):
                raise

    return for_each(names, destroy)


def record_json(r: BoxRecord, root: str) -> dict[str, Any]:
    # Kept for callers of the old name; the mapping lives on the record (runtime/state.py).
    return r.summary(root)


def do_logs(opts: LogsOptions, g: Globals) -> int:
    out = sys.stdout.buffer
    for chunk in runtime(g).logs(opts.name, follow=opts.follow):
        out.write(chunk)
        out.flush()
    return 0


def do_spec(opts: SpecOptions, g: Globals) -> int:
    from tuibox.runtime import defaults
    from tuibox.runtime.seccomp.profile import default_profile
    from tuibox.runtime.spec import starter_spec

    target = os.path.join(opts.bundle, "config.json")
    if os.path.exists(target):
        raise TuiboxError(f"{target}: already exists")
    data = starter_spec(
        opts.command or ["sh"],
        rootfs=opts.rootfs,
        seccomp=default_profile(defaults.CAPABILITIES),
    )
    with open(target, "w") as f:
        f.write(fastjson.dumps(data, indent=2) + "\n")
    return 0


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "create": entry(CreateOptions, do_create),
    "run": entry(RunOptions, do_run),
    "start": entry(StartOptions, do_start),
    "kill": entry(KillOptions, do_kill),
    "stop": entry(StopOptions, do_stop),
    "restart": entry(RestartOptions, do_restart),
    "boot": entry(BootOptions, do_boot),
    "destroy": entry(DestroyOptions, do_destroy),
    "logs": entry(LogsOptions, do_logs),
    "spec": entry(SpecOptions, do_spec),
}
