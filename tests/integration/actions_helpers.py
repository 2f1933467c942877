"""Shared by the actions, cgroups and hardening tests: detached boxes that are always destroyed,
and the check that no cgroup directory of theirs is left in any hierarchy."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique
from tuibox.runtime.cgroups.hierarchy import box_path, detect, join

SLEEP = ("sleep", "1000")


def cgroup_dirs(path: str) -> list[str]:
    """The box's directory in every hierarchy of this host (v1 ones and the cgroup2 mount)."""
    h = detect()
    mounts = sorted(set(h.v1.values())) + ([h.unified] if h.unified else [])
    return [join(m, path) for m in mounts]


def cgpath(tb: TB, name: str) -> str:
    """The default cgroup path of box `name` in the test's own state root."""
    try:
        # When default paths are tagged per state root (boxes of one name in two roots).
        return box_path(None, name, str(tb.root))  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return box_path(None, name)


def assert_no_cgroup(path: str) -> None:
    left = [d for d in cgroup_dirs(path) if os.path.exists(d)]
    assert not left, f"cgroup directories left behind: {left}"


def v1_file(controller: str, path: str, name: str) -> str:
    mount = detect().v1[controller]
    return Path(join(mount, path), name).read_text().strip()


def proc_state(pid: int) -> str:
    """The state letter of /proc/PID/stat ('' when gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return ""
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Boxes:
    """Detached boxes for one test; destroyed (and their cgroups checked gone) at the end."""

    def __init__(self, tb: TB, make_bundle: Callable[..., Path]) -> None:
        self.tb = tb
        self.make_bundle = make_bundle
        self.cgroups: dict[str, str] = {}

    def run(
        self,
        *flags: str,
        args: tuple[str, ...] = SLEEP,
        name: str | None = None,
        **bundle_fields: Any,
    ) -> str:
        name = name or unique("ab")
        # Registered before it exists: a failed run must be cleaned up and checked too.
        linux = bundle_fields.get("linux", {})
        self.cgroups[name] = linux.get("cgroupsPath") or cgpath(self.tb, name)
        bundle = self.make_bundle(list(args), **bundle_fields)
        self.tb("run", "-d", "--bundle", str(bundle), *flags, name)
        return name

    def info(self, name: str) -> dict[str, Any]:
        rows: list[dict[str, Any]] = json.loads(self.tb("list", "--format", "json").stdout)
        return next(r for r in rows if r["id"] == name)

    def pid(self, name: str) -> int:
        return int(self.tb.state(name)["pid"])

    def ps(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(self.tb("ps", "--format", "json", name).stdout)
        return out

    def cleanup(self) -> None:
        for name in self.cgroups:
            self.tb("destroy", "--force", name, check=False)
        for path in self.cgroups.values():
            assert_no_cgroup(path)


@pytest.fixture
def boxes(tb: TB, make_bundle: Callable[..., Path]) -> Iterator[Boxes]:
    b = Boxes(tb, make_bundle)
    try:
        yield b
    finally:
        b.cleanup()
