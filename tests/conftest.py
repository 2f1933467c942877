"""Shared fixtures: a busybox rootfs, a private state root per test, and the CLI as a user runs it.

Every test gets its own --root under tmp_path; the `tb` fixture destroys whatever boxes are
left there when the test ends, pass or fail, and then checks that nothing leaked onto the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Root tests need the real kernel; a skipped one must say so loudly, never pass silently.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("TUIBOX_TEST_ROOTFS"):
        # a prepared rootfs, e.g. to run the suite against another image; treated read-only
        return Path(os.environ["TUIBOX_TEST_ROOTFS"])
    from tuibox.runtime.images.busybox import build_busybox_rootfs

    dest = tmp_path_factory.mktemp("busybox") / "rootfs"
    build_busybox_rootfs(dest)
    return dest


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mountinfo() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


class TB:
    """Runs `python -m tuibox --root ROOT ...` and remembers the root for clean-up."""

    def __init__(self, root: Path, data_root: Path) -> None:
        self.root = root
        self.data_root = data_root

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tuibox",
            "--root",
            str(self.root),
            "--data-root",
            str(self.data_root),
            *args,
        ]

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60,
        cwd: Path | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"tuibox {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def fails(self, *args: str, code: int | None = None, cwd: Path | None = None) -> str:
        """Run a command that must fail cleanly: non-zero, one error line, no traceback."""
        proc = self(*args, check=False, cwd=cwd)
        assert proc.returncode != 0, f"tuibox {' '.join(args)} unexpectedly succeeded"
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tuibox: error:")]
        assert len(errors) == 1, proc.stderr
        return errors[0]

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def layer(self, name: str) -> Path:
        """An image box's writable layer (upper, work) under the data root."""
        from tuibox.runtime.cgroups.hierarchy import default_leaf

        return self.data_root / "boxes" / default_leaf(name, str(self.root)).rpartition("/")[2]

    def state(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self("state", name).stdout)
        return out

    def cleanup(self) -> None:
        for name in self.names():
            self("destroy", "--force", name, check=False)
        if self._debris_cgroups():
            # a test that failed after deleting a box dir (debris tests do) leaves its cgroup
            self("gc", "--yes", check=False)

    def _debris_cgroups(self) -> list[str]:
        """This root's box cgroups (their names carry its tag), looked up without a CLI call."""
        from tuibox.runtime.cgroups.hierarchy import default_leaf

        tag = default_leaf("", str(self.root)).rpartition("/")[2]
        for parent in ("/sys/fs/cgroup/pids/tuibox", "/sys/fs/cgroup/tuibox"):  # v1, pure v2
            if os.path.isdir(parent):
                return [n for n in os.listdir(parent) if n.startswith(tag)]
        return []


@contextlib.contextmanager
def tb_at(state: Path, data: Path, watch: Path) -> Iterator[TB]:
    """A TB on these roots that destroys what is left when the block ends, pass or fail, then
    checks that no box and no mount under `watch` stayed behind."""
    before = mountinfo()
    t = TB(state, data)
    try:
        yield t
    finally:
        t.cleanup()
        left = t.names()
        assert not left, f"boxes left behind: {left}"
        after = mountinfo()
        leaked = [ln for ln in after.splitlines() if ln not in before and str(watch) in ln]
        assert not leaked, f"mounts left behind: {leaked}"


@pytest.fixture
def tb(tmp_path: Path) -> Iterator[TB]:
    with tb_at(tmp_path / "state", tmp_path / "data", tmp_path) as t:
        yield t


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> Callable[..., Path]:
    """Write a bundle whose config.json is box-style, with fields overridden as given."""

    def make(args: list[str] | None = None, name: str | None = None, **fields: Any) -> Path:
        bundle = tmp_path / (name or unique("bundle"))
        bundle.mkdir()
        config: dict[str, Any] = {
            "ociVersion": "1.0.2",
            "root": {"path": str(busybox_rootfs)},
            "process": {
                "args": args or ["/bin/sh", "-c", "true"],
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
            },
        }
        for key, value in fields.items():
            if key == "process":
                config["process"].update(value)
            elif key == "linux" and "namespaces" not in value:
                # A `linux` section without namespaces inherits them (runtime-spec): these
                # tests mean box's own isolation, so they say so.
                ns = ("pid", "network", "ipc", "uts", "mount")
                config["linux"] = {"namespaces": [{"type": t} for t in ns], **value}
            else:
                config[key] = value
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    return make
