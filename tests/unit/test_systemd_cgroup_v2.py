"""`--systemd-cgroup` on a pure cgroup2 host (docs/OCI_CLI.md): runc's systemd driver puts
"slice:prefix:name" at /<slices...>/<prefix>-<name>.scope under the cgroup2 root; tuibox
makes that path with cgroupfs itself (no D-Bus), enabling the box's controllers in each
slice on the way down, and removes the slices it made. A fake cgroup2 tree on tmp_path
(cgroup.controllers, cgroup.subtree_control and the control files mkdir brings), since this
machine's cgroups are hybrid: unverified on a real pure-v2 host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_cgroup_logic import _v2_root, fake_kernel  # noqa: F401 - the fixture
from tuibox.cli.lifecycle import systemd_path
from tuibox.runtime.cgroups.group import BoxCgroup
from tuibox.runtime.cgroups.hierarchy import Hierarchies

CONTROLLERS = frozenset({"cpu", "io", "memory", "pids"})


@pytest.mark.usefixtures("fake_kernel")
@pytest.mark.parametrize(
    ("cgroups_path", "slices", "leaf"),
    [
        ("machine.slice:libpod:abc", ["machine.slice"], "libpod-abc.scope"),
        ("a-b.slice:crio:n", ["a.slice", "a.slice/a-b.slice"], "crio-n.scope"),
        (":docker:x", ["system.slice"], "docker-x.scope"),
    ],
)
def test_v2_scope_under_its_slices(
    tmp_path: Path, cgroups_path: str, slices: list[str], leaf: str
) -> None:
    root = _v2_root(tmp_path)
    h = Hierarchies({}, str(root), CONTROLLERS)
    path = systemd_path(cgroups_path)
    assert path == "/" + "/".join([slices[-1], leaf])
    cg = BoxCgroup.create(h, path)
    assert cg.v1 == {} and cg.unified == f"{root}/{slices[-1]}/{leaf}"
    assert cg.made == [f"{root}/{s}" for s in slices] + [cg.unified]
    want = "+cpu +io +memory +pids"
    for parent in [root, *(root / s for s in slices)]:
        # each slice offers the controllers to the next level before it exists
        assert (parent / "cgroup.subtree_control").read_text() == want, parent
    assert (root / slices[-1] / leaf / "cgroup.subtree_control").read_text() == ""
    cg.destroy(timeout=1.0)
    assert not (root / slices[0]).exists()  # the slices it made go with the box


@pytest.mark.usefixtures("fake_kernel")
def test_v2_an_existing_slice_is_kept(tmp_path: Path) -> None:
    root = _v2_root(tmp_path)
    (root / "machine.slice").mkdir()  # systemd's own, with another container in it
    (root / "machine.slice" / "cgroup.subtree_control").write_text("memory")
    (root / "machine.slice" / "other.scope").mkdir()
    cg = BoxCgroup.create(
        Hierarchies({}, str(root), CONTROLLERS), systemd_path("machine.slice:p:n")
    )
    assert cg.made == [f"{root}/machine.slice/p-n.scope"]
    assert (root / "machine.slice" / "cgroup.subtree_control").read_text() == "+cpu +io +pids"
    cg.destroy(timeout=1.0)
    assert (root / "machine.slice" / "other.scope").is_dir()
