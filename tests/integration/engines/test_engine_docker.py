"""dockerd 20.10 (Debian docker.io) with runc or tuibox as a runtime: same outputs and codes."""

from __future__ import annotations

import pytest
from conftest import IMAGE, RUNTIMES, Docker, assert_nothing_left, engine_id

pytestmark = pytest.mark.root


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_rm(docker: Docker, runtime: str) -> None:
    for args, code, out in ((["echo", "hi"], 0, "hi\n"), (["sh", "-c", "exit 3"], 3, "")):
        name = engine_id()
        p = docker(
            "run", "--rm", "--name", name, "--runtime", runtime, "--network", "none", IMAGE, *args
        )
        assert (p.returncode, p.stdout) == (code, out), p.stderr
        assert_nothing_left(name, docker.state_root(runtime))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detached_exec_logs_stop(docker: Docker, runtime: str) -> None:
    name = engine_id()
    cid = docker.ok(
        "run",
        "-d",
        "--name",
        name,
        "--runtime",
        runtime,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ).strip()
    try:
        assert docker.ok("exec", name, "echo", "in") == "in\n"
        assert docker("exec", name, "sh", "-c", "exit 5").returncode == 5
        docker.ok("stop", "-t", "5", name)
        assert docker.ok("wait", name).strip() == "0"
        assert docker.ok("logs", name) == "started\n"
    finally:
        docker("rm", "-f", name)
    assert_nothing_left(cid, docker.state_root(runtime))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_it_through_a_pty(docker: Docker, runtime: str) -> None:
    import pexpect

    argv = docker.argv("run", "-it", "--rm", "--runtime", runtime, "--network", "none", IMAGE)
    shell = pexpect.spawn(argv[0], argv[1:], env=docker.env, timeout=20, encoding="utf-8")
    try:
        shell.expect("# ")
        shell.sendline("tty; echo $((6*7))")
        shell.expect("/dev/pts/0")
        shell.expect("42")
        shell.sendline("exit 7")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert shell.exitstatus == 7
