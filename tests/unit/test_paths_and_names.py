from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuibox.runtime.errors import InvalidName
from tuibox.runtime.linux.paths import resolve_in_root
from tuibox.runtime.state import check_name


def test_plain_and_dotdot_paths_stay_in_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert resolve_in_root(root, "/etc/hosts") == f"{root}/etc/hosts"
    assert resolve_in_root(root, "/../../etc/hosts") == f"{root}/etc/hosts"
    assert resolve_in_root(root, "a/./b/../c") == f"{root}/a/c"


def test_absolute_symlink_is_resolved_inside_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.symlink("/etc", tmp_path / "link")
    os.symlink("../../../../etc", tmp_path / "etc" / "up")
    assert resolve_in_root(str(tmp_path), "/link/passwd") == f"{tmp_path}/etc/passwd"
    assert resolve_in_root(str(tmp_path), "/etc/up/x") == f"{tmp_path}/etc/x"


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError, match="too many levels"):
        resolve_in_root(str(tmp_path), "/a/x")


@pytest.mark.parametrize("good", ["a", "box-1", "A.b_c", "9" * 64])
def test_good_names(good: str) -> None:
    assert check_name(good) == good


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "-x", "x" * 65, "sp ace", "é"])
def test_bad_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        check_name(bad)
