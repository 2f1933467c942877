"""Lifecycle verbs: create, start, run, kill, stop, destroy, state, list, logs, spec."""

from __future__ import annotations

import os
import sys

from tuibox.cli import Globals, for_each, warn
from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry
from tuibox.cli.limits import LIMIT_OPTS, LimitOptions, apply_limit_flags
from tuibox.cli.network import NET_OPTS, network_options
from tuibox.runtime import fastjson
from tuibox.runtime.errors import SpecError, TuiboxError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tuibox.runtime.box import CreateRequest, Runtime
    from tuibox.runtime.spec_model import Spec, User
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
        ("--security-opt",),
        "security_opt",
        "OPT",
        multiple=True,
        help="seccomp=unconfined, or seccomp=FILE: a docker or OCI seccomp profile",
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
        "name",
        "netconf",
        "network",
        "no_new_keyring",
        "pid_file",
        "publish",
        "read_only",
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


class StartOptions(NameOptions):
    COMMAND = Command("start", "Start the program of a created box.", (), (NAME,))
    __slots__ = ()


class StateOptions(NameOptions):
    COMMAND = Command("state", "Print a box's OCI state JSON.", (), (NAME,))
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


class ListOptions(Options):
    COMMAND = Command(
        "list",
        "List boxes.",
        (
            Opt(("-f", "--format"), "format", "table|json", default="table"),
            Opt(("-q", "--quiet"), "quiet", help="names only"),
        ),
        (),
    )
    __slots__ = ("format", "quiet")
    format: str
    quiet: bool


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

    return Runtime(g.root)


# ---- building the request -------------------------------------------------------------------


def load_request(opts: CreateOptions, g: Globals, detach: bool) -> CreateRequest:
    from tuibox.runtime import spec as spec_mod
    from tuibox.runtime.box import CreateRequest
    from tuibox.runtime.state import check_name

    name = check_name(opts.name)
    # First: with a network this forks the netlink worker, whose import of pyroute2 then
    # overlaps with loading the spec and creating the box (cli/network.py).
    net = network_options(opts)
    command = opts.command
    image = None
    overlay = None
    if opts.rootfs:
        if opts.image:
            raise SpecError("use either --rootfs or --image, not both")
        rootfs = os.path.abspath(opts.rootfs)
        data = spec_mod.starter_spec(command or ["/bin/sh"], rootfs=rootfs)
        spec = spec_mod.parse_spec(data, os.getcwd(), "generated spec")
    elif opts.image:
        if opts.spec or opts.bundle:
            raise SpecError("--image makes its own spec: drop --spec/--bundle")
        from tuibox.cli import images_bridge

        spec, image, overlay = images_bridge.spec_for_image(opts.image, command, g)
    else:
        if opts.spec:
            path = opts.spec
        elif opts.bundle:
            path = os.path.join(opts.bundle, "config.json")
        else:
            path = "config.json"
        bundle = os.path.realpath(opts.bundle) if opts.bundle else None
        spec = spec_mod.load_spec(path, bundle)
    spec = apply_overrides(spec, opts)
    spec = apply_limit_flags(spec, opts)
    from tuibox.cli.security import apply_seccomp

    # The default profile goes where tuibox writes the spec (--rootfs, --image, the TUI).
    spec = apply_seccomp(spec, opts.security_opt, generated=bool(opts.rootfs or opts.image))
    if command and image is None:
        # (With an image the bridge already put the words after its Entrypoint.)
        spec = spec.replace(process=spec.process.replace(args=tuple(command)))
    for line in spec.warnings:
        warn(line)
    if spec.unsupported:
        warn("config.json: not implemented, ignored: " + ", ".join(spec.unsupported))
    req = CreateRequest(name=name, spec=spec, detach=detach, image=image, overlay=overlay)
    userns = opts.userns or "host"
    if userns == "auto":
        from tuibox.runtime.userns import auto_spec

        req.spec = auto_spec(spec)
        req.options["userns"] = {"auto": True}  # the userns stage leases the range
    elif userns != "host":
        raise SpecError(f"--userns {userns!r}: must be auto or host")
    if opts.console_socket:
        if not detach:
            raise UsageError("run: --console-socket needs -d (the box's terminal goes there)")
        if not spec.process.terminal:
            raise SpecError("--console-socket: the box has no terminal (use -t)")
        # The console stage (runtime/console.py) connects and sends the pty master there.
        req.options["console"] = {"socket": os.path.abspath(opts.console_socket)}
    if net is not None:
        req.options["network"] = net  # the network stage (runtime/network/stage.py)
    if opts.no_new_keyring:
        req.options["no_new_keyring"] = True  # box.py: remembered for exec too
    return req


def apply_overrides(spec: Spec, opts: CreateOptions) -> Spec:
    process = spec.process
    if opts.env:
        env: dict[str, str] = {}
        for item in process.env:
            key, eq, value = item.partition("=")
            env[key] = value if eq else os.environ.get(key, "")
        for item in opts.env:
            key, eq, value = item.partition("=")
            if not key:
                raise SpecError(f"--env {item!r}: must be KEY=VALUE")
            env[key] = value if eq else os.environ.get(key, "")
        process = process.replace(env=tuple(f"{k}={v}" for k, v in env.items()))
    if opts.cwd:
        if not opts.cwd.startswith("/"):
            raise SpecError("--workdir: must be an absolute path")
        process = process.replace(cwd=opts.cwd)
    if opts.user:
        process = process.replace(user=parse_user(opts.user, process.user))
    if opts.tty:
        process = process.replace(terminal=True)
    spec = spec.replace(process=process)
    if opts.hostname:
        spec = spec.replace(hostname=opts.hostname)
    if opts.read_only:
        spec = spec.replace(root=spec.root.replace(readonly=True))
    return spec


def parse_user(text: str, current: User) -> User:
    uid_s, _, gid_s = text.partition(":")
    try:
        uid = int(uid_s)
        gid = int(gid_s) if gid_s else uid
    except ValueError:
        raise SpecError(f"--user {text!r}: must be UID or UID:GID (numbers)") from None
    if uid < 0 or gid < 0:
        raise SpecError(f"--user {text!r}: ids must not be negative")
    return current.replace(uid=uid, gid=gid)


def _pid_file(opts: CreateOptions, pid: int) -> None:
    if opts.pid_file:
        from tuibox.runtime.state import atomic_write

        atomic_write(os.path.abspath(opts.pid_file), str(pid).encode())


# ---- verbs ----------------------------------------------------------------------------------


def do_create(opts: CreateOptions, g: Globals) -> int:
    req = load_request(opts, g, detach=True)
    record = runtime(g).create(req)
    _pid_file(opts, record.pid)
    return 0


def do_run(opts: RunOptions, g: Globals) -> int:
    rt = runtime(g)
    if opts.detach:
        req = load_request(opts, g, detach=True)
        record = rt.create(req)
        _pid_file(opts, record.pid)
        try:
            rt.start(req.name)
        except TuiboxError:
            rt.destroy(req.name, force=True)
            raise
        sys.stdout.write(req.name + "\n")
        return 0
    req = load_request(opts, g, detach=False)
    return int(rt.run(req, keep=opts.keep))


def do_start(opts: StartOptions, g: Globals) -> int:
    runtime(g).start(opts.name)
    return 0


def parse_signal(text: str | None) -> int:
    import signal

    if text is None:
        return int(signal.SIGTERM)
    if text.isdigit():
        num = int(text)
        if not 0 < num < signal.NSIG:
            raise SpecError(f"invalid signal {text!r}")
        return num
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise SpecError(f"invalid signal {text!r}") from None


def do_kill(opts: KillOptions, g: Globals) -> int:
    sig = parse_signal(opts.signal)
    rt = runtime(g)
    if opts.all or opts.pid:
        rt.kill_processes(opts.name, sig, int(opts.pid) if opts.pid else None)
        return 0
    rt.kill(opts.name, sig)
    return 0


def do_stop(opts: StopOptions, g: Globals) -> int:
    try:
        timeout = float(opts.timeout)
    except ValueError:
        raise SpecError(f"--timeout {opts.timeout!r}: must be a number of seconds") from None
    runtime(g).stop(opts.name, timeout)
    return 0


def do_destroy(opts: DestroyOptions, g: Globals) -> int:
    names = opts.names
    if not names:
        raise UsageError("destroy: missing NAME")
    rt = runtime(g)
    force = opts.force
    return for_each(names, lambda name: rt.destroy(name, force=force))


def do_state(opts: StateOptions, g: Globals) -> int:
    sys.stdout.write(fastjson.dumps(runtime(g).state(opts.name), indent=2) + "\n")
    return 0


def record_json(r: BoxRecord, root: str) -> dict[str, Any]:
    extra = r.extra
    return {
        "id": r.id,
        "status": r.status,
        "pid": r.pid,
        "bundle": r.bundle,
        "rootfs": r.rootfs,
        "image": r.image,
        "command": r.command,
        "hostname": r.hostname,
        "created": r.created,
        "started": r.started,
        "exit_status": r.exit_status,
        "terminal": r.terminal,
        # keeper (attach works), socket (--console-socket owns it), foreground, or None
        "console": extra.get("console"),
        "address": extra.get("address"),
        "ports": extra.get("ports", []),
        "log": os.path.join(root, r.id, "box.log"),
        "namespaces": r.namespaces,
        "cgroup": extra.get("cgroup"),
        "limits": extra.get("limits", {"memory": None, "cpus": None, "pids": None}),
        "problem": extra.get("problem"),  # why the status is unknown
    }


def do_list(opts: ListOptions, g: Globals) -> int:
    rt = runtime(g)
    records = rt.list()
    if opts.format == "json":
        sys.stdout.write(fastjson.dumps([record_json(r, rt.root.path) for r in records]) + "\n")
        return 0
    if opts.format != "table":
        raise SpecError(f"--format {opts.format!r}: must be table or json")
    if opts.quiet:
        sys.stdout.write("".join(r.id + "\n" for r in records))
        return 0
    rows = [("NAME", "STATUS", "PID", "CREATED", "COMMAND")]
    for r in records:
        what = " ".join(r.command)[:40] if r.status != "unknown" else str(r.extra.get("problem"))
        rows.append((r.id, r.status, str(r.pid or "-"), r.created, what))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        sys.stdout.write(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4] + "\n"
        )
    return 0


def do_logs(opts: LogsOptions, g: Globals) -> int:
    rt = runtime(g)
    record = rt.get(opts.name)
    path = os.path.join(rt.root.box_dir(record.id), "box.log")
    try:
        f = open(path, "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        raise TuiboxError(f"box {record.id!r} has no log (it was not run detached)") from None
    with f:
        out = sys.stdout.buffer
        while True:
            chunk = f.read(65536)
            if chunk:
                out.write(chunk)
                continue
            out.flush()
            if not opts.follow or rt.get(record.id).status == "stopped":
                return 0
            import time

            time.sleep(0.2)


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
    "destroy": entry(DestroyOptions, do_destroy),
    "state": entry(StateOptions, do_state),
    "list": entry(ListOptions, do_list),
    "logs": entry(LogsOptions, do_logs),
    "spec": entry(SpecOptions, do_spec),
}
