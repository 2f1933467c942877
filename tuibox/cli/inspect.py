"""The `inspect` verb: what only the runtime knows about a box (runtime/inspect.py)."""

from __future__ import annotations

import sys

from tuibox.cli import Globals
from tuibox.cli.args import Arg, Command, Opt, Options, entry
from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class InspectOptions(Options):
    COMMAND = Command(
        "inspect",
        "Show a box's namespaces, cgroup limits and usage, mounts, capabilities, seccomp,\n"
        "user mapping, network (veth, bridge, addresses, routes, DNS, ports, NAT rules),\n"
        "pids, env (values masked unless --show-env), spec, restart policy and exit status.",
        (
            Opt(("-f", "--format"), "format", "json|text", default="json"),
            Opt(("--show-env",), "show_env", help="show environment values (masked by default)"),
        ),
        (Arg("name", "the box's name"),),
    )
    __slots__ = ("format", "name", "show_env")
    format: str
    show_env: bool
    name: str


def do_inspect(opts: InspectOptions, g: Globals) -> int:
    if opts.format not in ("json", "text"):
        raise SpecError(f"--format {opts.format!r}: must be json or text")
    import json

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.inspect import inspect, to_text

    data = inspect(Runtime(g.root), opts.name, show_env=opts.show_env)
    if opts.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(to_text(data))
    return 0


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "inspect": entry(InspectOptions, do_inspect)
}


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)
