"""podman 4.3 with runc or tuibox as its OCI runtime: same outputs, same exit codes."""

from __future__ import annotations

import os

import pytest
from conftest import (
    BRIDGE_NET,
    BRIDGE_SUBNET,
    IMAGE,
    RUNTIMES,
    Podman,
    assert_nothing_left,
    engine_id,
    run,
)

pytestmark = pytest.mark.root


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("args", "code", "out"),
    [(["echo", "hi"], 0, "hi\n"), (["sh", "-c", "exit 3"], 3, ""), (["/nonexistent"], 127, "")],
)
def test_run_rm(podman: Podman, runtime: str, args: list[str], code: int, out: str) -> None:
    name = engine_id()
    p = podman(runtime, "run", "--rm", "--name", name, "--network", "none", IMAGE, *args)
    assert (p.returncode, p.stdout) == (code, out), p.stderr
    assert podman(runtime, "container", "exists", name).returncode == 1
    assert_nothing_left(name, podman.state[runtime])


def detached(podman: Podman, runtime: str, name: str, script: str) -> str:
    """`run -d` of `sh -c script` with no network; the container's full id."""
    podman.ok(runtime, "run", "-d", "--name", name, "--network", "none", IMAGE, "sh", "-c", script)
    return podman.full_id(runtime, name)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detached_logs_exec_stop_rm(podman: Podman, runtime: str) -> None:
    name = engine_id()
    cid = detached(
        podman, runtime, name, "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done"
    )
    try:
        assert podman.ok(runtime, "exec", name, "echo", "in") == "in\n"
        assert podman(runtime, "exec", name, "sh", "-c", "exit 5").returncode == 5
        assert podman.ok(runtime, "logs", name) == "started\n"
        podman.ok(runtime, "stop", "-t", "5", name)
        assert podman.ok(runtime, "wait", name).strip() == "0"
    finally:
        podman(runtime, "rm", "-f", name)
    assert_nothing_left(cid, podman.state[runtime])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_options_and_control(podman: Podman, runtime: str) -> None:
    name = engine_id()
    cid = detached(podman, runtime, name, "trap 'echo hup' HUP; while :; do sleep 0.1; done")
    try:
        out = podman.ok(
            runtime,
            "exec",
            "-u",
            "65534",
            "-e",
            "X=y",
            "-w",
            "/tmp",
            name,
            "sh",
            "-c",
            "echo $(id -u) $X $(pwd)",
        )
        assert out == "65534 y /tmp\n"
        podman.ok(runtime, "kill", "-s", "HUP", name)
        podman.ok(runtime, "pause", name)
        assert podman.ok(runtime, "inspect", "--format", "{{.State.Status}}", name) == "paused\n"
        podman.ok(runtime, "unpause", name)
        pid, status = podman.ok(
            runtime, "inspect", "--format", "{{.State.Pid}} {{.State.Status}}", name
        ).split()
        assert status == "running" and int(pid) > 1
        assert "sh -c" in podman.ok(runtime, "top", name)
        assert name in podman.ok(runtime, "stats", "--no-stream", "--format", "{{.Name}}", name)
        assert "hup" in podman.ok(runtime, "logs", name)
    finally:
        podman(runtime, "rm", "-f", "-t", "0", name)
    assert_nothing_left(cid, podman.state[runtime])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("flags", "script", "out"),
    [
        (["--init"], "cat /proc/1/cmdline | tr '\\0' ' '", "/run/podman-init -- sh -c "),
        (["--network", "host"], "test -e /proc/self/ns/net && echo ok", "ok\n"),
        (["--privileged"], "grep CapEff /proc/self/status", "CapEff:\t000001fffeffffff\n"),
        (["--memory", "64m", "--cpus", "0.5"], "echo limited", "limited\n"),
    ],
)
def test_run_flags(podman: Podman, runtime: str, flags: list[str], script: str, out: str) -> None:
    name = engine_id()
    # podman's default network is a CNI bridge on the host: never without a network flag
    net = [] if "--network" in flags else ["--network", "none"]
    p = podman(runtime, "run", "--rm", "--name", name, *net, *flags, IMAGE, "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(out), p.stdout
    assert_nothing_left(name, podman.state[runtime])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_it_and_exec_it_through_a_pty(podman: Podman, runtime: str) -> None:
    import pexpect

    name = engine_id()
    argv = podman.argv(runtime, "run", "-it", "--rm", "--name", name, "--network", "none", IMAGE)
    shell = pexpect.spawn(argv[0], argv[1:], env=podman.env, timeout=20, encoding="utf-8")
    try:
        shell.expect("# ")
        shell.sendline("tty; echo $((6*7))")
        shell.expect("/dev/pts/0")
        shell.expect("42")
        ex = podman.argv(runtime, "exec", "-it", name, "sh", "-c", "tty; exit 4")
        inner = pexpect.spawn(ex[0], ex[1:], env=podman.env, timeout=20, encoding="utf-8")
        inner.expect("/dev/pts/")
        inner.expect(pexpect.EOF)
        inner.close()
        assert inner.exitstatus == 4
        shell.sendline("exit 7")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert shell.exitstatus == 7
    assert_nothing_left(name, podman.state[runtime])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_runtime_error_reaches_podman(podman: Podman, runtime: str) -> None:
    with open("/proc/self/status") as f:
        caps = int(next(ln for ln in f if ln.startswith("CapEff")).split()[1], 16)
    if caps & (1 << 24):
        pytest.skip("CAP_SYS_RESOURCE: a hard rlimit can be raised here, nothing fails")
    name = engine_id()
    p = podman(runtime, "run", "--rm", "--name", name, "--network", "none",
               "--ulimit", "nofile=100000:100000", IMAGE, "true")  # fmt: skip
    assert p.returncode == 126, p.stderr
    # the runtime's own message, read from its --log (runtime_supports_json), said once
    said = {"runc": "error setting rlimit", "tuibox": "Error: OCI runtime error: tuibox: rlimits:"}
    assert said[runtime] in p.stderr and "tuibox: tuibox:" not in p.stderr, p.stderr
    assert_nothing_left(name, podman.state[runtime])


def host_network_traces() -> set[str]:
    """What podman's CNI bridge would leave on the host: links and addresses, iptables
    rules and chains, IPAM and netns files."""
    prefix = BRIDGE_SUBNET.rsplit(".", 1)[0] + "."
    traces = {
        f"ip {ln}"
        for cmd in (["ip", "-o", "link"], ["ip", "-o", "addr"])
        for ln in run(cmd).stdout.splitlines()
        if "cni-" in ln or prefix in ln or " 10.88." in ln
    }
    for table in ("filter", "nat"):
        rules = run(["iptables", "-t", table, "-S"]).stdout.splitlines()
        traces |= {
            f"iptables -t {table} {r}" for r in rules if "CNI" in r or prefix in r or "10.88." in r
        }
    traces |= {p for p in ("/var/lib/cni", "/run/cni") if os.path.lexists(p)}
    if os.path.isdir("/run/netns"):
        traces |= {f"/run/netns/{n}" for n in os.listdir("/run/netns") if n.startswith("cni-")}
    return traces


# podman's own default network ("bridge": cni-podman0, 10.88.0.0/16, made in memory) and one
# `podman network create` wrote into the private config dir
PODMAN_DEFAULT = ("bridge", "10.88.0.1")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("network", ["bridge", "created"])
def test_network_bridge(podman: Podman, runtime: str, network: str) -> None:
    net, gateway = PODMAN_DEFAULT if network == "bridge" else (BRIDGE_NET, podman.bridge_network())
    before = host_network_traces()
    name = engine_id()
    p = podman.isolated(
        runtime,
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        net,
        IMAGE,
        "sh",
        "-c",
        f"ip -o -4 addr show eth0; ping -c 1 -W 5 {gateway} >/dev/null && echo reached",
    )
    assert p.returncode == 0, p.stderr
    addr, reached = p.stdout.splitlines()
    # podman's CNI gave the box its address: tuibox joined the netns podman made
    assert f"inet {gateway.rsplit('.', 1)[0]}." in addr and reached == "reached", p.stdout
    assert_nothing_left(name, podman.state[runtime])
    assert host_network_traces() == before
