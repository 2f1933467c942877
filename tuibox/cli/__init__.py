"""The `tuibox` command: global options, then one verb dispatched to its module.

Only the chosen verb's module is imported, and none of them imports textual; pyroute2 is
imported only by the network code, only when a box asks for a network.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# verb -> (module, one-line help). Aliases point at the same module.
VERBS: dict[str, tuple[str, str]] = {
    "create": ("lifecycle", "create a box from a bundle; its program waits for start"),
    "start": ("lifecycle", "start a created box, or a stopped one again"),
    "run": ("lifecycle", "create and start a box (foreground unless -d)"),
    "kill": ("lifecycle", "send a signal to a box's init (or its processes)"),
    "stop": ("lifecycle", "SIGTERM a box, then SIGKILL after a timeout"),
    "restart": ("lifecycle", "stop boxes, then start them again"),
    "boot": ("lifecycle", "start the boxes whose restart policy says so (at boot)"),
    "destroy": ("lifecycle", "remove a box and everything it left (alias: delete, rm)"),
    "state": ("query", "print a box's OCI state JSON"),
    "list": ("query", "list boxes (alias: ls)"),
    "logs": ("lifecycle", "print the output of a detached box"),
    "spec": ("lifecycle", "write a starter config.json"),
    "exec": ("actions", "run a command inside a running box"),
    "attach": ("attach", "attach your terminal to the console of a box made with -t"),
    "ps": ("actions", "list the processes of a box"),
    "inspect": ("inspect", "show everything the runtime knows about a box (JSON)"),
    "stats": ("actions", "show CPU, memory, pids, network and I/O of boxes"),
    "wait": ("actions", "wait for a box to stop and print its exit status"),
    "pause": ("actions", "freeze every process of a box"),
    "resume": ("actions", "thaw a paused box"),
    "update": ("actions", "change the resource limits of a live box"),
    "events": ("oci", "a box's resource usage as runc's events JSON (--stats: once)"),
    "features": ("oci", "print what this runtime supports (OCI runtime-spec features JSON)"),
    "network": ("network", "manage networks: ls, create, rm, reload"),
    "port": ("network", "list the ports a box publishes"),
    "image": ("images", "manage images: ls, import, tag, rm, inspect, bootstrap"),
    "pull": ("registry", "pull an image from a registry (through skopeo)"),
    "push": ("registry", "push an image to a registry (through skopeo)"),
    "gc": ("gc", "find (and with --yes remove) debris of boxes that no longer exist"),
    "serve": ("serve", "serve the TUI to a web browser (textual-serve; token in the URL)"),
}
ALIASES = {"delete": "destroy", "rm": "destroy", "ls": "list"}
# Verbs that need nothing beyond the standard library (unless a box asks for a network).
FAST_VERBS = frozenset(
    {
        "create",
        "start",
        "run",
        "kill",
        "stop",
        "restart",
        "destroy",
        "state",
        "list",
        "logs",
        "spec",
        "exec",
        "attach",
        "ps",
        "stats",
        "wait",
        "pause",
        "resume",
        "update",
        "events",
        "features",
    }
)

# Verbs that move a process into a cgroup: they start the warmer (runtime/process/warmer.py).
WARM_VERBS = frozenset({"run", "create", "exec"})

GLOBAL_HELP = """usage: tuibox [--root DIR] [--data-root DIR] VERB [OPTIONS] [ARGS]

With no verb, tuibox opens the TUI.

global options:
  --root DIR            state root (default /run/tuibox, env TUIBOX_ROOT)
  --data-root DIR       image store (default /var/lib/tuibox, env TUIBOX_DATA)
  --log FILE            also write errors and warnings to FILE (runc's log; puts create,
                        run -d and exec in engine mode: see docs/OCI_CLI.md)
  --log-format FORMAT   json (runc's JSON lines) or text (default)
  --debug               also write each command line into the --log file
  --systemd-cgroup      read a "slice:prefix:name" linux.cgroupsPath as runc's systemd
                        driver names it (a cgroupfs path; systemd itself is not called)
  --rootless VALUE      true, false or auto (runc's); tuibox runs as root
  --version             print the version

verbs:
"""


class Globals:
    def __init__(self) -> None:
        self.root: str | None = os.environ.get("TUIBOX_ROOT") or None
        self.data_root: str | None = os.environ.get("TUIBOX_DATA") or None
        self.log: str | None = None
        self.log_format = "text"
        self.debug = False
        self.systemd_cgroup = False
        self.word = ""  # the verb as typed (`delete` is runc's, `destroy`/`rm` tuibox's)


# Where errors and warnings also go (--log FILE, --log-format): set by `main`.
LOG: list[str] = []  # [path, format] once set


def _log_line(level: str, message: str) -> None:
    """One runc-style line in the --log file: engines read the last error from it."""
    if not LOG:
        return
    from tuibox.runtime import fastjson

    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
    if LOG[1] == "json":
        line = fastjson.dumps({"level": level, "msg": message, "time": stamp})
    else:
        line = f"time={fastjson.dumps(stamp)} level={level} msg={fastjson.dumps(message)}"
    try:
        fd = os.open(LOG[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError:
        return  # the error itself still reaches stderr
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


# The runtime-spec version `--version`, `state` and `features` report.
OCI_SPEC_VERSION = "1.0.2"

# Set by the TUI's service (and any program driving the CLI): after each `tuibox: error:` line,
# one JSON line says the error's kind and class, so callers never parse the message.
KINDS_ENV = "TUIBOX_ERROR_KINDS"


def fail(message: str, code: int = 125, kind: str = "error", cls: str = "") -> int:
    # A teardown failure names each resource on its own line, each an error line.
    sys.stderr.write("".join(f"tuibox: error: {line}\n" for line in message.split("\n")))
    _log_line("error", message.replace("\n", "; "))
    if os.environ.get(KINDS_ENV) == "1":
        # Kinds and class names are plain identifiers: no escaping, no json import on this path.
        sys.stderr.write(
            f'{{"tuibox_error": {{"kind": "{kind}", "class": "{cls or "Error"}", '
            f'"exit_code": {code}}}}}\n'
        )
    return code


def fail_with(e: BaseException) -> int:
    """One line (and, when asked, its kind) for an error of the runtime."""
    code: int = getattr(e, "exit_code", 125)
    return fail(str(e), code, getattr(e, "kind", "error"), type(e).__name__)


def for_each(names: list[str], act: Callable[[str], object]) -> int:
    """Apply a verb to several boxes: one name fails as usual (its error, its exit code);
    with several, each failure is one line and the others still run (docker's way)."""
    from tuibox.runtime.errors import TuiboxError

    failed = 0
    for name in names:
        try:
            act(name)
        except TuiboxError as e:
            if len(names) == 1:
                raise
            failed = fail_with(e)
    return failed


def warn(message: str) -> None:
    if LOG:
        # As runc: with --log, warnings go there only. In engine mode our stderr is the
        # box's own output pipe (conmon's), which must not carry our words.
        _log_line("warning", message)
        return
    sys.stderr.write(f"tuibox: warning: {message}\n")


def _usage() -> str:
    lines = [GLOBAL_HELP]
    for verb, (_, text) in VERBS.items():
        lines.append(f"  {verb:<10} {text}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    g = Globals()
    while words and words[0].startswith("-"):
        w = words.pop(0)
        name, eq, value = w.partition("=")
        if name in ("--root", "--data-root", "--log", "--log-format", "--rootless"):
            if not eq:
                if not words:
                    return fail(f"option {name} needs a value")
                value = words.pop(0)
            if name == "--root":
                g.root = value
            elif name == "--data-root":
                g.data_root = value
            elif name == "--log":
                g.log = os.path.abspath(value)
                LOG[:] = [g.log, g.log_format]
            elif name == "--log-format":
                if value not in ("json", "text"):
                    return fail(f"--log-format {value!r}: must be json or text", 2, "usage")
                g.log_format = value
                if LOG:
                    LOG[1] = value
            elif name == "--rootless" and value not in ("true", "false", "auto"):
                return fail(f"--rootless {value!r}: must be true, false or auto", 2, "usage")
        elif name in ("--debug", "--systemd-cgroup"):
            if eq:
                return fail(f"option {name} takes no value", 2, "usage")
            if name == "--debug":
                g.debug = True
            else:
                g.systemd_cgroup = True
        elif name in ("-h", "--help"):
            sys.stdout.write(_usage())
            return 0
        elif name in ("-v", "--version"):
            from tuibox import __version__

            # runc's lines (engines parse "spec: "), then our own name.
            sys.stdout.write(
                f"tuibox version {__version__}\ncommit: tuibox-{__version__}\n"
                f"spec: {OCI_SPEC_VERSION}\n"
            )
            return 0
        else:
            return fail(f"unknown global option {name} (see 'tuibox --help')", 2, "usage")
    if LOG:
        LOG[1] = g.log_format  # --log-format may come before --log
    if not words:
        return _tui(g)
    g.word = words[0]
    if g.debug:
        _log_line("debug", "tuibox " + " ".join(words))  # into --log only, as runc's
    verb = ALIASES.get(words[0], words[0])
    entry = VERBS.get(verb)
    if entry is None:
        return fail(f"unknown command {words[0]!r} (see 'tuibox --help')", 2, "unknown-command")
    if verb not in FAST_VERBS:
        from tuibox import sitepath

        sitepath.ensure()
    if verb in WARM_VERBS:
        from tuibox.runtime.process import warmer

        warmer.start()  # first thing: its grace period passes while we import
    __import__(f"tuibox.cli.{entry[0]}")
    module = sys.modules[f"tuibox.cli.{entry[0]}"]
    from tuibox.cli.args import HelpRequested, UsageError
    from tuibox.runtime.errors import TuiboxError

    try:
        code: int = module.dispatch(verb, words[1:], g)
        return code
    except HelpRequested as h:
        sys.stdout.write(h.text + "\n")
        return 0
    except UsageError as e:
        return fail(str(e), 2, e.kind, type(e).__name__)
    except TuiboxError as e:
        return fail_with(e)
    except KeyboardInterrupt:
        return fail("interrupted", 130, "interrupted", "KeyboardInterrupt")
    except OSError as e:
        # Anything the runtime did not foresee still gets one line, never a traceback.
        where = f": {e.filename}" if e.filename else ""
        kind = "permission" if isinstance(e, PermissionError) else "os"
        return fail(f"{(e.strerror or str(e)).lower()}{where}", 125, kind, type(e).__name__)
    finally:
        if verb in WARM_VERBS:
            sys.modules["tuibox.runtime.process.warmer"].stop()


def _tui(g: Globals) -> int:
    from tuibox import sitepath

    sitepath.ensure()
    try:
        from tuibox.tui_main import run_tui
    except ImportError:
        sys.stdout.write(_usage())
        return 0
    return run_tui(g.root, g.data_root)
