"""Which status allows which verb: the one table the runtime's verbs check and the TUI greys
its keys out with (through service.py)."""

from __future__ import annotations

import sys

from tuibox.runtime.errors import InvalidState, TuiboxError

# Every status a box can have, in lifecycle order (state.live_status decides which).
# `destroying`: a destroy is under way; `debris`: a create or destroy whose process was killed;
# `unknown`: an unreadable record (list only).
STATUSES = (
    "creating",
    "created",
    "running",
    "paused",
    "stopped",
    "destroying",
    "debris",
    "unknown",
)

_LIVE = frozenset({"created", "running", "paused"})

GUARDS: dict[str, frozenset[str]] = {
    # stopped: made again from its recorded request (recreate.py; not an engine's box)
    "start": frozenset({"created", "stopped"}),
    # An engine's box (extra["engine"]): its caller owns the lifecycle (runc refuses to
    # start a stopped container); and the re-check of a start of a stopped box under its lock.
    "start-engine": frozenset({"created"}),
    "start-again": frozenset({"stopped"}),
    "kill": _LIVE,
    "stop": _LIVE,  # a stopped box is already what `stop` wants: a no-op, not a refusal
    "destroy": frozenset({"created", "stopped"}),
    "destroy-force": frozenset({"creating", *_LIVE, "stopped", "debris", "unknown"}),
    "pause": frozenset({"running"}),
    "resume": frozenset({"paused"}),
    "exec": frozenset({"running"}),
    "update": _LIVE,
    "ps": _LIVE,
    "attach": _LIVE,
}

# How a refusal reads: "cannot <verb words> box 'x': it is <status>, it must be <wanted>".
_WORDS: dict[str, tuple[str, str]] = {
    "start": ("start", "created or stopped"),
    "start-engine": ("start", "created (an engine's box is made anew by its engine)"),
    "start-again": ("start", "stopped (someone else started it meanwhile)"),
    "kill": ("kill", "created, running or paused"),
    "stop": ("stop", "created, running or paused"),
    "destroy": ("destroy", "stopped or created (or use --force)"),
    "destroy-force": ("destroy", "stopped or created (or use --force)"),
    "pause": ("pause", "running"),
    "resume": ("resume", "paused"),
    "exec": ("exec in", "running"),
    "update": ("update", "created, running or paused"),
    "ps": ("list processes of", "created, running or paused"),
    "attach": ("attach to", "created, running or paused"),
}


def can(verb: str, status: str) -> bool:
    return status in GUARDS.get(verb, frozenset())


def check(verb: str, name: str, status: str) -> None:
    """Raise InvalidState, naming both states, unless `status` allows `verb`."""
    if not can(verb, status):
        words, wanted = _WORDS[verb]
        raise InvalidState(name, status, words, wanted)


def refuse_threads(verb: str) -> None:
    """The forking verbs (create, run, exec) need a single-threaded caller: a fork copies only
    the calling thread, so a lock another thread held stays locked for ever in the child.

    `threading` is looked up, not imported: a program that never imported it has one thread
    (the CLI keeps its start-up free of it)."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise TuiboxError(
            f"{verb}: forks, so it must be called from a single-threaded process "
            f"({threading.active_count()} threads are running; run the tuibox CLI instead)"
        )
