"""The TUI's only door to the runtime.

Two kinds of calls, two paths:

- Mutations (run, start, stop, destroy, exec, ...) spawn the CLI (`python -m tuibox --root R
  ...`) as an asyncio subprocess and parse its output. The TUI process has threads (Textual's
  driver, the worker pool), and forking a threaded Python to set up namespaces is unsafe, so a
  box is always forked by a fresh single-threaded CLI. The CLI's own one-line error becomes
  `ServiceError(message)`, which the screens show as a notification.
- Read-only queries (list, ps, stats) fork nothing, so `InProcessBackend` runs them in a
  worker thread of this process, straight over `tuibox.runtime`: a poll of 50 boxes then costs
  a few milliseconds instead of a Python start-up (~60 ms of CPU) per verb per second.

Terminal panes get an argv to run on a pty (`terminal_command`); the pane spawns it with
`posix_spawn`, which runs no Python in the child and is safe from a threaded process.

The `Backend` protocol is what the screens see; tests inject a fake with the same methods to
check pure UI behaviour fast. Nothing here imports textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from tuibox.runtime.box import GUARDS as GUARDS  # re-exported: the screens grey keys by it
from tuibox.runtime.box import Runtime
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.units import parse_signal

if TYPE_CHECKING:
    from tuibox.runtime.request import CreateRequest as BoxRequest
    from tuibox.runtime.state import BoxRecord
    from tuibox.runtime.stats import Sample

T = TypeVar("T")

ERROR_PREFIX = "tuibox: error: "
DEFAULT_ROOT = "/run/tuibox"
DEFAULT_DATA_ROOT = "/var/lib/tuibox"
LOG_READ_LIMIT = 1 << 20  # per poll: a chatty box must not stall the UI for one huge read
SIGNALS = ("TERM", "KILL", "INT", "HUP", "STOP", "CONT")
STATUSES = ("creating", "created", "running", "paused", "stopped")

# Error kinds (tuibox.runtime.errors, and the CLI's own) that mean "this verb or option cannot
# work here": the verb is greyed out with the reason instead of failing every second. Decided
# from the kind the runtime or the CLI reports, never from the message.
UNAVAILABLE_KINDS = frozenset({"unsupported", "unknown-command", "unknown-option"})
# The CLI prints, after its `tuibox: error:` line, one JSON line with the kind (cli/__init__.py).
KINDS_ENV = "TUIBOX_ERROR_KINDS"
KIND_LINE_KEY = "tuibox_error"


class ServiceError(Exception):
    """A runtime call failed; `message` is the runtime's own one-line text, `kind` its error
    kind (`TuiboxError.kind`, or the CLI's: "usage", "permission", "os", ...; "" if unknown)."""

    def __init__(self, message: str, verb: str = "", kind: str = "", stdout: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.verb = verb
        self.kind = kind
        self.stdout = stdout  # what the CLI printed before failing (gc's report of a partial run)

    def __str__(self) -> str:
        return self.message


class ServiceUnavailable(ServiceError):
    """The runtime does not offer this verb (yet): the UI shows it as unavailable."""


# ---------------------------------------------------------------------------------------------
# Typed rows


@dataclass(frozen=True)
class Limits:
    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class BoxRow:
    id: str
    status: str
    pid: int = 0
    bundle: str = ""
    rootfs: str = ""
    image: str | None = None
    command: tuple[str, ...] = ()
    hostname: str = ""
    created: datetime | None = None
    started: datetime | None = None
    exit_status: int | None = None
    oom_killed: bool = False
    terminal: bool = False
    address: str | None = None
    ports: tuple[str, ...] = ()
    log: str = ""
    namespaces: tuple[str, ...] = ()
    cgroup: str | None = None
    limits: Limits = field(default_factory=Limits)
    # Its restart policy (None: none), the restarts it made and the last run's exit status.
    restart_policy: str | None = None
    restarts: int = 0
    last_exit: int | None = None

    @property
    def name(self) -> str:
        return self.id

    @property
    def source(self) -> str:
        """What the box runs from, as a user would name it."""
        return self.image or self.rootfs or self.bundle

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BoxRow:
        # Tolerant on purpose: the CLI grows fields stage by stage, the list must not break.
        lim = d.get("limits") or {}
        given = d.get("restart")
        restart: dict[str, Any] = given if isinstance(given, dict) else {}
        policy = restart.get("policy")
        if policy == "on-failure" and restart.get("max"):
            policy = f"on-failure:{restart['max']}"
        return cls(
            id=str(d["id"]),
            status=str(d.get("status", "unknown")),
            pid=int(d.get("pid") or 0),
            bundle=str(d.get("bundle") or ""),
            rootfs=str(d.get("rootfs") or ""),
            image=d.get("image") or None,
            command=tuple(str(a) for a in d.get("command") or ()),
            hostname=str(d.get("hostname") or ""),
            created=parse_time(d.get("created")),
            started=parse_time(d.get("started")),
            exit_status=_opt_int(d.get("exit_status")),
            oom_killed=d.get("oom_killed") is True,
            terminal=bool(d.get("terminal", False)),
            address=d.get("address") or None,
            ports=tuple(str(p) for p in d.get("ports") or ()),
            log=str(d.get("log") or ""),
            namespaces=tuple(str(n) for n in d.get("namespaces") or ()),
            cgroup=d.get("cgroup") or None,
            limits=Limits(
                memory=_opt_int(lim.get("memory")),
                cpus=_opt_float(lim.get("cpus")),
                pids=_opt_int(lim.get("pids")),
            ),
            restart_policy=str(policy) if policy else None,
            restarts=_opt_int(restart.get("count")) or 0,
            last_exit=_opt_int(restart.get("last_exit")),
        )


@dataclass(frozen=True)
class ProcessRow:
    pid: int  # on the host
    box_pid: int
    ppid: int  # on the host
    user: str
    state: str
    cpu_percent: float  # over the process's life, as ps(1)
    rss: int
    started: datetime | None
    command: str
    box_ppid: int = 0  # 0: the parent is outside the box's pid namespace
    cpu_time: float = 0.0  # seconds, user + system

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProcessRow:
        return cls(
            pid=int(d["pid"]),
            box_pid=int(d.get("box_pid") or 0),
            ppid=int(d.get("ppid") or 0),
            user=str(d.get("user") or ""),
            state=str(d.get("state") or ""),
            cpu_percent=float(d.get("cpu_percent") or 0.0),
            rss=int(d.get("rss") or 0),
            started=parse_time(d.get("started")),
            command=str(d.get("command") or ""),
            box_ppid=int(d.get("box_ppid") or 0),
            cpu_time=float(d.get("cpu_time") or 0.0),
        )


@dataclass(frozen=True)
class StatsRow:
    id: str
    cpu_percent: float = 0.0
    memory_usage: int = 0
    memory_limit: int | None = None
    pids: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StatsRow:
        return cls(
            id=str(d["id"]),
            cpu_percent=float(d.get("cpu_percent") or 0.0),
            memory_usage=int(d.get("memory_usage") or 0),
            memory_limit=_opt_int(d.get("memory_limit")) or None,
            pids=int(d.get("pids") or 0),
            net_rx=int(d.get("net_rx") or 0),
            net_tx=int(d.get("net_tx") or 0),
            block_read=int(d.get("block_read") or 0),
            block_write=int(d.get("block_write") or 0),
        )


@dataclass(frozen=True)
class DebrisRow:
    """One item `tuibox gc` found: left-overs of a box that no longer exists."""

    kind: str  # box, cgroup, userns-lease, network-lease, layer, socket, seccomp-cache
    box: str
    path: str
    action: str  # what cleaning up does to it

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DebrisRow:
        return cls(
            kind=str(d.get("kind") or ""),
            box=str(d.get("box") or ""),
            path=str(d.get("path") or ""),
            action=str(d.get("action") or ""),
        )


@dataclass(frozen=True)
class GcResult:
    """What a clean-up removed (or tried to) and what it could not, one line each."""

    items: tuple[DebrisRow, ...]
    failures: tuple[str, ...]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GcResult:
        return cls(
            tuple(DebrisRow.from_json(i) for i in d.get("items") or () if isinstance(i, dict)),
            tuple(str(f) for f in d.get("failures") or ()),
        )


@dataclass(frozen=True)
class ImageRow:
    name: str
    size: int = 0
    created: datetime | None = None
    layers: int = 1
    shared_size: int = 0
    unique_size: int = 0
    source: str = ""
    ports: tuple[str, ...] = ()  # the config's ExposedPorts, e.g. "80/tcp"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageRow:
        size = int(d.get("size") or 0)
        return cls(
            name=str(d["name"]),
            size=size,
            created=parse_time(d.get("created")),
            layers=int(d.get("layers") or 1),
            shared_size=int(d.get("shared_size") or 0),
            unique_size=int(d.get("unique_size", size) or 0),
            source=str(d.get("source") or ""),
            ports=tuple(str(p) for p in d.get("ports") or ()),
        )


@dataclass(frozen=True)
class PullProgress:
    """One report of `tuibox pull --progress json`: phase "download" or "extract"."""

    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class MountRow:
    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpecSummary:
    """The parts of a box's config.json the details pane shows."""

    args: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = "0:0"
    env: tuple[str, ...] = ()
    root: str = ""
    readonly: bool = False
    mounts: tuple[MountRow, ...] = ()
    namespaces: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SpecSummary:
        proc = cfg.get("process") or {}
        user = proc.get("user") or {}
        root = cfg.get("root") or {}
        linux = cfg.get("linux") or {}
        return cls(
            args=tuple(str(a) for a in proc.get("args") or ()),
            cwd=str(proc.get("cwd") or "/"),
            user=f"{user.get('uid', 0)}:{user.get('gid', 0)}",
            env=tuple(str(e) for e in proc.get("env") or ()),
            root=str(root.get("path") or ""),
            readonly=bool(root.get("readonly", False)),
            mounts=tuple(
                MountRow(
                    destination=str(m.get("destination", "")),
                    type=str(m.get("type") or "bind"),
                    source=str(m.get("source") or ""),
                    options=tuple(str(o) for o in m.get("options") or ()),
                )
                for m in cfg.get("mounts") or ()
            ),
            namespaces=tuple(str(n.get("type", "")) for n in linux.get("namespaces") or ()),
        )


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    offset: int  # where the next read starts
    reset: bool = False  # the file shrank (recreated or truncated): drop what was shown


@dataclass(frozen=True)
class TerminalCommand:
    """What a terminal pane runs on its pty: the CLI's `exec -it` or `attach`, or a stand-in."""

    argv: tuple[str, ...]
    env: dict[str, str] | None = None  # None: the TUI's own environment (ptyspawn's default)


@dataclass
class CreateOptions:
    """What the create form asks for; `to_args` turns it into a `run -d` command line."""

    name: str
    image: str | None = "busybox"
    rootfs: str | None = None
    command: tuple[str, ...] = ("/bin/sh",)
    hostname: str | None = None
    terminal: bool = True
    network: bool = False
    ports: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    pids: str | None = None
    env: tuple[str, ...] = ()

    def to_args(self) -> list[str]:
        args = ["run", "-d"]
        if self.rootfs:
            args += ["--rootfs", self.rootfs]
        elif self.image:
            args += ["--image", self.image]
        if self.hostname:
            args += ["--hostname", self.hostname]
        if self.terminal:
            args.append("-t")
        if self.network:
            args += ["--network", "default"]
        for port in self.ports:
            args += ["-p", port]
        if self.memory:
            args += ["--memory", self.memory]
        if self.cpus:
            args += ["--cpus", self.cpus]
        if self.pids:
            args += ["--pids-limit", self.pids]
        for kv in self.env:
            args += ["-e", kv]
        # "--" so a command starting with "-" is never read as a flag of run.
        args += ["--", self.name, *self.command]
        return args

    def request(self, root: str, data_root: str) -> BoxRequest:
        """The runtime's own request for these options: everything `to_args` would make the
        CLI check (name, image, rootfs, limits, ports, env), checked here, in-process, so a
        bad field is reported before anything is spawned. Raises TuiboxError; forks nothing
        when called from a thread of the TUI (runtime/request.py)."""
        from tuibox.runtime.request import CreateRequest

        options: dict[str, Any] = {
            "hostname": self.hostname,
            "terminal": self.terminal,
            "env": list(self.env),
            "network": "default" if self.network else None,
            "publish": list(self.ports),
            "memory": self.memory,
            "cpus": self.cpus,
            "pids_limit": self.pids,
            "names": FORM_NAMES,
        }
        if self.rootfs:
            return CreateRequest.from_rootfs(self.name, self.rootfs, self.command, **options)
        return CreateRequest.from_image(
            self.name,
            self.image or "busybox",
            self.command,
            data_root=data_root,
            root=root,
            **options,
        )


# How the builder's errors name the form's fields (screens/create.py's field_for reads them).
FORM_NAMES = {"publish": "ports", "pids_limit": "pids"}


# ---------------------------------------------------------------------------------------------
# Networks, the network map and the limits dialog (issue 17)


@dataclass(frozen=True)
class NetworkRow:
    """One network of the state root, as `tuibox network ls --format json` prints it."""

    name: str
    bridge: str
    kind: str = "tuibox"  # "tuibox" (network create / default) or "netconf" (a netconf's bridge)
    subnet: str | None = None
    gateway: str | None = None
    nat: bool = False
    created_bridge: bool = False
    boxes: tuple[str, ...] = ()  # boxes of this root holding a lease on it

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NetworkRow:
        return cls(
            name=str(d["name"]),
            bridge=str(d.get("bridge") or ""),
            kind=str(d.get("kind") or "tuibox"),
            subnet=d.get("subnet") or None,
            gateway=d.get("gateway") or None,
            nat=d.get("nat") is True,
            created_bridge=d.get("created_bridge") is True,
            boxes=tuple(sorted(str(b) for b in d.get("boxes") or ())),
        )


@dataclass(frozen=True)
class BoxLink:
    """One interface of a box as its record has it: the host end of its veth, on a bridge."""

    box: str
    status: str
    network: str | None  # the network's name; None for a box whose netconf has no bridge
    bridge: str | None
    veth: str  # the host side's name ("" when the record names none)
    box_ifname: str
    address: str | None  # "10.88.0.2/24"
    ports: tuple[str, ...] = ()  # "8080:80/tcp", the box's published ports (first link only)
    veth_present: bool | None = None  # /sys/class/net/<veth> exists; None: not looked at


@dataclass(frozen=True)
class NetworkMap:
    networks: tuple[NetworkRow, ...]
    # Every interface of every box that has one; bridge None: a netconf's point-to-point veth.
    links: tuple[BoxLink, ...]

    def on(self, bridge: str | None) -> list[BoxLink]:
        return [link for link in self.links if link.bridge == bridge]


def network_map_of(
    records: Sequence[BoxRecord],
    networks: Sequence[NetworkRow],
    present: Callable[[str], bool] | None = None,
) -> NetworkMap:
    """The map from what the runtime recorded: each record's extra["network"] (interfaces,
    bridge, name) and its ports, joined with the networks of the state root. No netlink:
    `present(veth)` (a stat of /sys/class/net/NAME by default) says whether the host end is
    still there. A bridge that no network names (a netconf's) gets a row of its own."""
    look = present or _link_present
    links: list[BoxLink] = []
    for record in records:
        net = record.extra.get("network")
        if not isinstance(net, dict):
            continue  # no network asked for (--network none, or the host's)
        ifaces = [i for i in net.get("interfaces") or () if isinstance(i, dict)]
        bridge = net.get("bridge") or None
        ports = tuple(str(p) for p in record.extra.get("ports") or ())
        for n, iface in enumerate(ifaces):
            veth = str(iface.get("host") or "")
            links.append(
                BoxLink(
                    box=record.id,
                    status=record.status,
                    network=str(net.get("name") or bridge) if bridge else None,
                    bridge=str(bridge) if bridge else None,
                    veth=veth,
                    box_ifname=str(iface.get("box") or ""),
                    address=iface.get("address") or None,
                    ports=ports if n == 0 else (),
                    # A stopped box has released its veth: nothing to look for.
                    veth_present=look(veth) if veth and record.status != "stopped" else None,
                )
            )
    rows = list(networks)
    known = {n.bridge for n in rows}
    for link in links:
        if link.bridge and link.bridge not in known:
            known.add(link.bridge)
            rows.append(
                NetworkRow(name=link.network or link.bridge, bridge=link.bridge, kind="netconf")
            )
    links.sort(key=lambda x: (x.bridge or "", natural_key(x.box)))
    return NetworkMap(tuple(rows), tuple(links))


def _link_present(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def natural_key(name: str) -> tuple[Any, ...]:
    """q2 before q10: digits compare as numbers."""
    parts: list[Any] = []
    digits = ""
    text = ""
    for ch in name:
        if ch.isdigit():
            if text:
                parts.append((1, text))
                text = ""
            digits += ch
        else:
            if digits:
                parts.append((0, int(digits)))
                digits = ""
            text += ch
    if digits:
        parts.append((0, int(digits)))
    if text:
        parts.append((1, text))
    return tuple(parts)


@dataclass
class NetworkOptions:
    """What the network form asks for; `to_args` is the CLI's `network create`."""

    name: str
    subnet: str
    bridge: str | None = None
    gateway: str | None = None
    nat: bool = True

    def to_args(self) -> list[str]:
        args = ["network", "create", "--subnet", self.subnet]
        if self.bridge:
            args += ["--bridge", self.bridge]
        if self.gateway:
            args += ["--gateway", self.gateway]
        if not self.nat:
            args.append("--no-nat")
        return [*args, "--", self.name]


def network_problem(options: NetworkOptions, taken: Sequence[str] = ()) -> tuple[str, str] | None:
    """(field, message) for the first field of the network form the runtime would refuse, with
    the runtime's own checks (runtime/network/netconf.py, manage.py); None when all pass."""
    from tuibox.runtime.network import manage, netconf

    name = options.name
    try:
        manage.check_network_name(name)
    except TuiboxError as exc:
        return "name", exc.message.removeprefix("network create: ")
    if name in taken:
        return "name", f"network {name!r} already exists"
    bridge = options.bridge or ("tb-" + name)[: netconf.MAX_IFNAME]
    checks: tuple[tuple[str, Callable[[], object]], ...] = (
        ("subnet", lambda: netconf.parse_subnet(options.subnet, "subnet")),
        ("bridge", lambda: netconf.check_ifname(bridge, "bridge")),
        ("gateway", lambda: options.gateway and netconf.parse_address(options.gateway, "gateway")),
    )
    for field_name, check in checks:
        if field_name == "subnet" and not options.subnet:
            return "subnet", "subnet: required, a CIDR such as 10.214.0.0/24"
        try:
            check()
        except TuiboxError as exc:
            return field_name, exc.message
    try:
        netconf.network_def(name, bridge, options.subnet, options.gateway, options.nat, "network")
    except TuiboxError as exc:
        message = exc.message.removeprefix("network: ")
        return ("gateway" if message.startswith("gateway") else "subnet"), message
    return None


# How the limits dialog's fields are named in errors (the runtime's flags_to_raw `names`).
LIMIT_FIELDS = {"memory": "memory", "cpus": "cpus", "pids": "pids_limit"}
LIMIT_NAMES = {"memory": "memory", "cpus": "cpus", "pids_limit": "pids"}
# What an emptied field asks for: the runtime's "no limit" (cpus has none on a live box).
NO_LIMIT = {"memory": "-1", "pids": "-1"}


def limits_text(limits: Limits) -> dict[str, str]:
    """The dialog's prefilled values: what `update` would take back unchanged."""
    return {
        "memory": size_text(limits.memory) if limits.memory else "",
        "cpus": f"{limits.cpus:g}" if limits.cpus else "",
        "pids": str(limits.pids) if limits.pids else "",
    }


def size_text(value: int) -> str:
    for unit, size in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def limit_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """The fields the user changed, as `update` takes them ("" -> no limit)."""
    out = {}
    for key in ("memory", "cpus", "pids"):
        new = after.get(key, "").strip()
        if new != before.get(key, "").strip():
            out[key] = new or NO_LIMIT.get(key, "")
    return out


def limits_problem(changes: dict[str, str]) -> tuple[str, str] | None:
    """(field, message) for the first changed limit the runtime would refuse, checked by the
    runtime's own parser with the dialog's field names (never the CLI's flags)."""
    from tuibox.runtime.cgroups.resources import flags_to_raw

    for key, value in changes.items():
        if key == "cpus" and not value:
            return "cpus", "cpus: a live box's CPU limit can be changed, not removed (0.01 to 4096)"
        try:
            flags_to_raw({LIMIT_FIELDS[key]: value}, LIMIT_NAMES)
        except TuiboxError as exc:
            return key, exc.message
    return None


def limit_args(changes: dict[str, str]) -> list[str]:
    flags = {"memory": "--memory", "cpus": "--cpus", "pids": "--pids-limit"}
    args: list[str] = []
    for key, value in changes.items():
        args.append(f"{flags[key]}={value}")  # "=": a "-1" is a value, not a flag
    return args


# ---------------------------------------------------------------------------------------------
# Which actions a status allows (the runtime's own guard table, plus the TUI-only actions)

_TUI_GUARDS: dict[str, frozenset[str]] = {
    **GUARDS,
    "restart": frozenset({"created", "running", "paused", "stopped"}),
    "destroy": GUARDS["destroy-force"],  # the confirmation asks before forcing
    "shell": GUARDS["exec"],
    "shell_suspend": GUARDS["exec"],
    # The console keeper is there from create on, so a created box's first output is seen.
    "attach": frozenset({"created", "running"}),
    "processes": frozenset({"created", "running", "paused"}),
    "logs": frozenset(STATUSES),
    "limits": GUARDS["update"],
}


def allowed(action: str, status: str) -> bool:
    return status in _TUI_GUARDS.get(action, frozenset())


def allowed_states(action: str) -> frozenset[str]:
    return _TUI_GUARDS.get(action, frozenset())


# ---------------------------------------------------------------------------------------------
# The protocol the screens use


@runtime_checkable
class Backend(Protocol):
    root: str
    data_root: str

    async def list_boxes(self) -> list[BoxRow]: ...
    async def stats(self) -> list[StatsRow]: ...
    async def processes(self, name: str) -> list[ProcessRow]: ...
    async def images(self) -> list[ImageRow]: ...
    async def run(self, options: CreateOptions) -> None: ...
    async def create_from_bundle(self, name: str, bundle: str) -> None: ...
    async def start(self, name: str) -> None: ...
    async def stop(self, name: str, timeout: float | None = None) -> None: ...
    async def restart(self, name: str, timeout: float | None = None) -> None: ...
    async def kill(self, name: str, sig: str = "TERM") -> None: ...
    async def pause(self, name: str) -> None: ...
    async def resume(self, name: str) -> None: ...
    async def destroy(self, name: str, force: bool = False) -> None: ...
    async def signal_process(self, box: BoxRow, process: ProcessRow, sig: str) -> None: ...
    async def spec(self, box: BoxRow) -> SpecSummary | None: ...
    async def inspect(self, name: str) -> dict[str, Any]: ...
    async def read_log(self, path: str, offset: int) -> LogChunk: ...
    def shell_command(self, name: str, shell: str = "/bin/sh") -> list[str]: ...
    def terminal_command(self, name: str, mode: str, shell: str = "/bin/sh") -> TerminalCommand: ...
    async def unavailable_verbs(self, verbs: Sequence[str]) -> dict[str, str]: ...
    async def debris(self) -> list[DebrisRow]: ...
    async def collect_debris(self) -> GcResult: ...
    async def inspect_image(self, name: str) -> dict[str, Any]: ...
    async def remove_image(self, name: str, force: bool = False) -> None: ...
    async def pull(
        self,
        reference: str,
        tls_verify: bool = True,
        progress: Callable[[PullProgress], None] | None = None,
    ) -> str: ...
    async def networks(self) -> list[NetworkRow]: ...
    async def network_map(self) -> NetworkMap: ...
    async def create_network(self, options: NetworkOptions) -> None: ...
    async def remove_network(self, name: str) -> None: ...
    async def update_limits(self, name: str, changes: dict[str, str]) -> None: ...


class CliBackend:
    """Runs the tuibox CLI for every call; one process per list, one per stats of all boxes."""

    def __init__(
        self,
        root: str | None = None,
        data_root: str | None = None,
        python: str = sys.executable,
    ) -> None:
        self.root = root or os.environ.get("TUIBOX_ROOT") or DEFAULT_ROOT
        self.data_root = data_root or os.environ.get("TUIBOX_DATA") or DEFAULT_DATA_ROOT
        self._base = [python, "-m", "tuibox", "--root", self.root, "--data-root", self.data_root]
        # The CLI must import this very tuibox even when the TUI was started from elsewhere.
        pkg_parent = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        self._env = {**os.environ, "PYTHONPATH": f"{pkg_parent}:{path}" if path else pkg_parent}
        self._env[KINDS_ENV] = "1"
        self._spec_cache: dict[str, tuple[int, SpecSummary]] = {}

    def argv(self, *args: str) -> list[str]:
        return [*self._base, *args]

    async def call(self, *args: str, timeout: float = 30.0, mutating: bool = False) -> str:
        """Run one CLI verb; return its stdout or raise ServiceError with its message."""
        verb = args[0] if args else ""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(*args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                # Its own session: keys typed in the TUI's terminal never signal the CLI/boxes.
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"cannot run the tuibox cli: {exc.strerror}", verb) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            _kill_quietly(proc)
            await proc.wait()
            raise ServiceError(f"tuibox {verb} did not finish in {timeout:g} s", verb) from None
        except asyncio.CancelledError:
            # A read can be dropped; a half-done create or destroy must finish on its own
            # (the CLI rolls back or completes), so only readers are killed.
            if not mutating:
                _kill_quietly(proc)
                # Reap it now: a transport left for the garbage collector outlives the loop.
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(proc.wait(), 1.0)
            raise
        if proc.returncode != 0:
            failed = error_from_cli(verb, proc.returncode or 0, err.decode(errors="replace"))
            failed.stdout = out.decode(errors="replace")
            raise failed
        return out.decode(errors="replace")

    async def _json(self, *args: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        out = await self.call(*args, timeout=timeout)
        try:
            data = json.loads(out or "[]")
        except json.JSONDecodeError as exc:
            raise ServiceError(
                f"tuibox {args[0]} printed invalid json: {exc.msg}", args[0]
            ) from None
        if not isinstance(data, list):
            raise ServiceError(f"tuibox {args[0]} printed {type(data).__name__}, not a list")
        return data

    async def list_boxes(self) -> list[BoxRow]:
        return [BoxRow.from_json(d) for d in await self._json("list", "--format", "json")]

    async def stats(self) -> list[StatsRow]:
        rows = await self._json("stats", "--no-stream", "--format", "json")
        return [StatsRow.from_json(d) for d in rows]

    async def processes(self, name: str) -> list[ProcessRow]:
        return [ProcessRow.from_json(d) for d in await self._json("ps", "--format", "json", name)]

    async def images(self) -> list[ImageRow]:
        return [ImageRow.from_json(d) for d in await self._json("image", "ls", "--format", "json")]

    async def inspect_image(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await self.call("image", "inspect", name))
        return data

    async def remove_image(self, name: str, force: bool = False) -> None:
        args = ["image", "rm", "--force", name] if force else ["image", "rm", name]
        await self.call(*args, timeout=120.0, mutating=True)

    async def pull(
        self,
        reference: str,
        tls_verify: bool = True,
        progress: Callable[[PullProgress], None] | None = None,
    ) -> str:
        """`tuibox pull --progress json`: one JSON line per report on stdout, then the name."""
        args = ["pull", "--progress", "json"]
        if not tls_verify:
            args.append("--tls-verify=false")
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args, "--", reference),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        err_task = asyncio.ensure_future(proc.stderr.read())
        name = ""
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("{"):
                try:
                    d = json.loads(line)
                    report = PullProgress(str(d["phase"]), int(d["done"]), int(d["total"]))
                except (ValueError, KeyError, TypeError):
                    continue
                if progress is not None:
                    progress(report)
            elif line:
                name = line
        await proc.wait()
        err = (await err_task).decode(errors="replace")
        if proc.returncode != 0:
            raise error_from_cli("pull", proc.returncode or 0, err)
        return name

    async def debris(self) -> list[DebrisRow]:
        report = _gc_report(await self.call("gc", "--format", "json", timeout=60.0))
        return list(report.items)

    async def collect_debris(self) -> GcResult:
        """`tuibox gc --yes`: it finds the debris again and removes what it finds (a mutation,
        so the CLI's); a partial failure still reports what was done."""
        try:
            out = await self.call("gc", "--yes", "--format", "json", timeout=120.0, mutating=True)
        except ServiceError as exc:
            if not exc.stdout.strip():
                raise
            report = _gc_report(exc.stdout)
            return GcResult(report.items, report.failures or (exc.message,))
        return _gc_report(out)

    async def networks(self) -> list[NetworkRow]:
        return [NetworkRow.from_json(d) for d in await self._json("network", "ls", "-f", "json")]

    async def network_map(self) -> NetworkMap:
        # The networks from the CLI; the boxes' links from their records, read here (read
        # only, as spec() reads config.json): `list --format json` does not carry them.
        networks = await self.networks()
        records = await asyncio.to_thread(Runtime(self.root).list)
        return await asyncio.to_thread(network_map_of, records, networks)

    async def create_network(self, options: NetworkOptions) -> None:
        problem = await asyncio.to_thread(network_problem, options)
        if problem is not None:
            raise ServiceError(problem[1], "network", "usage")
        await self.call(*options.to_args(), mutating=True)

    async def remove_network(self, name: str) -> None:
        """`tuibox network rm`: refused by the runtime while a box holds a lease on it."""
        await self.call("network", "rm", "--", name, mutating=True)

    async def update_limits(self, name: str, changes: dict[str, str]) -> None:
        """`tuibox update`: the changed limits, checked here first with the dialog's names."""
        problem = await asyncio.to_thread(limits_problem, changes)
        if problem is not None:
            raise ServiceError(problem[1], "update", "usage")
        if not changes:
            return
        await self.call("update", *limit_args(changes), "--", name, mutating=True)

    async def run(self, options: CreateOptions) -> None:
        # Built and checked by the runtime here first (a thread: it reads the image store),
        # then made by the CLI: this process has threads and must not fork boxes.
        try:
            await asyncio.to_thread(self._check_request, options)
        except TuiboxError as exc:
            raise ServiceError(exc.message, "run") from None
        await self.call(*options.to_args(), timeout=120.0, mutating=True)

    def _check_request(self, options: CreateOptions) -> None:
        req = options.request(self.root, self.data_root)
        worker = req.options.get("network", {}).get("worker")
        if worker is not None:  # only a single-threaded caller gets one; never the TUI
            worker.finish()

    async def create_from_bundle(self, name: str, bundle: str) -> None:
        from tuibox.runtime.request import CreateRequest

        try:  # checked by the runtime first, as run's form is
            await asyncio.to_thread(CreateRequest.from_bundle, name, bundle)
        except TuiboxError as exc:
            raise ServiceError(exc.message, "create") from None
        await self.call("create", "--bundle", bundle, name, timeout=120.0, mutating=True)

    async def start(self, name: str) -> None:
        await self.call("start", name, mutating=True)

    async def stop(self, name: str, timeout: float | None = None) -> None:
        args = ["stop", name] if timeout is None else ["stop", "--timeout", f"{timeout:g}", name]
        await self.call(*args, timeout=(timeout or 10.0) + 30.0, mutating=True)

    async def restart(self, name: str, timeout: float | None = None) -> None:
        """`tuibox restart`: stop, then start again (a stopped box is made anew)."""
        args = ["restart", name] if timeout is None else ["restart", "-t", f"{timeout:g}", name]
        await self.call(*args, timeout=(timeout or 10.0) + 120.0, mutating=True)

    async def kill(self, name: str, sig: str = "TERM") -> None:
        await self.call("kill", name, sig, mutating=True)

    async def pause(self, name: str) -> None:
        await self.call("pause", name, mutating=True)

    async def resume(self, name: str) -> None:
        await self.call("resume", name, mutating=True)

    async def destroy(self, name: str, force: bool = False) -> None:
        args = ["destroy", "--force", name] if force else ["destroy", name]
        await self.call(*args, timeout=60.0, mutating=True)

    async def signal_process(self, box: BoxRow, process: ProcessRow, sig: str) -> None:
        if process.box_pid == 1 or process.pid == box.pid:
            # The init: let the runtime signal it, so its bookkeeping sees the same thing.
            await self.kill(box.name, sig)
            return
        try:
            # The runtime checks the pid still belongs to the box before signalling it.
            await self.call("kill", "--pid", str(process.pid), box.name, sig, mutating=True)
        except ServiceUnavailable:
            # A CLI without `kill --pid`: the same check, done here.
            await asyncio.to_thread(_signal_in_box, box, process, sig)

    async def inspect(self, name: str) -> dict[str, Any]:
        """Everything `tuibox inspect` knows, env values included (the screen masks them)."""
        data: dict[str, Any] = json.loads(await self.call("inspect", "--show-env", name))
        return data

    async def spec(self, box: BoxRow) -> SpecSummary | None:
        # The state dir keeps a copy of the spec the box was made from; the bundle may be gone.
        for path in (Path(self.root) / box.name / "config.json", Path(box.bundle) / "config.json"):
            summary = await asyncio.to_thread(self._read_spec, path)
            if summary is not None:
                return summary
        return None

    def _read_spec(self, path: Path) -> SpecSummary | None:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._spec_cache.get(str(path))
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            summary = SpecSummary.from_config(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError, TypeError):
            return None
        self._spec_cache[str(path)] = (mtime, summary)
        return summary

    async def read_log(self, path: str, offset: int) -> LogChunk:
        return await asyncio.to_thread(read_log_chunk, path, offset)

    def shell_command(self, name: str, shell: str = "/bin/sh") -> list[str]:
        return self.argv("exec", "-it", name, shell)

    def terminal_command(self, name: str, mode: str, shell: str = "/bin/sh") -> TerminalCommand:
        """The CLI verb a pane runs: `exec -it NAME SHELL` (shell) or `attach NAME`."""
        if mode == "shell":
            args: tuple[str, ...] = ("exec", "-it", name, shell)
        elif mode == "attach":
            # The pane owns the detach key (ctrl+] returns focus to the list); the CLI's own
            # is switched off, so a remapped pane key cannot detach the client underneath.
            args = ("attach", "--detach-keys", "", name)
        else:
            raise ValueError(f"unknown terminal mode {mode!r}")
        env = {**self._env, "TERM": "xterm-256color"}
        # The pane shows the CLI's stderr to a person: no machine-readable kind lines there.
        env.pop(KINDS_ENV, None)
        # A size left in the environment would override the pty's own.
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        return TerminalCommand(tuple(self.argv(*args)), env)

    async def unavailable_verbs(self, verbs: Sequence[str]) -> dict[str, str]:
        """Which of `verbs` this CLI lacks, from one `tuibox --help` (not one call per verb).

        Verbs in ASK_DIRECTLY are listed in the help before their module lands, so those
        are asked for their own `--help` too (in parallel)."""
        try:
            known = verbs_in_help(await self.call("--help", timeout=15.0))
        except ServiceError:
            return {}
        if not known:  # a help text we cannot read: assume everything is there
            return {}
        missing = {v: f"this runtime has no '{v}' command yet" for v in verbs if v not in known}
        asked = [v for v in verbs if v in known and v in ASK_DIRECTLY]
        answers = await asyncio.gather(
            *(self.call(v, "--help", timeout=15.0) for v in asked), return_exceptions=True
        )
        for verb, answer in zip(asked, answers, strict=True):
            if isinstance(answer, ServiceError):
                missing[verb] = f"'{verb}' does not work in this runtime yet: {answer.message}"
        return missing


# Verbs the CLI's help lists before they work: the TUI asks each for its own --help.
ASK_DIRECTLY = frozenset({"exec", "attach"})
# How long the records of a list stand for the stats poll that follows it (seconds).
LISTED_FRESH = 0.5


class InProcessBackend(CliBackend):
    """The CLI backend, with the read-only queries (list, ps, stats) run in a worker thread
    of this process straight over `tuibox.runtime`.

    Reading state.json, /proc and cgroup files forks nothing, so it is safe beside the TUI's
    threads; everything that makes processes (run, start, stop, exec, ...) is still the CLI's.
    CPU % comes from the delta between this poll's cgroup sample and the last one, kept here:
    nothing sleeps, unlike `tuibox stats --no-stream`, which must sample twice."""

    def __init__(
        self,
        root: str | None = None,
        data_root: str | None = None,
        python: str = sys.executable,
    ) -> None:
        super().__init__(root, data_root, python)
        self.runtime = Runtime(self.root)
        # (box, init pid) -> its last sample; the pid in the key keeps a re-made box apart.
        self._samples: dict[tuple[str, int], Sample] = {}
        # The records of the last list: the app asks for stats right after a list, and
        # reading every state.json again would double the cost of a refresh.
        self._listed: tuple[float, list[BoxRecord]] = (0.0, [])

    async def _in_thread(self, verb: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except TuiboxError as exc:
            raise service_error(exc.message, verb, exc.kind) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            kind = "permission" if isinstance(exc, PermissionError) else "os"
            message = f"{(exc.strerror or str(exc)).lower()}{where}"
            raise ServiceError(message, verb, kind) from None

    def _list_rows(self) -> list[BoxRow]:
        # The record's own summary, the one `tuibox list --format json` prints: the rows
        # are exactly the CLI's for the same root.
        path = self.runtime.root.path
        records = self.runtime.list()
        self._listed = (time.monotonic(), records)
        return [BoxRow.from_json(r.summary(path)) for r in records]

    async def list_boxes(self) -> list[BoxRow]:
        return await self._in_thread("list", self._list_rows)

    def _stats_records(self) -> list[BoxRecord]:
        at, records = self._listed
        if time.monotonic() - at > LISTED_FRESH:
            return self.runtime.stats_records(None)
        # The same choice as Runtime.stats_records: live boxes that have a cgroup.
        return [r for r in records if r.status != "stopped" and r.extra.get("cgroup_dirs")]

    def _sample_all(self) -> list[tuple[BoxRecord, Sample | None]]:
        from tuibox.runtime import stats as rstats

        return [(r, rstats.sample(r)) for r in self._stats_records()]

    async def stats(self) -> list[StatsRow]:
        from tuibox.runtime import stats as rstats

        pairs = await self._in_thread("stats", self._sample_all)
        # Swapped here on the event loop, not in the thread: the late samples of a
        # cancelled poll never land.
        before, self._samples = self._samples, {}
        rows = []
        for record, sample in pairs:
            key = (record.id, record.pid)
            rows.append(StatsRow.from_json(rstats.row(record, sample, before.get(key))))
            if sample is not None:
                self._samples[key] = sample
        return rows

    async def inspect(self, name: str) -> dict[str, Any]:
        from tuibox.runtime.inspect import inspect

        return await self._in_thread("inspect", inspect, self.runtime, name, True)

    async def processes(self, name: str) -> list[ProcessRow]:
        rows = await self._in_thread("ps", self.runtime.ps, name)
        return [ProcessRow.from_json(d) for d in rows]

    def _networks(self) -> list[NetworkRow]:
        from tuibox.runtime.network.manage import list_networks

        return [NetworkRow.from_json(d) for d in list_networks(self.runtime.root.path)]

    async def networks(self) -> list[NetworkRow]:
        return await self._in_thread("network", self._networks)

    def _network_map(self) -> NetworkMap:
        at, records = self._listed
        if time.monotonic() - at > LISTED_FRESH:
            records = self.runtime.list()
        return network_map_of(records, self._networks())

    async def network_map(self) -> NetworkMap:
        return await self._in_thread("network", self._network_map)

    def _find_debris(self) -> list[DebrisRow]:
        from tuibox.runtime.recovery import find_debris

        # Read-only (it lists cgroups and leases, reads records, probes sockets): no fork.
        return [DebrisRow.from_json(i.as_dict()) for i in find_debris(self.runtime, self.data_root)]

    async def debris(self) -> list[DebrisRow]:
        return await self._in_thread("gc", self._find_debris)

    def _image_rows(self) -> list[ImageRow]:
        from tuibox.runtime.images.store import ImageStore

        # Read-only: image.json files and layer sizes; `image ls --format json`'s very rows.
        return [ImageRow.from_json(d) for d in ImageStore(self.data_root).summaries()]

    async def images(self) -> list[ImageRow]:
        return await self._in_thread("image", self._image_rows)


def inspect_text(data: dict[str, Any]) -> str:
    """`tuibox inspect --format text`'s rendering, for the inspect screen."""
    from tuibox.runtime.inspect import to_text

    return to_text(data)


def make_backend(root: str | None, data_root: str | None) -> Backend:
    # TUIBOX_TUI_BACKEND=cli sends every call through the CLI (to compare, or debug it).
    if os.environ.get("TUIBOX_TUI_BACKEND") == "cli":
        return CliBackend(root, data_root)
    return InProcessBackend(root, data_root)


# ---------------------------------------------------------------------------------------------
# Helpers (pure, unit-tested)


def name_problem(name: str, taken: set[str]) -> str | None:
    """Why `name` cannot name a new box (the runtime's own rule and message), or None."""
    from tuibox.runtime.errors import BoxExists
    from tuibox.runtime.state import check_name

    try:
        check_name(name)
    except TuiboxError as exc:
        return exc.message
    if name in taken:
        return BoxExists(name).message
    return None


# How the create form names its limit fields (the CLI's flags mean nothing there), and what
# a good value looks like.
FORM_LIMIT_FIELDS = {
    "memory": ("memory", "Memory", "256m, 1g"),
    "cpus": ("cpus", "CPUs", "0.5, 2"),
    "pids": ("pids_limit", "Pids", "100"),
}


def limit_problem(field: str, text: str) -> str | None:
    """Why `text` cannot be the form's limit `field` (memory, cpus, pids), in the form's
    words ("Memory: 'abc' is not a size (e.g. 256m, 1g)"), or None. The runtime's own check
    (the one `run --memory` goes through), so the form and the CLI never disagree."""
    from tuibox.runtime.cgroups.resources import flags_to_raw

    dest, label, examples = FORM_LIMIT_FIELDS[field]
    try:
        flags_to_raw({dest: text}, {dest: label})
    except TuiboxError as exc:
        # The runtime says "Memory 'abc': not a size (...)": the label, the value, the why.
        why = exc.message.removeprefix(f"{label} {text!r}").lstrip(": ")
        if why.startswith("not a size"):
            return f"{label}: {text!r} is not a size (e.g. {examples})"
        if why.startswith("must"):
            hint = "" if "such as" in why else f" (e.g. {examples})"
            return f"{label}: {text!r} {why}{hint}"
        return f"{label}: {text!r}: {why}"
    return None


def _gc_report(out: str) -> GcResult:
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise ServiceError(f"tuibox gc printed invalid json: {exc.msg}", "gc") from None
    if not isinstance(data, dict):
        raise ServiceError(f"tuibox gc printed {type(data).__name__}, not an object", "gc")
    return GcResult.from_json(data)


def service_error(message: str, verb: str, kind: str) -> ServiceError:
    """The error the screens get for a runtime error of `kind`."""
    cls = ServiceUnavailable if kind in UNAVAILABLE_KINDS else ServiceError
    return cls(message, verb, kind)


def error_kind(line: str) -> str | None:
    """The kind in one of the CLI's JSON kind lines, or None if `line` is not one."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    entry = data.get(KIND_LINE_KEY) if isinstance(data, dict) else None
    kind = entry.get("kind") if isinstance(entry, dict) else None
    return kind if isinstance(kind, str) else None


def error_from_cli(verb: str, returncode: int, stderr: str) -> ServiceError:
    """The CLI's last `tuibox: error:` line (and the kind line after it), or the last line of
    whatever it printed."""
    lines = []
    kind = ""
    for raw in stderr.splitlines():
        ln = raw.strip()
        if not ln:
            continue
        found = error_kind(ln)
        if found is None:
            lines.append(ln)
        else:
            kind = found
    errors = [ln for ln in lines if ln.startswith(ERROR_PREFIX)]
    if errors:
        message = errors[-1][len(ERROR_PREFIX) :]
    elif lines and any(ln.startswith("Traceback") for ln in lines):
        message = f"tuibox {verb} crashed: {lines[-1]}"
    elif lines:
        message = lines[-1]
    else:
        message = f"tuibox {verb} failed with exit status {returncode}"
    return service_error(message, verb, kind)


def verbs_in_help(text: str) -> set[str]:
    """The verbs listed under 'verbs:' in `tuibox --help`."""
    verbs: set[str] = set()
    inside = False
    for line in text.splitlines():
        if line.strip().lower().rstrip(":") in ("verbs", "commands"):
            inside = True
            continue
        if inside and line.startswith("  ") and line.split():
            verbs.add(line.split()[0])
        elif inside and line.strip():
            inside = False
    return verbs


def read_log_chunk(path: str, offset: int, limit: int = LOG_READ_LIMIT) -> LogChunk:
    """From `offset` on. A log that shrank was rotated (box.log -> box.log.1, runtime/
    logfile.py): the rest of the rotated file comes first, then the new one from 0."""
    if not path:
        raise ServiceError("this box has no log file (it was not started detached)")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:
                rest = _rotated_rest(path + ".1", offset, limit)
                if rest is not None:
                    return rest
            reset = size < offset
            start = 0 if reset else offset
            f.seek(start)
            data = f.read(limit)
    except FileNotFoundError:
        return LogChunk(b"", 0, reset=offset > 0)
    except OSError as exc:
        raise ServiceError(f"cannot read log {path}: {exc.strerror}") from None
    return LogChunk(data, start + len(data), reset)


def _rotated_rest(path: str, offset: int, limit: int) -> LogChunk | None:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:
                return None  # not the file we were reading: start again
            f.seek(offset)
            data = f.read(limit)
    except OSError:
        return None
    end = offset + len(data)
    return LogChunk(data, end if end < size else 0)  # done with it: the new file from 0


def _signal_in_box(box: BoxRow, process: ProcessRow, sig: str) -> None:
    # The pid came from a `ps` up to a second old: check it is still in this box's pid
    # namespace before signalling, so a recycled pid on the host is never hit.
    try:
        mine = os.stat(f"/proc/{process.pid}/ns/pid").st_ino
        theirs = os.stat(f"/proc/{box.pid}/ns/pid").st_ino
    except OSError:
        raise ServiceError(f"process {process.pid} is gone") from None
    if mine != theirs:
        raise ServiceError(f"process {process.pid} is no longer in box {box.name!r}")
    try:
        os.kill(process.pid, signal_number(sig))
    except ProcessLookupError:
        raise ServiceError(f"process {process.pid} is gone") from None
    except PermissionError:
        raise ServiceError(f"not allowed to signal process {process.pid}") from None


def signal_number(sig: str) -> int:
    """The runtime's one signal parser, its error as a ServiceError."""
    try:
        return parse_signal(sig)
    except TuiboxError as exc:
        raise ServiceError(exc.message) from None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_words(text: str) -> tuple[str, ...]:
    """Shell-like split for the command and env fields; raises ValueError on bad quotes."""
    return tuple(shlex.split(text))


def _opt_int(v: object) -> int | None:
    if v is None or v == "":
        return None
    if not isinstance(v, (int, float, str)):
        return None
    try:
        return int(v)
    except ValueError:
        return None


def _opt_float(v: object) -> float | None:
    if v is None or v == "":
        return None
    if not isinstance(v, (int, float, str)):
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _kill_quietly(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
