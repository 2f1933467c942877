"""containerd's runc shim drives tuibox as its runc binary (issue 11): `ctr run --rm` of an
imported busybox image under runc and under tuibox, same output and exit code, nothing of the
runtime's left once the container is removed. containerd runs with its own root, state and
socket (tests/integration/engines.py); the image comes from podman's store, no registry."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.engines import RUNTIMES, Containerd, cgroup_dirs

pytestmark = pytest.mark.root


def leftovers(cd: Containerd, runtime: str) -> dict[str, object]:
    root = cd.state_root(runtime) / "default"  # the shim adds containerd's namespace
    assert root.is_dir(), f"{runtime} was never called"
    names = os.listdir(root)
    with open("/proc/self/mountinfo") as f:
        mounts = [ln for ln in f if f"{root}/" in ln]
    cgroups = [str(p) for top in cgroup_dirs(cd.cgroup_parent) for p in top.iterdir() if p.is_dir()]
    tasks = cd.ctr("tasks", "ls", "-q").stdout.split()
    containers = cd.ctr("containers", "ls", "-q").stdout.split()
    return {
        "boxes": sorted(n for n in names if n[0] != "."),
        "mounts": mounts,
        "cgroups": cgroups,
        "tasks": tasks,
        "containers": containers,
    }


CLEAN = {"boxes": [], "mounts": [], "cgroups": [], "tasks": [], "containers": []}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctr_run_rm_prints_and_exits_as_the_program(containerd: Containerd, runtime: str) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    out = containerd.run(runtime, name, "sh", "-c", "echo hi; echo to-err >&2")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert "to-err" in out.stderr
    out = containerd.run(runtime, f"{name}-3", "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    assert leftovers(containerd, runtime) == CLEAN
