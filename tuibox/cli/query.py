"""The query verbs `state` and `list`.

Engines call `state` several times per container, so these two live apart from lifecycle.py:
they load the argument parser, fastjson and the runtime's read-only half (runtime/queries.py)
and nothing else (tests/unit/test_hot_imports.py holds their import sets).
"""

from __future__ import annotations

import sys

from tuibox.cli.args import Arg, Command, Opt, Options, entry
from tuibox.runtime import fastjson
from tuibox.runtime.errors import SpecError
from tuibox.runtime.queries import Queries

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.cli import Globals
    from tuibox.runtime.state import BoxRecord


class StateOptions(Options):
    COMMAND = Command(
        "state", "Print a box's OCI state JSON.", (), (Arg("name", "the box's name"),)
    )
    __slots__ = ("name",)
    name: str


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


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


def do_state(opts: StateOptions, g: Globals) -> int:
    state = Queries(g.root, g.data_root).state(opts.name)
    sys.stdout.write(fastjson.dumps(state, indent=2) + "\n")
    return 0


def do_list(opts: ListOptions, g: Globals) -> int:
    q = Queries(g.root, g.data_root)
    if opts.format not in ("json", "table"):
        raise SpecError(f"--format {opts.format!r}: must be table or json")
    records = q.list()
    if opts.format == "json":
        sys.stdout.write(fastjson.dumps([r.summary(q.root.path) for r in records]) + "\n")
        return 0
    if opts.quiet:
        sys.stdout.write("".join(r.id + "\n" for r in records))
        return 0
    rows = [("NAME", "STATUS", "PID", "CREATED", "RESTARTS", "COMMAND")]
    for r in records:
        what = " ".join(r.command)[:40] if r.status != "unknown" else str(r.extra.get("problem"))
        rows.append((r.id, r.status, str(r.pid or "-"), r.created, _restarts(r), what))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        sys.stdout.write(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[5] + "\n"
        )
    return 0


def _restarts(r: BoxRecord) -> str:
    """'-' without a policy, else the count and the last run's exit: '3 (exit 1)'."""
    policy = r.extra.get("restart")
    if not isinstance(policy, dict):
        return "-"
    last = policy.get("last_exit")
    return f"{policy.get('count', 0)}" + ("" if last is None else f" (exit {last})")


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "state": entry(StateOptions, do_state),
    "list": entry(ListOptions, do_list),
}
