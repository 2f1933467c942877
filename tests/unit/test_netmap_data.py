"""The network map's data (service.network_map_of) from box records as the network stage
writes them, and the limits dialog's helpers: pure, no kernel."""

from __future__ import annotations

from typing import Any

from tuibox.runtime.state import BoxRecord
from tuibox.service import (
    Limits,
    NetworkRow,
    limit_args,
    limits_text,
    natural_key,
    network_map_of,
)


def record(name: str, status: str, network: dict[str, Any] | None, **extra: Any) -> BoxRecord:
    if network is not None:
        extra["network"] = network
    return BoxRecord(name, status, "/b", "/r", extra=extra)


def iface(host: str, address: str) -> dict[str, Any]:
    return {"host": host, "box": "eth0", "address": address, "host_address": None, "routes": []}


def test_links_from_records() -> None:
    records = [
        record(
            "q10",
            "running",
            {
                "name": "default",
                "bridge": "tuibox0",
                "interfaces": [iface("tbaaaa0", "10.88.0.3/16")],
            },
            ports=["8080:80/tcp"],
        ),
        record(
            "q2",
            "stopped",
            {
                "name": "default",
                "bridge": "tuibox0",
                "interfaces": [iface("tbbbbb0", "10.88.0.4/16")],
            },
        ),
        record(
            "p2p",
            "running",
            {"name": None, "bridge": None, "interfaces": [iface("veth-p2p", "192.168.9.2/30")]},
        ),
        record(
            "nc",
            "running",
            {
                "name": "br-nc",
                "bridge": "br-nc",
                "interfaces": [iface("tbccc0", "172.20.0.2/24"), iface("tbccc1", "172.21.0.2/24")],
            },
            ports=["53:53/udp"],
        ),
        record("plain", "running", None),  # --network none: no interfaces to map
    ]
    nets = [NetworkRow("default", "tuibox0", subnet="10.88.0.0/16", nat=True, boxes=("q10", "q2"))]
    seen: list[str] = []

    def present(name: str) -> bool:
        seen.append(name)
        return name != "tbaaaa0"

    data = network_map_of(records, nets, present)
    assert [n.bridge for n in data.networks] == ["tuibox0", "br-nc"]
    assert data.networks[1].kind == "netconf" and data.networks[1].subnet is None
    on = data.on("tuibox0")
    assert [x.box for x in on] == ["q2", "q10"]  # natural order
    assert on[1].veth == "tbaaaa0" and on[1].veth_present is False
    assert on[1].ports == ("8080:80/tcp",) and on[1].address == "10.88.0.3/16"
    assert on[0].veth_present is None  # a stopped box: not looked up
    nc = data.on("br-nc")
    assert [(x.veth, x.ports) for x in nc] == [("tbccc0", ("53:53/udp",)), ("tbccc1", ())]
    alone = data.on(None)
    assert [(x.box, x.network, x.veth) for x in alone] == [("p2p", None, "veth-p2p")]
    assert "tbbbbb0" not in seen and sorted(seen) == ["tbaaaa0", "tbccc0", "tbccc1", "veth-p2p"]


def test_natural_key_and_limit_helpers() -> None:
    assert sorted(["q10", "q2", "q1", "a"], key=natural_key) == ["a", "q1", "q2", "q10"]
    assert limits_text(Limits(64 << 20, 0.25, 7)) == {"memory": "64m", "cpus": "0.25", "pids": "7"}
    assert limits_text(Limits(3 << 30, None, None))["memory"] == "3g"
    assert limits_text(Limits(1000, None, None))["memory"] == "1000"
    assert limit_args({"memory": "-1", "pids": "5"}) == ["--memory=-1", "--pids-limit=5"]


def test_map_and_form_checks_import_no_netlink(tmp_path: Any) -> None:
    # The TUI reads the map in a thread of its own process: pyroute2 (149 ms to import, and
    # threads of its own) must stay out of it, as netlink round trips must.
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from tuibox.service import InProcessBackend, NetworkOptions, network_problem\n"
        "network_problem(NetworkOptions('a', '10.1.0.0/24'))\n"
        f"b = InProcessBackend({str(tmp_path / 'r')!r}, {str(tmp_path / 'd')!r})\n"
        "asyncio.run(b.network_map())\n"
        "print('pyroute2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
