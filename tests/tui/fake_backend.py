"""An in-memory runtime with the service's Backend interface, for fast Pilot tests.

It follows the runtime's guard table and prints the runtime's kind of messages, so the UI's
greying and error display are exercised as they will be against the real CLI. Times are fixed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tuibox.runtime.errors import BoxExists, BoxNotFound, InvalidState, TuiboxError
from tuibox.runtime.state import check_name
from tuibox.runtime.units import parse_size
from tuibox.service import (
    GUARDS,
    BoxRow,
    CreateOptions,
    DebrisRow,
    GcResult,
    ImageRow,
    Limits,
    LogChunk,
    MountRow,
    ProcessRow,
    ServiceError,
    ServiceUnavailable,
    SpecSummary,
    StatsRow,
    TerminalCommand,
    allowed_states,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
WANTED = {
    "start": "created or stopped",
    "pause": "running",
    "resume": "paused",
    "kill": "created, running or paused",
    "stop": "created, running or paused",
    "destroy": "stopped or created (or use --force)",
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
        self.images_list = [ImageRow("busybox", 2_000_000, NOW), ImageRow("alpine", 8_000_000, NOW)]
        self.list_delay = 0.0
        self.stop_gate: asyncio.Event | None = None  # a stop waits for it (a slow stop)
        self.terminal_argv: tuple[str, ...] = ()  # a prefix for the pane's program (tests)
        self._next_pid = 4000
        self.debris_items: list[DebrisRow] = []
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

    async def collect_debris(self) -> GcResult:
        self._check("gc", "--yes")
        found, self.debris_items = tuple(self.debris_items), []
        return GcResult(found, ())


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
