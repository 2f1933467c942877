"""Network flags of run/create (`--network`, `-p`, with lifecycle's `--netconf`), and the
`network` and `port` verbs.

Lifecycle imports this module for NET_OPTS on `run`'s start-up path, so it imports nothing
but the argument parser at module level; the network runtime is imported by the verbs, and
by the request builder (runtime/request.py) only when a box asks for a network.
"""

from __future__ import annotations

import sys

from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.cli import Globals

NET_OPTS = (
    Opt(
        ("--network", "--net"),
        "network",
        "NAME",
        help="join a network: default, none, or one of 'network ls'",
    ),
    Opt(
        ("-p", "--publish"),
        "publish",
        "[IP:]HOST:BOX[/PROTO]",
        multiple=True,
        help="publish a box port on the host (needs a network)",
    ),
)

# ---- verbs ----------------------------------------------------------------------------------

NETWORK_HELP = (
    "Manage networks: network ls | create NAME --subnet CIDR | rm NAME... | reload [NAME...]"
)


class NetworkAction(Options):
    COMMAND = Command("network", NETWORK_HELP, (), (Arg("action"),))
    __slots__ = ("action",)
    action: str


class NetworkLsOptions(Options):
    COMMAND = Command(
        "network ls",
        "List the networks of this state root.",
        (Opt(("-f", "--format"), "format", "table|json", default="table"),),
    )
    __slots__ = ("format",)
    format: str


class NetworkCreateOptions(Options):
    COMMAND = Command(
        "network create",
        "Define a network; its bridge is made when its first box arrives.",
        (
            Opt(("--subnet",), "subnet", "CIDR", help="the subnet, e.g. 10.214.0.0/24"),
            Opt(("--bridge",), "bridge", "NAME", help="the bridge (default tb-NAME)"),
            Opt(("--gateway",), "gateway", "IP", help="default: the subnet's first address"),
            Opt(("--no-nat",), "no_nat", help="no outbound NAT (no ip_forward either)"),
        ),
        (Arg("name"),),
    )
    __slots__ = ("bridge", "gateway", "name", "no_nat", "subnet")
    subnet: str | None
    bridge: str | None
    gateway: str | None
    no_nat: bool
    name: str


class NetworkRmOptions(Options):
    COMMAND = Command(
        "network rm",
        "Remove networks without boxes: their table, their bridge if tuibox made it.",
        (),
        (Arg("names", rest=True),),
        aliases=("remove", "delete"),
    )
    __slots__ = ("names",)
    names: list[str]


class NetworkReloadOptions(Options):
    COMMAND = Command(
        "network reload",
        "Make the NAT and published-port rules of networks anew (after a firewall flush).",
        (),
        (Arg("names", rest=True),),
    )
    __slots__ = ("names",)
    names: list[str]


class PortOptions(Options):
    COMMAND = Command("port", "List the ports a box publishes.", (), (Arg("name"),))
    __slots__ = ("name",)
    name: str


ACTIONS = {
    "ls": "ls",
    "list": "ls",
    "create": "create",
    "rm": "rm",
    "remove": "rm",
    "delete": "rm",
    "reload": "reload",
}


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    if verb == "port":
        return do_port(parse(PortOptions, words), g)
    first = parse(NetworkAction, words[:1])
    action = ACTIONS.get(first.action)
    if action is None:
        raise UsageError(f"network: unknown action {first.action!r} (ls, create, rm, reload)")
    return NETWORK_VERBS[action](words[1:], g)


def _root(g: Globals) -> str:
    from tuibox.runtime.state import default_root

    return g.root or default_root()


def do_ls(opts: NetworkLsOptions, g: Globals) -> int:
    from tuibox.runtime import fastjson
    from tuibox.runtime.network.manage import list_networks

    nets = list_networks(_root(g))
    if opts.format == "json":
        sys.stdout.write(fastjson.dumps(nets) + "\n")
        return 0
    rows = [("NAME", "BRIDGE", "SUBNET", "GATEWAY", "NAT", "OWNS BRIDGE", "BOXES")]
    for n in nets:
        rows.append(
            (
                n["name"],
                n["bridge"],
                n["subnet"] or "-",
                n["gateway"] or "-",
                "yes" if n["nat"] else "no",
                "yes" if n["created_bridge"] else "no",
                str(len(n["boxes"])),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return 0


def do_create(opts: NetworkCreateOptions, g: Globals) -> int:
    from tuibox.runtime.network.manage import create_network

    if not opts.subnet:
        raise UsageError("network create: --subnet is required")
    create_network(_root(g), opts.name, opts.subnet, opts.bridge, opts.gateway, not opts.no_nat)
    sys.stdout.write(opts.name + "\n")
    return 0


def do_rm(opts: NetworkRmOptions, g: Globals) -> int:
    from tuibox.cli import for_each, warn
    from tuibox.runtime.network.manage import remove_network

    names = opts.names
    if not names:
        raise UsageError("network rm: missing NAME")

    def remove(name: str) -> None:
        for note in remove_network(_root(g), name):
            warn(note)

    return for_each(names, remove)


def do_reload(opts: NetworkReloadOptions, g: Globals) -> int:
    from tuibox.runtime.network.manage import reload_networks

    for line in reload_networks(_root(g), opts.names):
        sys.stdout.write(line + "\n")
    return 0


def do_port(opts: PortOptions, g: Globals) -> int:
    from tuibox.runtime.network.manage import box_ports
    from tuibox.runtime.state import StateRoot

    record = StateRoot(g.root).read(opts.name)
    for p in box_ports(record):
        sys.stdout.write(f"{p['box']} -> {p['host']}\n")
    return 0


NETWORK_VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "ls": entry(NetworkLsOptions, do_ls),
    "create": entry(NetworkCreateOptions, do_create),
    "rm": entry(NetworkRmOptions, do_rm),
    "reload": entry(NetworkReloadOptions, do_reload),
}
