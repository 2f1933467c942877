"""Runtime actions: exec, ps, stats, wait, pause, resume, update. Each a few lines over the
Runtime facade (runtime/actions.py); tables and JSON are made here."""

from __future__ import annotations

import os
import sys

from tuibox.cli import Globals, for_each
from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry
from tuibox.cli.limits import LIMIT_OPTS, LimitOptions
from tuibox.runtime import fastjson
from tuibox.runtime.errors import SpecError, TuiboxError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.process.exec import ExecHandle
    from tuibox.runtime.spec_model import Process

NAME = Arg("name", "the box's name")
FORMAT = Opt(("-f", "--format"), "format", "table|json", default="table")


class ExecOptions(Options):
    COMMAND = Command(
        "exec",
        "Run a command inside a running box (its namespaces, cgroup, user and capabilities).\n"
        "The exit status is the command's; 126/127 when it cannot be executed/found.",
        (
            Opt(("-i", "--interactive"), "interactive", help="keep stdin attached"),
            Opt(("-t", "--tty"), "tty", help="allocate a terminal (resizes follow yours)"),
            Opt(("-d", "--detach"), "detach", help="start it and return at once"),
            Opt(
                ("--record",),
                "record",
                "FILE",
                help="also write the session to FILE as an asciicast v2 recording (implies -t)",
            ),
            Opt(("-e", "--env"), "env", "K=V", multiple=True, help="set an environment variable"),
            Opt(("-w", "--workdir", "--cwd"), "cwd", "DIR", help="working directory in the box"),
            Opt(("-u", "--user"), "user", "UID[:GID]", help="user (and group) to run as"),
            Opt(("-p", "--process"), "process", "FILE", help="runc process.json to run"),
            Opt(("--pid-file",), "pid_file", "FILE", help="write the process's host pid here"),
            Opt(
                ("--console-socket",),
                "console_socket",
                "PATH",
                help="with -t -d: send the terminal's master fd to this unix socket (runc)",
            ),
            Opt(
                ("--preserve-fds",),
                "preserve_fds",
                "N",
                help="pass the caller's fds 3 .. 3+N-1 to the process (runc)",
            ),
        ),
        (NAME, Arg("command", required=False, rest=True)),
    )
    __slots__ = (
        "command",
        "console_socket",
        "cwd",
        "detach",
        "env",
        "interactive",
        "name",
        "pid_file",
        "preserve_fds",
        "process",
        "record",
        "tty",
        "user",
    )
    interactive: bool
    tty: bool
    detach: bool
    env: list[str]
    cwd: str | None
    user: str | None
    process: str | None
    pid_file: str | None
    console_socket: str | None
    preserve_fds: str | None
    record: str | None
    name: str
    command: list[str]


class PsOptions(Options):
    COMMAND = Command("ps", "List the processes of a box (from its cgroup).", (FORMAT,), (NAME,))
    __slots__ = ("format", "name")
    format: str
    name: str


class StatsOptions(Options):
    COMMAND = Command(
        "stats",
        "Show CPU, memory, pids, network and block I/O of boxes (all live ones by default),\n"
        "refreshed every second until ctrl-c, or once with --no-stream.",
        (
            Opt(("--no-stream",), "no_stream", help="print one sample and exit"),
            FORMAT,
            Opt(("--interval",), "interval", "SECONDS", help="refresh (1) / sample (0.2) time"),
        ),
        (Arg("names", required=False, rest=True),),
    )
    __slots__ = ("format", "interval", "names", "no_stream")
    no_stream: bool
    format: str
    interval: str | None
    names: list[str]


class NamesOptions(Options):
    """Verbs taking one or more box names."""

    __slots__ = ("names",)
    names: list[str]


class WaitOptions(NamesOptions):
    COMMAND = Command(
        "wait", "Wait for boxes to stop; print each exit status.", (), (Arg("names", rest=True),)
    )
    __slots__ = ()


class PauseOptions(NamesOptions):
    COMMAND = Command("pause", "Freeze every process of a box.", (), (Arg("names", rest=True),))
    __slots__ = ()


class ResumeOptions(NamesOptions):
    COMMAND = Command("resume", "Thaw a paused box.", (), (Arg("names", rest=True),))
    __slots__ = ()


class UpdateOptions(LimitOptions):
    COMMAND = Command(
        "update",
        "Change the resource limits of a live box.",
        (
            *LIMIT_OPTS,
            Opt(
                ("-r", "--resources"), "resources", "FILE", help="linux.resources JSON ('-': stdin)"
            ),
        ),
        (NAME,),
    )
    __slots__ = ("name", "resources")
    resources: str | None
    name: str


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


def runtime(g: Globals) -> Runtime:
    from tuibox.runtime.box import Runtime

    return Runtime(g.root)


def _names(opts: NamesOptions, verb: str) -> list[str]:
    if not opts.names:
        raise UsageError(f"{verb}: missing NAME")
    return opts.names


def _format(opts: PsOptions | StatsOptions) -> str:
    fmt = opts.format
    if fmt not in ("table", "json"):
        raise SpecError(f"--format {fmt!r}: must be table or json")
    return fmt


# ---- exec --------------------------------------------------------------------------------------


def parse_ids(text: str) -> tuple[int, int]:
    uid_s, _, gid_s = text.partition(":")
    if not uid_s.isdigit() or (gid_s and not gid_s.isdigit()):
        raise SpecError(f"--user {text!r}: must be UID or UID:GID (numbers)")
    uid = int(uid_s)
    return uid, int(gid_s) if gid_s else uid


def _env(items: list[str]) -> tuple[str, ...]:
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise SpecError(f"--env {item!r}: must be KEY=VALUE")
        out.append(f"{key}={value if eq else os.environ.get(key, '')}")
    return tuple(out)


def load_process(path: str) -> Process:
    """A runc process.json, validated by the spec loader's own rules."""
    from tuibox.runtime.spec import parse_spec

    try:
        with open(path, "rb") as f:
            data = fastjson.loads(f.read())
    except OSError as e:
        raise SpecError(f"--process {path}: {(e.strerror or str(e)).lower()}") from None
    except ValueError as e:
        raise SpecError(f"--process {path}: invalid JSON: {e}") from None
    wrapper = {"ociVersion": "1.0.2", "root": {"path": "/"}, "process": data}
    return parse_spec(wrapper, "/", os.path.basename(path)).process


def do_exec(opts: ExecOptions, g: Globals) -> int:
    command = opts.command
    process = None
    if opts.process:
        if command:
            raise UsageError("exec: give a COMMAND or --process, not both")
        process = load_process(opts.process)
    elif not command:
        raise UsageError("exec: missing COMMAND (see 'tuibox exec --help')")
    if opts.record is not None and (opts.detach or opts.console_socket):
        raise UsageError("exec: --record needs the session here (not with -d or --console-socket)")
    if opts.record == "":
        raise UsageError("exec: --record needs a file name")
    tty = opts.tty or opts.record is not None or bool(process is not None and process.terminal)
    if opts.console_socket and not (tty and opts.detach):
        raise UsageError("exec: --console-socket needs -t and -d (the terminal goes there)")
    if tty and opts.detach and not opts.console_socket:
        raise UsageError(
            "exec: -t with -d needs --console-socket (nothing would read the terminal)"
        )
    preserve = 0
    if opts.preserve_fds:
        from tuibox.runtime.request import check_preserve_fds

        preserve = check_preserve_fds(opts.preserve_fds, "--preserve-fds")
    sock = -1
    if opts.console_socket:
        from tuibox.runtime.console import connect_console_socket

        sock = connect_console_socket(opts.console_socket)
    try:
        return _exec(opts, g, command, process, tty, preserve, sock)
    finally:
        if sock >= 0:
            os.close(sock)


def _exec(
    opts: ExecOptions,
    g: Globals,
    command: list[str],
    process: Process | None,
    tty: bool,
    preserve: int,
    sock: int,
) -> int:
    from tuibox.runtime.process.exec import ExecRequest, get_size

    req = ExecRequest(
        args=tuple(command),
        env=_env(opts.env),
        cwd=opts.cwd,
        user=parse_ids(opts.user) if opts.user else None,
        tty=tty,
        interactive=opts.interactive or process is not None,
        detach=opts.detach,
        process=process,
        size=(get_size(0) or get_size(1)) if tty and sock < 0 else None,
        preserve_fds=preserve,
    )
    if req.cwd is not None and not req.cwd.startswith("/"):
        raise SpecError("--workdir: must be an absolute path")
    # Engine mode (docs/OCI_CLI.md): a detached process keeps the caller's stdio, as runc's
    # (with --process it always did; docker's `exec -d --pid-file` keeps nothing attached).
    engine = bool(g.log) and req.detach and not tty
    recorder = None
    if opts.record:
        from tuibox.asciicast import CastWriter

        rows, cols = req.size or (24, 80)
        recorder = CastWriter(opts.record, cols, rows, title=f"{opts.name}: {' '.join(command)}")
    try:
        handle = runtime(g).exec(opts.name, req, (0, 1, 2) if engine else None)
    except BaseException:
        if recorder is not None:
            recorder.close()
            os.unlink(opts.record or "")  # nothing was recorded: leave nothing behind
        raise
    if sock >= 0 and handle.master_fd is not None:
        from tuibox.runtime.console import send_fd

        send_fd(sock, handle.master_fd)
        handle.close()  # the master is the socket's owner's now
    if opts.pid_file:
        from tuibox.runtime.state import atomic_write

        # whole for its reader (rename); no fsync: a pid means nothing after a reboot (runc)
        atomic_write(os.path.abspath(opts.pid_file), str(handle.pid).encode(), durable=False)
    if req.detach:
        return 0
    if tty:
        from tuibox.runtime.process.relay import relay

        try:
            return relay(handle, forward_stdin=req.interactive, recorder=recorder)
        finally:
            if recorder is not None:
                recorder.close()
    return _wait_forwarding(handle)


def _wait_forwarding(handle: ExecHandle) -> int:
    """Wait for the process, passing on the signals a user sends to us."""
    import _signal

    forwarded = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
    old = {s: _signal.getsignal(s) for s in forwarded}

    def forward(signum: int, _frame: object) -> None:
        handle.signal(signum)

    for s in forwarded:
        _signal.signal(s, forward)
    try:
        code = handle.wait()
    finally:
        for s, h in old.items():
            _signal.signal(s, h)
    return code if code is not None else 1


# ---- ps ----------------------------------------------------------------------------------------


def human(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def table(rows: Sequence[tuple[str, ...]]) -> str:
    """Left-aligned columns; the last one is not padded."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def do_ps(opts: PsOptions, g: Globals) -> int:
    fmt = _format(opts)
    procs = runtime(g).ps(opts.name)
    if fmt == "json" and g.log:
        # Engine mode (docs/OCI_CLI.md): runc's shape, a JSON list of host pids.
        sys.stdout.write(fastjson.dumps([p["pid"] for p in procs]) + "\n")
        return 0
    if fmt == "json":
        sys.stdout.write(fastjson.dumps(procs) + "\n")
        return 0
    rows = [
        ("PID", "BOX-PID", "PPID", "BOX-PPID", "USER", "STAT", "%CPU", "RSS", "STARTED", "COMMAND")
    ]
    for p in procs:
        rows.append(
            (
                str(p["pid"]),
                str(p["box_pid"]),
                str(p["ppid"]),
                str(p["box_ppid"]),
                p["user"],
                p["state"],
                f"{p['cpu_percent']:.1f}",
                human(p["rss"]),
                p["started"][11:19],
                p["command"][:80],
            )
        )
    sys.stdout.write(table(rows))
    return 0


# ---- stats -------------------------------------------------------------------------------------


def stats_table(rows: list[dict[str, Any]]) -> str:
    out = [("NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "NET I/O", "BLOCK I/O")]
    for r in rows:
        limit = r["memory_limit"]
        pct = f"{r['memory_usage'] / limit * 100:.2f}%" if limit else "-"
        out.append(
            (
                r["id"],
                f"{r['cpu_percent']:.2f}%",
                f"{human(r['memory_usage'])} / {human(limit) if limit else 'no limit'}",
                pct,
                str(r["pids"]),
                f"{human(r['net_rx'])} / {human(r['net_tx'])}",
                f"{human(r['block_read'])} / {human(r['block_write'])}",
            )
        )
    return table(out)


def do_stats(opts: StatsOptions, g: Globals) -> int:

    fmt = _format(opts)
    default = "0.2" if opts.no_stream else "1"
    try:
        interval = float(opts.interval or default)
    except ValueError:
        raise SpecError(f"--interval {opts.interval!r}: must be a number of seconds") from None
    rt = runtime(g)
    names = opts.names or None

    def emit(rows: list[dict[str, Any]], clear: bool) -> None:
        text = fastjson.dumps(rows) + "\n" if fmt == "json" else stats_table(rows)
        sys.stdout.write(("\033[H\033[J" if clear else "") + text)
        sys.stdout.flush()

    if opts.no_stream:
        # CPU % needs two samples: one sleep for every box, kept short for pollers.
        emit(rt.stats(names, interval=min(max(interval, 0.05), 1.0)), False)
        return 0
    clear = fmt == "table" and sys.stdout.isatty()
    try:
        for rows in rt.stats_stream(names, interval):
            emit(rows, clear)
    except KeyboardInterrupt:
        return 0
    return 0


# ---- wait, pause, resume, update ---------------------------------------------------------------


def do_wait(opts: WaitOptions, g: Globals) -> int:
    rt = runtime(g)
    for name in _names(opts, "wait"):
        code = rt.wait(name)
        if code is None:
            # Like podman's -1: said, not guessed (the 125 of a failed verb would be a lie).
            sys.stderr.write(f"tuibox: box {name!r} stopped, its exit status is unknown\n")
        elif code == 137 and _oom_killed(rt, name):
            sys.stderr.write(f"tuibox: box {name!r} was killed by the kernel's OOM killer\n")
        sys.stdout.write(f"{'unknown' if code is None else code}\n")
        sys.stdout.flush()
    return 0


def _oom_killed(rt: Runtime, name: str) -> bool:
    try:
        return rt.get(name).oom_killed
    except TuiboxError:
        return False  # destroyed meanwhile


def _each(opts: NamesOptions, g: Globals, verb: str) -> int:
    rt = runtime(g)
    names = _names(opts, verb)
    return for_each(names, getattr(rt, verb))


def do_pause(opts: PauseOptions, g: Globals) -> int:
    return _each(opts, g, "pause")


def do_resume(opts: ResumeOptions, g: Globals) -> int:
    return _each(opts, g, "resume")


def do_update(opts: UpdateOptions, g: Globals) -> int:
    from tuibox.runtime.cgroups.resources import flags_to_raw, merge_raw

    raw: dict[str, Any] = {}
    if opts.resources:
        path = opts.resources
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path) as f:
                    text = f.read()
            loaded = fastjson.loads(text)
        except OSError as e:
            raise SpecError(f"--resources {path}: {(e.strerror or str(e)).lower()}") from None
        except ValueError as e:
            raise SpecError(f"--resources {path}: invalid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise SpecError(f"--resources {path}: must be a JSON object (linux.resources)")
        raw = loaded
    raw = merge_raw(raw, flags_to_raw(opts.limit_flags()))
    if not raw:
        raise UsageError("update: nothing to change (give --memory, --cpus, --pids-limit ...)")
    runtime(g).update(opts.name, raw)
    return 0


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "exec": entry(ExecOptions, do_exec),
    "ps": entry(PsOptions, do_ps),
    "stats": entry(StatsOptions, do_stats),
    "wait": entry(WaitOptions, do_wait),
    "pause": entry(PauseOptions, do_pause),
    "resume": entry(ResumeOptions, do_resume),
    "update": entry(UpdateOptions, do_update),
}
