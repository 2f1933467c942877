"""The `tuibox` command: global options, then one verb dispatched to its module.

Only the chosen verb's module is imported, and none of them imports textual; pyroute2 is
imported only by the network code, only when a box asks for a network.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# verb -> (module, one-line help). Aliases point at the same module.
VERBS: dict[str, tuple[str, str]] = {
    "create": ("lifecycle", "create a box from a bundle; its program waits for start"),
    "start": ("lifecycle", "start the program of a created box"),
    "run": ("lifecycle", "create and start a box (foreground unless -d)"),
    "kill": ("lifecycle", "send a signal to a box's init (or its processes)"),
    "stop": ("lifecycle", "SIGTERM a box, then SIGKILL after a timeout"),
    "destroy": ("lifecycle", "remove a box and everything it left (alias: delete, rm)"),
    "state": ("lifecycle", "print a box's OCI state JSON"),
    "list": ("lifecycle", "list boxes (alias: ls)"),
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
    "network": ("network", "manage networks: ls, create, rm, reload"),
    "port": ("network", "list the ports a box publishes"),
    "image": ("images", "manage images: ls, import, rm, inspect, bootstrap"),
    "gc": ("gc", "find (and with --yes remove) debris of boxes that no longer exist"),
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
    }
)

GLOBAL_HELP = """usage: tuibox [--root DIR] [--data-root DIR] VERB [OPTIONS] [ARGS]

With no verb, tuibox opens the TUI.

global options:
  --root DIR        state root (default /run/tuibox, env TUIBOX_ROOT)
  --data-root DIR   image store (default /var/lib/tuibox, env TUIBOX_DATA)
  --log FILE        accepted for runc compatibility
  --version         print the version

verbs:
"""


class Globals:
    def __init__(self) -> None:
        self.root: str | None = os.environ.get("TUIBOX_ROOT") or None
        self.data_root: str | None = os.environ.get("TUIBOX_DATA") or None
        self.log: str | None = None


# Set by the TUI's service (and any program driving the CLI): after each `tuibox: error:` line,
# one JSON line says the error's kind and class, so callers never parse the message.
KINDS_ENV = "TUIBOX_ERROR_KINDS"


def fail(message: str, code: int = 125, kind: str = "error", cls: str = "") -> int:
    # A teardown failure names each resource on its own line, each an error line.
    sys.stderr.write("".join(f"tuibox: error: {line}\n" for line in message.split("\n")))
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
        if name in ("--root", "--data-root", "--log", "--log-format"):
            if not eq:
                if not words:
                    return fail(f"option {name} needs a value")
                value = words.pop(0)
            if name == "--root":
                g.root = value
            elif name == "--data-root":
                g.data_root = value
            elif name == "--log":
                g.log = value
        elif name in ("--debug", "--systemd-cgroup"):
            continue
        elif name in ("-h", "--help"):
            sys.stdout.write(_usage())
            return 0
        elif name in ("-v", "--version"):
            from tuibox import __version__

            sys.stdout.write(f"tuibox version {__version__}\nspec: 1.0.2\n")
            return 0
        else:
            return fail(f"unknown global option {name} (see 'tuibox --help')", 2, "usage")
    if not words:
        return _tui(g)
    verb = ALIASES.get(words[0], words[0])
    entry = VERBS.get(verb)
    if entry is None:
        return fail(f"unknown command {words[0]!r} (see 'tuibox --help')", 2, "unknown-command")
    if verb not in FAST_VERBS:
        from tuibox import sitepath

        sitepath.ensure()
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


def _tui(g: Globals) -> int:
    from tuibox import sitepath

    sitepath.ensure()
    try:
        from tuibox.tui_main import run_tui
    except ImportError:
        sys.stdout.write(_usage())
        return 0
    return run_tui(g.root, g.data_root)
