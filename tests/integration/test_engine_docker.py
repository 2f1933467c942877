"""dockerd drives tuibox as an added runtime (issue 11): the same cases under runc and under
tuibox (`docker run --runtime`), same outputs and exit codes, nothing of the runtime's left
once docker removed the container. dockerd runs with its own data root, exec root, socket
and containerd, no bridge and no iptables (tests/integration/engines.py)."""

from __future__ import annotations

import os

import pytest

from tests.integration.engines import IMAGE, RUNTIMES, Docker, cgroup_dirs

pytestmark = pytest.mark.root


def leftovers(dk: Docker, runtime: str) -> dict[str, object]:
    root = dk.state_root(runtime)
    assert root.is_dir()
    if runtime == "tuibox":  # its wrapper leaves a marker (both share runc's root)
        assert (dk.base / "tuibox-called").exists(), "tuibox was never called"
    with open("/proc/self/mountinfo") as f:
        mounts = [ln for ln in f if f"{root}/" in ln]
    cgroups = [str(p) for top in cgroup_dirs(dk.cgroup_parent) for p in top.iterdir() if p.is_dir()]
    return {
        "boxes": sorted(n for n in os.listdir(root) if n[0] != "."),
        "mounts": mounts,
        "cgroups": cgroups,
        "containers": dk("ps", "-aq").stdout.split(),
    }


CLEAN = {"boxes": [], "mounts": [], "cgroups": [], "containers": []}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_run_rm_prints_and_exits_as_the_program(docker: Docker, runtime: str) -> None:
    out = docker.run(runtime, "--rm", IMAGE, "sh", "-c", "echo hi; echo to-err >&2")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert "to-err" in out.stderr
    out = docker.run(runtime, "--rm", IMAGE, "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    out = docker.run(runtime, "--rm", IMAGE, "/no/such/program")
    assert out.returncode == 127, out.stderr
    assert "/no/such/program" in out.stderr  # the runtime's message reaches docker's user
    assert leftovers(docker, runtime) == CLEAN


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_detached_logs_exec_stop(docker: Docker, runtime: str) -> None:
    program = "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"
    cid = docker.run(runtime, "-d", IMAGE, "sh", "-c", program, check=True).stdout.strip()
    try:
        ex = docker("exec", cid, "sh", "-c", "echo in-exec; exit 5", check=False)
        assert (ex.returncode, ex.stdout) == (5, "in-exec\n"), ex.stderr
        ex = docker("exec", "-u", "1000", "-e", "A=b", "-w", "/bin", cid, "sh", "-c",
                    "id -u; echo $A; pwd")  # fmt: skip
        assert ex.stdout == "1000\nb\n/bin\n"
        docker("stop", "-t", "10", cid)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip() == "0"
        assert docker("logs", cid).stdout == "started\nbye\n"
    finally:
        docker("rm", "-f", cid, check=False)
    assert leftovers(docker, runtime) == CLEAN
