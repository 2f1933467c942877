"""An in-memory runtime with the service's Backend interface, for fast Pilot tests.

It follows the runtime's guard table and prints the runtime's kind of messages, so the UI's
greying and error display are exercised as they will be against the real CLI. Times are fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tuibox.runtime.errors import (
    BoxExists,
    BoxNotFound,
    InvalidState,
    NetworkError,
    SpecError,
    TuiboxError,
)
from tuibox.runtime.network.veth import host_name
from tuibox.runtime.state import check_name
from tuibox.runtime.units import parse_size
from tuibox.service import (
    GUARDS,
    BoxLink,
    BoxRow,
    CreateOptions,
    DebrisRow,
    GcResult,
    ImageRow,
    Limits,
    LogChunk,
    MountRow,
    NetworkMap,
    NetworkOptions,
    NetworkRow,
    ProcessRow,
    PullProgress,
    ServiceError,
    ServiceUnavailable,
    SpecSummary,
    StatsRow,
    TerminalCommand,
    allowed_states,
    limits_problem,
    network_problem,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
WANTED = {
    "start": "created or stopped",
    "pause": "running",
    "resume": "paused",
    "kill": "created, running or paused",
    "stop": "created, running or paused",
    "destroy": "stopped or created (or use --force)",
    "update": "created, running or paused",
}
SIGNAL_NUMBERS = {"HUP": 1, "INT": 2, "KILL": 9, "TERM": 15}


def fixed_clock() -> datetime:
    return NOW


class FakeBackend:
    root = "/run/tuibox-test"
    data_root = "/var/lib/tuibox-test"

    def __init__(self, boxes: Sequence[BoxRow] = (), unavailable: dict[str, str] | None = None):
        self.boxes: dict[str, BoxRow] = {b.name: b for b in boxes}
        self.unavailable = dict(unavailable or {})
        self.calls: list[tuple[str, ...]] = []
        self.fail: dict[str, str] = {}  # verb -> message to raise once
        self.logs: dict[str, bytes] = {}
        self.images_list = [
            ImageRow("busybox", 2_000_000, NOW, unique_size=2_000_000, source="busybox"),
            ImageRow(
                "alpine",
                8_000_000,
                NOW,
                layers=2,
                shared_size=3_000_000,
                unique_size=5_000_000,
                source="docker.io/library/alpine:latest",
                ports=("80/tcp",),
            ),
        ]
        # reference -> (name, layers, size) that a pull makes; anything else: not found
        self.registry: dict[str, tuple[str, int, int]] = {}
        self.pull_steps = 4
        self.pull_gate: asyncio.Event | None = None  # set by a test to hold a pull mid-way
        self.list_delay = 0.0
        self.stop_gate: asyncio.Event | None = None  # a stop waits for it (a slow stop)
        self.terminal_argv: tuple[str, ...] = ()  # a prefix for the pane's program (tests)
        self._next_pid = 4000
        self.debris_items: list[DebrisRow] = []
        # The networks a fresh root knows once `default` has been used, plus one made by
        # `network create`; a box with an address is on `default` (see network_map).
        self.networks_list: list[NetworkRow] = [
            NetworkRow("default", "tuibox0", "tuibox", "10.88.0.0/16", "10.88.0.1", True, True),
            NetworkRow("lab", "tb-lab", "tuibox", "10.214.0.0/24", "10.214.0.1", False, False),
        ]
        self.box_networks: dict[str, str] = {}  # box -> network name, when not `default`
        self.cpu_times: dict[int, float] = {}  # box pid -> CPU seconds, for `processes`

    # ---- helpers

    def _check(self, verb: str, *args: str) -> None:
        self.calls.append((verb, *args))
        if verb in self.unavailable:
            raise ServiceUnavailable(self.unavailable[verb], verb, "unsupported")
        if verb in self.fail:
            raise ServiceError(self.fail.pop(verb), verb)

    @staticmethod
    def _error(exc: TuiboxError, verb: str = "") -> ServiceError:
        # What the real service raises for a runtime error: its message, verb and kind.
        return ServiceError(exc.message, verb, exc.kind)

    def _get(self, name: str, verb: str = "") -> BoxRow:
        try:
            return self.boxes[name]
        except KeyError:
            raise self._error(BoxNotFound(name), verb) from None

    def _guard(self, verb: str, box: BoxRow) -> None:
        if box.status not in GUARDS[verb]:
            action = verb.removesuffix("-force")
            wanted = WANTED.get(action, ", ".join(sorted(allowed_states(action))))
            raise self._error(InvalidState(box.name, box.status, action, wanted), action)

    def _set(self, box: BoxRow, **changes: object) -> None:
        self.boxes[box.name] = replace(box, **changes)  # type: ignore[arg-type]

    # ---- Backend

    async def list_boxes(self) -> list[BoxRow]:
        self._check("list")
        if self.list_delay:
            await asyncio.sleep(self.list_delay)
        return list(self.boxes.values())

    async def stats(self) -> list[StatsRow]:
        self._check("stats")
        out = []
        for i, box in enumerate(sorted(self.boxes.values(), key=lambda b: b.name)):
            if box.status != "running":
                continue
            out.append(
                StatsRow(
                    id=box.name,
                    cpu_percent=1.5 + 10 * i,
                    memory_usage=(4 + i) * 1024 * 1024,
                    memory_limit=box.limits.memory,
                    pids=2,
                )
            )
        return out

    async def processes(self, name: str) -> list[ProcessRow]:
        self._check("ps", name)
        box = self._get(name, "ps")
        if box.status not in ("running", "paused"):
            return []
        p = box.pid
        started = NOW - timedelta(minutes=5)
        rows = [
            ProcessRow(p, 1, p - 1, "root", "S", 0.0, 1_200_000, started, " ".join(box.command)),
            ProcessRow(p + 1, 7, p, "root", "S", 2.0, 900_000, started, "sleep 1000", 1),
            ProcessRow(p + 2, 8, p, "nobody", "R", 12.5, 3_400_000, started, "httpd -f -p 80", 1),
            ProcessRow(p + 3, 9, p + 2, "nobody", "S", 0.5, 800_000, started, "httpd worker", 8),
        ]
        return [replace(r, cpu_time=self.cpu_times.get(r.box_pid, 0.0)) for r in rows]

    async def images(self) -> list[ImageRow]:
        self._check("image")
        return list(self.images_list)

    async def run(self, options: CreateOptions) -> None:
        self._check("run", *options.to_args())
        try:
            check_name(options.name)
        except TuiboxError as exc:
            raise self._error(exc, "run") from None
        if options.name in self.boxes:
            raise self._error(BoxExists(options.name), "run")
        memory = None
        if options.memory:
            # The runtime's own size parser, as the real backend's request builder uses it.
            try:
                memory = parse_size(options.memory, "memory")
            except TuiboxError as exc:
                raise self._error(exc, "run") from None
        if options.rootfs and not options.rootfs.startswith("/"):
            raise ServiceError(f"rootfs {options.rootfs}: not an absolute path")
        self._next_pid += 10
        self.boxes[options.name] = BoxRow(
            id=options.name,
            status="running",
            pid=self._next_pid,
            bundle=f"{self.root}/{options.name}",
            rootfs=options.rootfs or f"{self.data_root}/images/{options.image}/rootfs",
            image=None if options.rootfs else options.image,
            command=options.command,
            hostname=options.hostname or options.name,
            created=NOW,
            started=NOW,
            terminal=options.terminal,
            address="10.88.0.5" if options.network else None,
            ports=options.ports,
            log=f"/fake/{options.name}.log",
            namespaces=("pid", "mount", "uts", "ipc", *(("net",) if options.network else ())),
            limits=Limits(memory=memory if memory and memory > 0 else None),
        )

    async def create_from_bundle(self, name: str, bundle: str) -> None:
        self._check("create", name, bundle)
        if name in self.boxes:
            raise self._error(BoxExists(name), "create")
        self.boxes[name] = BoxRow(
            id=name,
            status="created",
            pid=self._next_pid,
            bundle=bundle,
            rootfs=f"{bundle}/rootfs",
            command=("/bin/sh",),
            created=NOW,
        )

    async def start(self, name: str) -> None:
        self._check("start", name)
        box = self._get(name, "start")
        self._guard("start", box)
        if box.status == "stopped":  # made again: a new init (as the runtime's recreate.py)
            self._next_pid += 10
            self._set(box, status="running", started=NOW, pid=self._next_pid, exit_status=None)
        else:
            self._set(box, status="running", started=NOW)

    async def restart(self, name: str, timeout: float | None = None) -> None:
        self._check("restart", name)
        await self.stop(name, timeout)
        await self.start(name)

    async def stop(self, name: str, timeout: float | None = None) -> None:
        self._check("stop", name)
        if self.stop_gate is not None:
            await self.stop_gate.wait()
        box = self._get(name, "stop")
        if box.status == "stopped":
            return  # as the runtime (and docker stop): already where it was asked to go
        self._guard("stop", box)
        self._set(box, status="stopped", pid=0, exit_status=143)

    async def kill(self, name: str, sig: str = "TERM") -> None:
        self._check("kill", name, sig)
        box = self._get(name, "kill")
        self._guard("kill", box)
        if sig in SIGNAL_NUMBERS:
            self._set(box, status="stopped", pid=0, exit_status=128 + SIGNAL_NUMBERS[sig])

    async def pause(self, name: str) -> None:
        self._check("pause", name)
        box = self._get(name, "pause")
        self._guard("pause", box)
        self._set(box, status="paused")

    async def resume(self, name: str) -> None:
        self._check("resume", name)
        box = self._get(name, "resume")
        self._guard("resume", box)
        self._set(box, status="running")

    async def destroy(self, name: str, force: bool = False) -> None:
        self._check("destroy", *(("--force",) if force else ()), name)
        box = self._get(name, "destroy")
        self._guard("destroy-force" if force else "destroy", box)
        del self.boxes[name]

    async def signal_process(self, box: BoxRow, process: ProcessRow, sig: str) -> None:
        self._check("signal", box.name, str(process.pid), sig)

    async def inspect(self, name: str) -> dict[str, Any]:
        self._check("inspect", name)
        box = self._get(name, "inspect")
        live = box.status in ("running", "paused")
        absent = {"absent": "the box is not running"}
        return {
            "id": box.name,
            "status": box.status,
            "pids": {"init": box.pid if live else None, "monitor": None},
            "env": ["PATH=/bin", "TOKEN=s3cret"],
            "namespaces": {"net": {"inode": 4026532178, "shared_with_host": False}}
            if live
            else absent,
            "network": {"address": box.address, "ports": list(box.ports), "bridge": "tuibox0"},
            "cgroup": {"path": f"/tuibox/{box.name}"},
            "exit": {"status": box.exit_status, "oom_killed": False},
        }

    async def spec(self, box: BoxRow) -> SpecSummary | None:
        return SpecSummary(
            args=box.command,
            cwd="/",
            user="0:0",
            env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"),
            root=box.rootfs,
            mounts=(
                MountRow("/proc", "proc", "proc"),
                MountRow("/dev", "tmpfs", "tmpfs"),
                MountRow("/etc/hosts", "bind", f"{self.root}/{box.name}/hosts"),
            ),
            namespaces=box.namespaces,
        )

    async def read_log(self, path: str, offset: int) -> LogChunk:
        name = path.rsplit("/", 1)[-1].removesuffix(".log")
        data = self.logs.get(name, b"")
        if offset > len(data):
            return LogChunk(data, len(data), reset=True)
        return LogChunk(data[offset:], len(data))

    def shell_command(self, name: str, shell: str = "/bin/sh") -> list[str]:
        return ["true", name, shell]

    def terminal_command(self, name: str, mode: str, shell: str = "/bin/sh") -> TerminalCommand:
        # A local shell stands in for the box's: a known prompt, no rc files, nothing of
        # the test runner's environment (so the screen text is the same everywhere).
        self.calls.append(("terminal", mode, name))
        self._get(name)
        prompt = "$ " if mode == "shell" else "console$ "
        env = {"PS1": prompt, "PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "ENV": ""}
        return TerminalCommand((*self.terminal_argv, shell), env)

    async def unavailable_verbs(self, verbs: Sequence[str]) -> dict[str, str]:
        return {v: self.unavailable[v] for v in verbs if v in self.unavailable}

    async def debris(self) -> list[DebrisRow]:
        self._check("gc")
        return list(self.debris_items)

    async def inspect_image(self, name: str) -> dict[str, Any]:
        self._check("image", "inspect", name)
        row = self._image(name)
        return {
            "name": row.name,
            "size": row.size,
            "source": row.source,
            "ports": list(row.ports),
            "config": {"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}},
        }

    def _image(self, name: str) -> ImageRow:
        row = next((i for i in self.images_list if i.name == name), None)
        if row is None:
            raise ServiceError(f"image {name!r} does not exist", "image", "image")
        return row

    async def remove_image(self, name: str, force: bool = False) -> None:
        self._check("image", "rm", name)
        self._image(name)
        users = sorted(b.name for b in self.boxes.values() if b.image == name)
        if users and not force:
            raise ServiceError(
                f"image {name!r} is in use by {', '.join(users)}: destroy them first, "
                "or use --force",
                "image",
                "image",
            )
        self.images_list = [i for i in self.images_list if i.name != name]

    async def pull(
        self,
        reference: str,
        tls_verify: bool = True,
        progress: Callable[[PullProgress], None] | None = None,
    ) -> str:
        self._check("pull", reference)
        if reference not in self.registry:
            raise ServiceError(
                f"image {reference} was not found in registry docker.io", "pull", "image"
            )
        name, layers, size = self.registry[reference]
        for i in range(1, self.pull_steps + 1):
            if progress is not None:
                progress(PullProgress("download", size * i // self.pull_steps, size))
            if self.pull_gate is not None and i == self.pull_steps // 2:
                await self.pull_gate.wait()
            await asyncio.sleep(0)
        self.images_list.append(
            ImageRow(name, size, NOW, layers=layers, unique_size=size, source=reference)
        )
        return name

    async def collect_debris(self) -> GcResult:
        self._check("gc", "--yes")
        found, self.debris_items = tuple(self.debris_items), []
        return GcResult(found, ())

    # ---- networks and limits

    def _on(self, box: BoxRow) -> NetworkRow | None:
        if box.address is None:
            return None
        name = self.box_networks.get(box.name, "default")
        return next((n for n in self.networks_list if n.name == name), None)

    async def networks(self) -> list[NetworkRow]:
        self._check("network", "ls")
        out = []
        for net in self.networks_list:
            boxes = tuple(sorted(b.name for b in self.boxes.values() if self._on(b) is net))
            out.append(replace(net, boxes=boxes))
        return out

    async def network_map(self) -> NetworkMap:
        networks = await self.networks()
        links = []
        for box in self.boxes.values():
            net = self._on(box)
            if net is None:
                continue
            prefix = (net.subnet or "/24").rpartition("/")[2]
            links.append(
                BoxLink(
                    box=box.name,
                    status=box.status,
                    network=net.name,
                    bridge=net.bridge,
                    veth="" if box.status == "stopped" else host_name(self.root, box.name, 0),
                    box_ifname="eth0",
                    address=f"{box.address}/{prefix}",
                    ports=tuple(p if "/" in p else f"{p}/tcp" for p in box.ports),
                    veth_present=None if box.status == "stopped" else True,
                )
            )
        links.sort(key=lambda x: (x.bridge or "", x.box))
        return NetworkMap(tuple(networks), tuple(links))

    async def create_network(self, options: NetworkOptions) -> None:
        self._check("network", *options.to_args()[1:])
        problem = network_problem(options)
        if problem is not None:
            raise ServiceError(problem[1], "network", "usage")
        if any(n.name == options.name for n in self.networks_list):
            raise self._error(SpecError(f"network {options.name!r} already exists"), "network")
        bridge = options.bridge or f"tb-{options.name}"[:15]
        net = NetworkRow(options.name, bridge, "tuibox", options.subnet, None, options.nat)
        gateway = options.gateway or options.subnet.rpartition(".")[0] + ".1"
        self.networks_list.append(replace(net, gateway=gateway))

    async def remove_network(self, name: str) -> None:
        self._check("network", "rm", name)
        found = next((n for n in self.networks_list if n.name == name), None)
        if found is None:
            msg = f"network {name!r} does not exist (see 'tuibox network ls')"
            raise self._error(NetworkError(msg), "network")
        users = sorted(b.name for b in self.boxes.values() if self._on(b) is found)
        if users:
            msg = f"network {name!r} still has boxes: {', '.join(users)} (destroy them first)"
            raise self._error(NetworkError(msg), "network")
        self.networks_list.remove(found)

    async def update_limits(self, name: str, changes: dict[str, str]) -> None:
        self._check("update", name, *(f"{k}={v}" for k, v in changes.items()))
        problem = limits_problem(changes)
        if problem is not None:
            raise ServiceError(problem[1], "update", "usage")
        box = self._get(name, "update")
        self._guard("update", box)
        limits = box.limits
        if "memory" in changes:
            memory = parse_size(changes["memory"], "memory")
            limits = replace(limits, memory=memory if memory > 0 else None)
        if "cpus" in changes:
            limits = replace(limits, cpus=round(float(changes["cpus"]), 3))
        if "pids" in changes:
            pids = int(changes["pids"])
            limits = replace(limits, pids=pids if pids > 0 else None)
        self._set(box, limits=limits)


def many_boxes(n: int) -> list[BoxRow]:
    """`n` running boxes, every third on `lab`'s subnet (the bench and the map's tests)."""
    out = []
    for i in range(n):
        out.append(
            BoxRow(
                id=f"n{i:02d}",
                status="running",
                pid=5000 + i,
                image="busybox",
                command=("sleep", "1000"),
                created=NOW,
                started=NOW,
                address=f"10.88.{i // 200}.{i % 200 + 2}",
                ports=(f"{8000 + i}:80",) if i % 5 == 0 else (),
                log=f"/fake/n{i:02d}.log",
            )
        )
    return out


def sample_boxes() -> list[BoxRow]:
    """Four boxes, one per state, with fixed times (deterministic snapshots)."""
    ago = NOW - timedelta(hours=1, minutes=2, seconds=3)
    common = dict(created=ago, namespaces=("pid", "mount", "uts", "ipc", "net"))
    return [
        BoxRow(
            id="web",
            status="running",
            pid=4242,
            bundle="/run/tuibox-test/web",
            rootfs="/var/lib/tuibox-test/images/busybox/rootfs",
            image="busybox",
            command=("httpd", "-f", "-p", "80"),
            hostname="web",
            started=ago,
            address="10.88.0.2",
            ports=("8080:80",),
            log="/fake/web.log",
            cgroup="/sys/fs/cgroup/tuibox/web",
            limits=Limits(memory=256 * 1024 * 1024, cpus=0.5, pids=100),
            terminal=False,
            **common,
        ),  # type: ignore[arg-type]
        BoxRow(
            id="db",
            status="paused",
            pid=4300,
            bundle="/run/tuibox-test/db",
            rootfs="/var/lib/tuibox-test/images/busybox/rootfs",
            image="busybox",
            command=("sleep", "1000"),
            hostname="db",
            started=ago,
            log="/fake/db.log",
            terminal=True,
            **common,
        ),  # type: ignore[arg-type]
        BoxRow(
            id="batch",
            status="created",
            pid=4400,
            bundle="/srv/bundles/batch",
            rootfs="/srv/bundles/batch/rootfs",
            command=("/bin/sh", "-c", "make all"),
            hostname="batch",
            log="/fake/batch.log",
            **common,
        ),  # type: ignore[arg-type]
        BoxRow(
            id="old",
            status="stopped",
            pid=0,
            bundle="/run/tuibox-test/old",
            rootfs="/var/lib/tuibox-test/images/busybox/rootfs",
            image="busybox",
            command=("false",),
            hostname="old",
            exit_status=1,
            log="/fake/old.log",
            **common,
        ),  # type: ignore[arg-type]
    ]
