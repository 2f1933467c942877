"""User namespaces without the kernel: mapping validation and --userns auto's id ranges."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime import userns
from tuibox.runtime.errors import SpecError, TuiboxError
from tuibox.runtime.spec import parse_spec
from tuibox.runtime.spec_model import IdMapping, Namespace

ROOT_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def config(
    namespaces: list[dict[str, Any]] | None = None,
    uid: list[dict[str, Any]] | None = None,
    gid: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    linux: dict[str, Any] = {
        "namespaces": namespaces if namespaces is not None else [{"type": "user"}]
    }
    if uid is not None:
        linux["uidMappings"] = uid
    if gid is not None:
        linux["gidMappings"] = gid
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/sh"]},
        "linux": linux,
    }


def error(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "/bundle")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_mappings_with_a_new_user_namespace_are_kept() -> None:
    two = [
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 300000, "size": 64536},
    ]
    spec = parse_spec(config(uid=two, gid=ROOT_MAP), "/b")
    assert spec.namespace("user") == Namespace("user")
    assert spec.linux.uid_mappings == (IdMapping(0, 100000, 1000), IdMapping(1000, 300000, 64536))
    assert spec.linux.gid_mappings == (IdMapping(0, 100000, 65536),)
    assert spec.unsupported == ()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            config(namespaces=[{"type": "pid"}], uid=ROOT_MAP, gid=ROOT_MAP),
            "config.json: linux.uidMappings: needs a user namespace",
        ),
        (
            config(namespaces=[], gid=ROOT_MAP),
            "config.json: linux.gidMappings: needs a user namespace",
        ),
        (config(), "config.json: linux.uidMappings: a new user namespace needs uid and gid"),
        (
            config(uid=ROOT_MAP),
            "config.json: linux.gidMappings: a new user namespace needs uid and gid",
        ),
        (
            config(
                namespaces=[{"type": "user", "path": "/proc/1/ns/user"}], uid=ROOT_MAP, gid=ROOT_MAP
            ),
            "config.json: linux.uidMappings: a joined user namespace (with a path)",
        ),
        (
            config(
                uid=[*ROOT_MAP, {"containerID": 100, "hostID": 500000, "size": 10}], gid=ROOT_MAP
            ),
            "config.json: linux.uidMappings[1]: its containerID range overlaps",
        ),
        (
            config(
                uid=[*ROOT_MAP, {"containerID": 70000, "hostID": 165535, "size": 1}], gid=ROOT_MAP
            ),
            "config.json: linux.uidMappings[1]: its hostID range overlaps linux.uidMappings[0]",
        ),
        (
            config(uid=[{"containerID": 0, "hostID": 1, "size": 0}], gid=ROOT_MAP),
            "config.json: linux.uidMappings[0].size: must be at least 1",
        ),
        (
            config(uid=ROOT_MAP, gid=[{"containerID": 0, "hostID": 2**32 - 10, "size": 11}]),
            "config.json: linux.gidMappings[0]: hostID 4294967286 + size 11 goes past 32-bit ids",
        ),
        (
            config(uid=[{"containerID": 2**32, "hostID": 0, "size": 1}], gid=ROOT_MAP),
            "config.json: linux.uidMappings[0].containerID: must be at most 4294967295",
        ),
        (
            config(uid=[{"containerID": "0", "hostID": 0, "size": 1}], gid=ROOT_MAP),
            "config.json: linux.uidMappings[0].containerID: must be a non-negative integer",
        ),
        (
            config(uid=[{"containerID": 0, "size": 1}], gid=ROOT_MAP),
            "config.json: linux.uidMappings[0].hostID: is required",
        ),
        (
            config(uid={"containerID": 0}, gid=ROOT_MAP),
            "config.json: linux.uidMappings: must be a list",
        ),
        (
            config(
                uid=[{"containerID": i, "hostID": i, "size": 1} for i in range(341)], gid=ROOT_MAP
            ),
            "config.json: linux.uidMappings: at most 340 ranges",
        ),
    ],
)
def test_bad_mappings_are_one_line_naming_the_field(data: dict[str, Any], expected: str) -> None:
    assert error(data).startswith(expected)


def test_subordinate_ids_of_root_become_whole_blocks() -> None:
    text = "alice:100000:65536\nroot:200000:200000\n0:600000:65536\nroot:bad:1\nroot:5:10\n"
    assert userns.subordinate_blocks(text) == [200000, 265536, 331072, 600000]
    # Overlapping lines do not give overlapping blocks.
    assert userns.subordinate_blocks("root:100000:131072\nroot:150000:65536\n") == [
        100000,
        165536,
    ]


def test_without_subordinate_ids_the_fixed_range_is_used() -> None:
    uids, gids = userns.pools(None, "root:100000:65536\n")
    assert uids[0] == gids[0] == 2**31
    assert len(uids) == userns.FALLBACK_BLOCKS
    assert uids[-1] + userns.BLOCK <= 2**32 - 1
    assert userns.pools("root:100000:65536\n", "root:300000:65536\n") == ([100000], [300000])


def test_pick_skips_taken_ranges_and_says_when_all_are_used() -> None:
    uids, gids = [10, 20, 30], [110, 120, 130]
    assert userns.pick(uids, gids, []) == (10, 110)
    assert userns.pick(uids, gids, [(10, 110), (30, 130)]) == (20, 120)
    with pytest.raises(TuiboxError, match="all 3 id ranges are in use"):
        userns.pick(uids, gids, [(10, 110), (20, 120), (30, 130)])


def test_leases_do_not_overlap_are_private_and_reclaimed(tmp_path: Path) -> None:
    root = str(tmp_path)
    for name in ("a", "b", "c"):
        os.mkdir(tmp_path / name)
    a, b = userns.lease(root, "a"), userns.lease(root, "b")
    assert a != b and abs(a[0] - b[0]) >= userns.BLOCK and abs(a[1] - b[1]) >= userns.BLOCK
    lease_file = tmp_path / userns.LEASE_DIR / "a.lease"
    assert lease_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / userns.LEASE_DIR).stat().st_mode & 0o777 == 0o700
    # A box whose dir is gone (a crash) gives its range back to the next box.
    os.rmdir(tmp_path / "a")
    assert userns.lease(root, "c") == a
    assert not lease_file.exists()
    userns.release(root, "b")
    userns.release(root, "b")  # twice is fine
    assert sorted(p.name for p in (tmp_path / userns.LEASE_DIR).iterdir()) == [".lock", "c.lease"]
