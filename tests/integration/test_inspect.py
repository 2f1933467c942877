"""`tuibox inspect`: each fact checked against /proc and /sys for a real busybox box.

One networked box serves most checks (a box costs ~0.3 s to make; the facts are independent)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique
from tests.integration.test_network import Net, _free_port, net  # noqa: F401 - the fixture

pytestmark = pytest.mark.root

CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"]


def inspect(tb: TB, name: str, *extra: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(tb("inspect", name, *extra).stdout)
    return out


def test_inspect_matches_the_kernel(
    tb: TB,
    net: Net,  # noqa: F811 - the fixture
    make_bundle: Callable[..., Path],
) -> None:
    caps = {k: CAPS for k in ("bounding", "effective", "permitted")}
    bundle = make_bundle(process={"capabilities": caps, "env": ["PATH=/bin", "TOKEN=s3cret"]})
    name, port = unique("in"), _free_port()
    tb("run", "-d", "--bundle", str(bundle), "--memory", "48m", "--network", "default",
       "-p", f"127.0.0.1:{port}:80", name, "sleep", "1000")  # fmt: skip
    info = inspect(tb, name)
    pid = tb.state(name)["pid"]
    assert info["status"] == "running" and info["pids"]["init"] == pid
    assert info["pids"]["monitor"]["alive"] is True

    # namespaces: the inodes are the kernel's; net/pid/mnt are the box's own, user the host's
    for ns, fact in info["namespaces"].items():
        assert fact["inode"] == os.stat(f"/proc/{pid}/ns/{ns}").st_ino, ns
    for ns in ("net", "pid", "mnt", "uts", "ipc"):
        assert info["namespaces"][ns]["shared_with_host"] is False, ns
    assert info["namespaces"]["user"]["shared_with_host"] is True

    # cgroup: the memory limit as the kernel's file has it
    mem = info["cgroup"]["v1"].get("memory") if info["cgroup"].get("v1") else None
    if mem is not None:
        have = Path(mem["directory"], "memory.limit_in_bytes").read_text().strip()
        assert mem["limits"]["memory.limit_in_bytes"] == have == str(48 << 20)
    else:
        v2 = info["cgroup"]["v2"]
        have = Path(v2["directory"], "memory.max").read_text().strip()
        assert v2["limits"]["memory.max"] == have == str(48 << 20)
    assert info["cgroup"]["usage"]["memory_limit"] == 48 << 20

    # capabilities: by name, from the init's status
    status = Path(f"/proc/{pid}/status").read_text()
    eff = int(re.search(r"CapEff:\s*(\w+)", status).group(1), 16)  # type: ignore[union-attr]
    assert sorted(info["capabilities"]["effective"]) == sorted(CAPS)
    assert eff == sum(1 << i for i in (0, 5, 10, 18))
    assert "CAP_SYS_ADMIN" not in info["capabilities"]["bounding"]

    # seccomp, user mapping, mounts as the box sees them
    # (a bundle's spec without linux.seccomp runs unconfined, as runc does)
    assert re.search(r"Seccomp:\s*0\n", status)
    assert info["seccomp"]["mode"] == "disabled" and info["seccomp"]["profile"] == "unconfined"
    assert info["user"]["uid_map"] == [[0, 0, 4294967295]]
    targets = [m["target"] for m in info["mounts"]]
    assert targets[0] == "/" and "/proc" in targets and "/dev" in targets
    assert len(info["mounts"]) == len(Path(f"/proc/{pid}/mountinfo").read_text().splitlines())

    # network: address, veth, bridge, route, DNS, port and its NAT rule
    n = info["network"]
    addr = n["address"]
    assert addr.startswith(net.prefix + ".") and addr in n["addresses"]
    assert n["bridge"] == net.bridge
    assert any(r["gateway"] == net.gateway and r["destination"] == "0.0.0.0/0" for r in n["routes"])
    assert n["dns"]["nameservers"], n["dns"]
    assert n["ports"] == [f"127.0.0.1:{port}:80/tcp"]
    assert any(addr in rule and str(port) in rule for rule in n["nat_rules"]), n["nat_rules"]
    from tuibox.runtime.network.veth import host_name

    veth = host_name(str(tb.root), name, 0)
    assert veth in json.dumps(n["interfaces"]) or Path(f"/sys/class/net/{veth}").exists()
    assert Path(f"/sys/class/net/{veth}/master").resolve().name == net.bridge

    # env: masked unless asked
    assert "TOKEN=*****" in info["env"] and "s3cret" not in json.dumps(info)
    assert "TOKEN=s3cret" in inspect(tb, name, "--show-env")["env"]
    text = tb("inspect", "--format", "text", name).stdout
    assert f"address: {addr}" in text and "s3cret" not in text

    # stopped: what the record knows, live sections marked absent
    tb("kill", name, "KILL")
    tb("wait", name)
    gone = inspect(tb, name)
    assert gone["status"] == "stopped" and gone["exit"]["status"] == 137
    assert gone["pids"]["init"] is None
    for section in ("namespaces", "mounts", "capabilities"):
        assert "absent" in gone[section], section
    assert "absent" in gone["cgroup"] and gone["network"]["address"] == addr
    tb("destroy", name)


def test_inspect_bad_input(tb: TB) -> None:
    assert "nosuch" in tb.fails("inspect", "nosuch")
    tb.fails("inspect")
    tb.fails("inspect", "--format", "yaml", "x")
    assert "must be json or text" in tb.fails("inspect", "--format", "yaml", "x")
    assert tb.names() == []


def test_inspect_image_box_seccomp_and_both_backends(tb: TB) -> None:
    """An image box gets the default seccomp profile: mode filter, named "default"; a box
    given the same profile as a file shows that file and the same program's digest; the
    TUI's two backends report what the CLI does."""
    import asyncio

    from tuibox.runtime.seccomp.profile import DEFAULT_PROFILE
    from tuibox.service import CliBackend, InProcessBackend

    a, b = unique("ia"), unique("ib")
    copy = tb.root.parent / "my-profile.json"
    shutil.copyfile(DEFAULT_PROFILE, copy)
    tb("run", "-d", "--image", "busybox", a, "sleep", "1000")
    tb("run", "-d", "--security-opt", f"seccomp={copy}", "--image", "busybox", b, "sleep", "1000")
    info = inspect(tb, a)
    pid = tb.state(a)["pid"]
    assert re.search(r"Seccomp:\s*2\n", Path(f"/proc/{pid}/status").read_text())
    assert info["seccomp"]["mode"] == "filter" and info["seccomp"]["filters"] >= 1
    assert info["seccomp"]["profile"] == "default"
    other = inspect(tb, b)["seccomp"]
    assert other["profile"] == str(copy) and other["digest"] == info["seccomp"]["digest"]
    assert info["namespaces"]["net"]["shared_with"] == []
    via_cli = asyncio.run(CliBackend(str(tb.root), str(tb.data_root)).inspect(a))
    in_proc = asyncio.run(InProcessBackend(str(tb.root), str(tb.data_root)).inspect(a))
    for got in (via_cli, in_proc):
        assert got["namespaces"]["pid"]["inode"] == os.stat(f"/proc/{pid}/ns/pid").st_ino
        assert not any(e.endswith("=*****") for e in got["env"])  # the screen masks them
    tb("destroy", "--force", a, b)
