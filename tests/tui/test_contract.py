"""One scenario suite, run against the TUI tests' fake backend and the real runtime.

The fake (fake_backend.py) stands in for the runtime in every Pilot test, so where it and
the runtime disagree the UI tests prove nothing. Each scenario here drives a Backend through
the service's interface and checks statuses, exit statuses and errors (type, message, kind);
the real side is the app's own default (InProcessBackend: queries in-process, mutations
through the CLI) on a private --root, as root.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_backend import FakeBackend

from tuibox.service import (
    Backend,
    BoxRow,
    CreateOptions,
    InProcessBackend,
    ServiceError,
    ServiceUnavailable,
)

# A program that ends with 143 on SIGTERM, as a real service would (a pid 1 without a handler
# ignores SIGTERM, which would turn every stop into a SIGKILL after the timeout).
PROGRAM = ("/bin/sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.1; done")


class Side:
    """A backend plus what differs in driving it: where a bundle or a rootfs comes from, and
    that the real runtime takes a moment to see a signalled init gone."""

    def __init__(self, backend: Backend, bundle: Callable[[], str], rootfs: str) -> None:
        self.b = backend
        self._bundle = bundle
        self.rootfs = rootfs

    async def create(self, name: str) -> None:
        await self.b.create_from_bundle(name, self._bundle())

    async def run(self, name: str) -> None:
        opts = CreateOptions(name, image=None, rootfs=self.rootfs, command=PROGRAM, terminal=False)
        await self.b.run(opts)

    async def box(self, name: str) -> BoxRow | None:
        return next((b for b in await self.b.list_boxes() if b.name == name), None)

    async def status(self, name: str, wanted: str | None = None, timeout: float = 10.0) -> str:
        """The box's status; with `wanted`, the first poll that shows it (or the last seen)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            box = await self.box(name)
            status = box.status if box else "gone"
            if wanted is None or status == wanted or loop.time() > end:
                return status
            await asyncio.sleep(0.05)

    async def exit_status(self, name: str, timeout: float = 10.0) -> int | None:
        """The exit status of a box that stopped. The real status comes from kernel facts
        (the init is gone) while the monitor writes the status after it reaps the init, so a
        poll in between sees "stopped" with no exit status yet: wait for both."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            box = await self.box(name)
            assert box is not None
            if (box.status == "stopped" and box.exit_status is not None) or loop.time() > end:
                assert box.status == "stopped", box
                return box.exit_status
            await asyncio.sleep(0.05)

    async def ready(self, name: str, timeout: float = 10.0) -> None:
        """Until the program runs its loop (its trap is set): a signal sent before that finds
        a pid 1 with no handler, which the kernel protects from it, on any runtime."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not any("sleep" in p.command for p in await self.b.processes(name)):
            assert loop.time() < end, f"{name}: the program never started its loop"
            await asyncio.sleep(0.05)

    async def error(self, call: Any) -> ServiceError:
        try:
            await call
        except ServiceError as exc:
            return exc
        raise AssertionError("no error")


@pytest.fixture(
    params=["fake", pytest.param("real", marks=pytest.mark.root)],
)
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Side:
    if request.param == "fake":
        return Side(FakeBackend(), lambda: str(tmp_path / "bundle"), "/srv/rootfs")
    tb = request.getfixturevalue("tb")  # destroys what is left; checks for leaked mounts
    make_bundle = request.getfixturevalue("make_bundle")
    rootfs = request.getfixturevalue("busybox_rootfs")
    backend = InProcessBackend(str(tb.root), str(tb.data_root))
    return Side(backend, lambda: str(make_bundle(list(PROGRAM))), str(rootfs))


def new_name() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def check_error(err: ServiceError, kind: str, message: str) -> None:
    assert type(err) is ServiceError, err
    assert (err.kind, err.message) == (kind, message)


async def test_create_start_stop_destroy(side: Side) -> None:
    name = new_name()
    await side.create(name)
    assert await side.status(name) == "created"
    await side.b.start(name)
    assert await side.status(name) == "running"
    await side.ready(name)
    await side.b.stop(name, timeout=5)
    assert await side.exit_status(name) == 143
    # Stopping a stopped box is not an error (docker and podman agree): it is where it was asked
    # to go, and nothing changes.
    await side.b.stop(name)
    box = await side.box(name)
    assert box is not None and (box.status, box.exit_status) == ("stopped", 143), box
    await side.b.destroy(name)
    assert await side.status(name) == "gone"


async def test_start_twice_and_create_twice(side: Side) -> None:
    name = new_name()
    await side.create(name)
    check_error(
        await side.error(side.create(name)), "exists", f"box name {name!r} is already in use"
    )
    await side.b.start(name)
    check_error(
        await side.error(side.b.start(name)),
        "invalid-state",
        f"cannot start box {name!r}: it is running, it must be created or stopped",
    )
    await side.b.destroy(name, force=True)
    assert await side.status(name) == "gone"


async def test_start_of_a_stopped_box_and_restart(side: Side) -> None:
    # docker's and podman's: a stopped box starts again (a new init, the same box).
    name = new_name()
    await side.run(name)
    await side.ready(name)
    first = await side.box(name)
    await side.b.stop(name, timeout=5)
    assert await side.exit_status(name) == 143
    await side.b.start(name)
    assert await side.status(name) == "running"
    again = await side.box(name)
    assert first is not None and again is not None
    assert again.pid not in (0, first.pid) and again.exit_status is None, again
    await side.ready(name)
    await side.b.restart(name, timeout=5)
    third = await side.box(name)
    assert third is not None and third.status == "running", third
    assert third.pid not in (0, again.pid), third
    await side.b.destroy(name, force=True)
    assert await side.status(name) == "gone"


async def test_kill(side: Side) -> None:
    name = new_name()
    await side.run(name)
    assert await side.status(name) == "running"
    await side.ready(name)
    await side.b.kill(name, "KILL")
    assert await side.exit_status(name) == 137
    check_error(
        await side.error(side.b.kill(name, "KILL")),
        "invalid-state",
        f"cannot kill box {name!r}: it is stopped, it must be created, running or paused",
    )
    await side.b.destroy(name)
    assert await side.status(name) == "gone"


async def test_pause_and_resume(side: Side) -> None:
    name = new_name()
    await side.run(name)
    await side.b.pause(name)
    assert await side.status(name) == "paused"
    check_error(
        await side.error(side.b.pause(name)),
        "invalid-state",
        f"cannot pause box {name!r}: it is paused, it must be running",
    )
    await side.b.resume(name)
    assert await side.status(name) == "running"
    check_error(
        await side.error(side.b.resume(name)),
        "invalid-state",
        f"cannot resume box {name!r}: it is running, it must be paused",
    )
    await side.b.destroy(name, force=True)
    assert await side.status(name) == "gone"


async def test_destroy_of_a_running_box_needs_force(side: Side) -> None:
    name = new_name()
    await side.run(name)
    check_error(
        await side.error(side.b.destroy(name)),
        "invalid-state",
        f"cannot destroy box {name!r}: it is running, it must be stopped or created "
        "(or use --force)",
    )
    assert await side.status(name) == "running"  # refused means untouched
    await side.b.destroy(name, force=True)
    assert await side.status(name) == "gone"


@pytest.mark.parametrize(
    "verb",
    ["start", "stop", "kill", "pause", "resume", "destroy", "destroy-force", "processes"],
)
async def test_unknown_boxes(side: Side, verb: str) -> None:
    name = new_name()
    call = {
        "start": lambda: side.b.start(name),
        "stop": lambda: side.b.stop(name),
        "kill": lambda: side.b.kill(name, "TERM"),
        "pause": lambda: side.b.pause(name),
        "resume": lambda: side.b.resume(name),
        "destroy": lambda: side.b.destroy(name),
        "destroy-force": lambda: side.b.destroy(name, force=True),
        "processes": lambda: side.b.processes(name),
    }[verb]
    err = await side.error(call())
    assert not isinstance(err, ServiceUnavailable)
    check_error(err, "not-found", f"box {name!r} does not exist")


async def test_networks_create_list_remove(side: Side) -> None:
    from tuibox.service import NetworkOptions

    name = f"n{uuid.uuid4().hex[:6]}"
    subnet = f"10.{200 + uuid.uuid4().int % 50}.{uuid.uuid4().int % 250}.0/24"
    await side.b.create_network(NetworkOptions(name, subnet, nat=False))
    row = next(n for n in await side.b.networks() if n.name == name)
    gateway = subnet.rpartition(".")[0] + ".1"
    assert (row.bridge, row.subnet, row.gateway, row.nat, row.boxes) == (
        f"tb-{name}",
        subnet,
        gateway,
        False,
        (),
    )
    check_error(
        await side.error(side.b.create_network(NetworkOptions(name, subnet))),
        "spec",
        f"network {name!r} already exists",
    )
    check_error(
        await side.error(side.b.create_network(NetworkOptions(name + "x", "10.1.0.0/33"))),
        "usage",
        "subnet: invalid CIDR '10.1.0.0/33'",
    )
    await side.b.remove_network(name)
    assert name not in {n.name for n in await side.b.networks()}
    check_error(
        await side.error(side.b.remove_network(name)),
        "network",
        f"network {name!r} does not exist (see 'tuibox network ls')",
    )


async def test_update_limits(side: Side) -> None:
    from tuibox.service import Limits

    name = new_name()
    await side.run(name)
    await side.b.update_limits(name, {"memory": "64m", "cpus": "0.5", "pids": "50"})
    box = await side.box(name)
    assert box is not None and box.limits == Limits(64 << 20, 0.5, 50), box
    await side.b.update_limits(name, {"memory": "-1", "pids": "-1"})
    box = await side.box(name)
    assert box is not None and box.limits == Limits(None, 0.5, None), box
    check_error(
        await side.error(side.b.update_limits(name, {"memory": "abc"})),
        "usage",
        "memory 'abc': not a size (a number with b, k, m, g or t)",
    )
    await side.b.kill(name, "KILL")
    assert await side.exit_status(name) == 137
    check_error(
        await side.error(side.b.update_limits(name, {"pids": "10"})),
        "invalid-state",
        f"cannot update box {name!r}: it is stopped, it must be created, running or paused",
    )
    await side.b.destroy(name)
    check_error(
        await side.error(side.b.update_limits(name, {"pids": "10"})),
        "not-found",
        f"box {name!r} does not exist",
    )


async def test_images_unknown_and_in_use(side: Side) -> None:
    missing = f"img-{uuid.uuid4().hex[:6]}"
    for call in (lambda: side.b.inspect_image(missing), lambda: side.b.remove_image(missing)):
        check_error(await side.error(call()), "image", f"image {missing!r} does not exist")
    name = new_name()
    opts = CreateOptions(name, image="busybox", rootfs=None, command=PROGRAM, terminal=False)
    await side.b.run(opts)
    await side.ready(name)
    assert "busybox" in [i.name for i in await side.b.images()]
    check_error(
        await side.error(side.b.remove_image("busybox")),
        "image",
        f"image 'busybox' is in use by {name}: destroy them first, or use --force",
    )
    await side.b.destroy(name, force=True)
    await side.b.remove_image("busybox")
    assert "busybox" not in [i.name for i in await side.b.images()]
