"""Mount targets as descriptors (linux/paths.py): resolved inside the root with openat2, and
with the safe walk on kernels without it; created where missing, checked for their type."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuibox.runtime.linux import paths


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "walk":
        # what a kernel before 5.6 gives: ENOSYS, once, then the walk every time
        def missing(*_args: object, **_kw: object) -> int:
            raise OSError(errno.ENOSYS, "openat2")

        monkeypatch.setattr(paths.sc, "openat2", missing)
        monkeypatch.setattr(paths, "_openat2_missing", False)
    yield request.param


def _where(fd: int) -> str:
    try:
        return os.readlink(paths.fd_path(fd))
    finally:
        os.close(fd)


def test_symlinks_resolve_inside_the_root(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "abs").symlink_to(outside)
    (root / "rel").symlink_to("../../../../../../" + str(outside))
    (root / "up").symlink_to("/etc/../..")
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for link in ("abs", "rel"):
            fd = paths.ensure_at(rfd, str(root), f"/{link}/sub", True)
            assert _where(fd) == f"{root}{outside}/sub"
        assert _where(paths.open_in_root(rfd, str(root), "/up")) == str(root)
        assert _where(paths.open_in_root(rfd, str(root), "/../../..")) == str(root)
        assert os.listdir(outside) == []
    finally:
        os.close(rfd)


def test_files_are_made_and_types_checked(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "dangling").symlink_to("run/resolv.conf")
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.ensure_at(rfd, str(root), "/dangling", False)
        assert _where(fd) == f"{root}/run/resolv.conf"
        assert (root / "run/resolv.conf").is_file()
        with pytest.raises(OSError) as e:
            paths.ensure_at(rfd, str(root), "/run/resolv.conf", True)
        assert e.value.errno == errno.ENOTDIR
        with pytest.raises(OSError) as e:
            paths.ensure_at(rfd, str(root), "/run", False)
        assert e.value.errno == errno.EISDIR
    finally:
        os.close(rfd)


def test_magic_links_are_refused(tmp_path: Path) -> None:
    # /proc/self/fd/N inside a root that holds a real /proc: openat2 will not follow it.
    rfd = os.open("/", os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            paths.open_in_root(rfd, "/", f"/proc/self/fd/{rfd}")
        assert e.value.errno == errno.ELOOP
    finally:
        os.close(rfd)


def test_a_root_reached_through_a_symlink(tmp_path: Path, mode: str) -> None:
    (tmp_path / "real/etc").mkdir(parents=True)
    (tmp_path / "alias").symlink_to("real")
    root = str(tmp_path / "alias")
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _where(paths.open_in_root(rfd, root, "/etc")) == f"{tmp_path}/real/etc"
    finally:
        os.close(rfd)
