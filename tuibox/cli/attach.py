"""`tuibox attach NAME`: the user's terminal on the console of a box started with -t.

A few lines over runtime/console.py: connect to the box's console keeper, relay in raw mode
until the box exits (its status is ours) or the detach keys are typed (exit 0, the box keeps
running). It behaves the same under a pty of the TUI's: sizes come from the controlling
terminal (TIOCGWINSZ) at once and on SIGWINCH, and SIGHUP (the pane closed) just detaches.
"""

from __future__ import annotations

import _signal
import sys

from tuibox.cli import Globals
from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, parse

DEFAULT_DETACH_KEYS = "ctrl-]"


class AttachOptions(Options):
    COMMAND = Command(
        "attach",
        "Attach your terminal to the console of a box created with -t (process.terminal).\n"
        "Type the detach keys to leave it running; when the box exits, attach exits with its\n"
        "status.",
        (
            Opt(
                ("--detach-keys",),
                "detach_keys",
                "KEYS",
                default=DEFAULT_DETACH_KEYS,
                help="keys that detach, e.g. ctrl-p,ctrl-q ('' for none; default ctrl-])",
            ),
            Opt(
                ("--record",),
                "record",
                "FILE",
                help="also write what the console shows to FILE as an asciicast v2 recording",
            ),
        ),
        (Arg("name", "the box's name"),),
    )
    __slots__ = ("detach_keys", "name", "record")
    detach_keys: str
    record: str | None
    name: str


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    opts = parse(AttachOptions, words)
    from tuibox.runtime import console
    from tuibox.runtime.errors import TuiboxError

    keys = console.parse_detach_keys(opts.detach_keys)
    name = opts.name
    if opts.record == "":
        raise UsageError("attach: --record needs a file name")
    sock = console.connect(g.root, name)
    recorder = None
    if opts.record:
        from tuibox.asciicast import CastWriter
        from tuibox.runtime.process.exec import get_size

        try:
            rows, cols = get_size(0) or get_size(1) or (24, 80)
            recorder = CastWriter(opts.record, cols, rows, title=f"{name}: console")
        except BaseException:
            sock.close()
            raise
    # Ignored outside the relay (which catches it): a closing pane closes the pty and also
    # sends SIGHUP; the second one must not kill us on the way out.
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    try:
        code = console.attach_terminal(sock, keys, recorder=recorder)
    finally:
        sock.close()
        if recorder is not None:
            recorder.close()
    if code == console.DETACHED:
        sys.stderr.write(f"\r\ntuibox: detached from box {name!r}; it keeps running\r\n")
        return 0
    if code == console.HUNG_UP:
        return 0  # nobody left to tell
    if code is None:
        # The keeper left without an exit frame: it was killed, or the box destroyed.
        from tuibox.runtime.box import Runtime

        rt = Runtime(g.root)
        record = rt.get(name)
        if record.status == "stopped" and record.exit_status is not None:
            return int(record.exit_status)
        raise TuiboxError(f"lost the console of box {name!r}")
    return code
