"""netconf.json, network definitions, -p values, hosts/resolv.conf rendering and the nft
table text. Pure: no root, no kernel features."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime.errors import SpecError
from tuibox.runtime.network import files, ip4, nat, netconf, veth
from tuibox.runtime.network.ip4 import Cidr
from tuibox.runtime.network.netconf import Dns, PortMapping

# box's README example with the bridge model (the seed).
SEED: dict[str, Any] = {
    "loopback_name": "lo",
    "model": {"type": "bridge", "bridge_name": "docker0"},
    "interfaces": [
        {
            "type": "veth",
            "name": "eth1",
            "peer_name": "eth2",
            "ip": "0.0.0.0/0",
            "peer_ip": "172.17.0.6/28",
            "routes": [{"subnet": "0.0.0.0/0", "gateway": "172.17.0.1"}],
        }
    ],
    "dns": {"nameservers": ["8.8.8.8"], "domain": "lambda1", "search": ["lambda1", "lambda.local"]},
}

# box's example without a model: point-to-point.
PTP: dict[str, Any] = {
    "loopback_name": "lo",
    "interfaces": [
        {
            "type": "veth",
            "name": "eth1",
            "peer_name": "eth2",
            "ip": "10.0.0.1/30",
            "peer_ip": "10.0.0.2/30",
            "routes": [{"subnet": "0.0.0.0/0", "gateway": "10.0.0.1"}],
        }
    ],
    "dns": {"nameservers": ["10.0.0.1"], "domain": "lambda1", "search": ["lambda1"]},
}


def test_ip4_parse_format_and_cidr() -> None:
    assert ip4.fmt(ip4.parse("10.213.0.1")) == "10.213.0.1"
    for bad in ("10.0.0", "10.0.0.256", "10.0.0.01", "a.b.c.d", "1.2.3.4.5", "\u0661.2.3.4"):
        with pytest.raises(ValueError):
            ip4.parse(bad)
    c = Cidr.parse("172.17.0.6/28")
    assert str(c.subnet) == "172.17.0.0/28"
    assert ip4.fmt(c.broadcast) == "172.17.0.15"
    assert ip4.parse("172.17.0.1") in c.subnet
    assert ip4.parse("172.17.0.16") not in c.subnet
    assert [ip4.fmt(a) for a in Cidr.parse("10.0.0.0/30").hosts()] == ["10.0.0.1", "10.0.0.2"]
    assert Cidr.parse("10.0.0.0/8").overlaps(Cidr.parse("10.213.0.0/24"))
    assert not Cidr.parse("10.212.0.0/16").overlaps(Cidr.parse("10.213.0.0/24"))
    for bad in ("10.0.0.1", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/x"):
        with pytest.raises(ValueError):
            Cidr.parse(bad)


def test_seed_netconf_accepted() -> None:
    conf = netconf.parse_netconf(SEED, "netconf.json")
    assert conf.bridge == "docker0" and conf.loopback_name == "lo"
    (iface,) = conf.interfaces
    assert iface.name == "eth1" and iface.peer_name == "eth2"
    assert iface.ip is None  # the host end of a bridged pair has no address
    assert str(iface.peer_ip) == "172.17.0.6/28"
    assert iface.routes[0].gateway == ip4.parse("172.17.0.1")
    assert str(iface.routes[0].subnet) == "0.0.0.0/0"
    assert conf.dns == Dns(("8.8.8.8",), "lambda1", ("lambda1", "lambda.local"))
    assert conf.unsupported == ()


def test_point_to_point_netconf_accepted() -> None:
    conf = netconf.parse_netconf(PTP)
    assert conf.bridge is None
    assert str(conf.interfaces[0].ip) == "10.0.0.1/30"


def test_load_netconf_from_file(tmp_path: Path) -> None:
    path = tmp_path / "netconf.json"
    path.write_text(json.dumps({**SEED, "extra": 1}))
    conf = netconf.load_netconf(str(path))
    assert conf.source == str(path) and conf.unsupported == ("extra",)
    with pytest.raises(SpecError, match="no such file"):
        netconf.load_netconf(str(tmp_path / "missing.json"))
    path.write_text("{not json")
    with pytest.raises(SpecError, match="invalid JSON"):
        netconf.load_netconf(str(path))


def _bad(mutate: Any) -> str:
    data = copy.deepcopy(SEED)
    mutate(data)
    with pytest.raises(SpecError) as info:
        netconf.parse_netconf(data, "netconf.json")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("netconf.json: ")
    return msg


def _iface(data: dict[str, Any]) -> dict[str, Any]:
    iface: dict[str, Any] = data["interfaces"][0]
    return iface


def test_invalid_cidr() -> None:
    assert "invalid CIDR" in _bad(lambda d: _iface(d).update(peer_ip="172.17.0.300/28"))
    assert "with a prefix" in _bad(lambda d: _iface(d).update(peer_ip="172.17.0.6"))
    assert "invalid CIDR" in _bad(lambda d: _iface(d).update(peer_ip="172.17.0.6/40"))
    assert "host bits" in _bad(
        lambda d: _iface(d)["routes"].append({"subnet": "10.1.2.3/8", "gateway": "172.17.0.1"})
    )


def test_gateway_outside_subnet() -> None:
    msg = _bad(lambda d: _iface(d)["routes"][0].update(gateway="172.18.0.1"))
    assert "routes[0].gateway" in msg and "outside" in msg
    assert "own address" in _bad(lambda d: _iface(d)["routes"][0].update(gateway="172.17.0.6"))


def test_host_end_name_too_long() -> None:
    msg = _bad(lambda d: _iface(d).update(name="a-very-long-name0"))
    assert "interfaces[0].name" in msg and "15 characters" in msg
    assert "invalid interface name" in _bad(lambda d: _iface(d).update(peer_name="a/b"))


def test_duplicate_static_address() -> None:
    def twice(d: dict[str, Any]) -> None:
        second = copy.deepcopy(_iface(d))
        second.update(name="eth3", peer_name="eth4")
        d["interfaces"].append(second)

    assert "duplicate static address 172.17.0.6" in _bad(twice)


def test_duplicate_names() -> None:
    def same_peer(d: dict[str, Any]) -> None:
        second = copy.deepcopy(_iface(d))
        second.update(name="eth3", peer_ip="172.17.0.7/28")
        d["interfaces"].append(second)

    assert "used twice" in _bad(same_peer)
    assert "used twice" in _bad(lambda d: _iface(d).update(peer_name="lo"))


def test_unknown_interface_type_and_model() -> None:
    assert "unknown interface type 'macvlan'" in _bad(lambda d: _iface(d).update(type="macvlan"))
    assert "unknown model 'overlay'" in _bad(lambda d: d["model"].update(type="overlay"))
    assert "unknown field 'mtu'" in _bad(lambda d: _iface(d).update(mtu=1400))


def test_network_and_broadcast_addresses_refused() -> None:
    assert "network address" in _bad(lambda d: _iface(d).update(peer_ip="172.17.0.0/28"))
    assert "broadcast address" in _bad(lambda d: _iface(d).update(peer_ip="172.17.0.15/28"))


def test_auto_addresses() -> None:
    data = copy.deepcopy(SEED)
    _iface(data).update(peer_ip="auto", name="auto")
    iface = netconf.parse_netconf(data).interfaces[0]
    assert iface.peer_ip is None and iface.name is None
    ptp = copy.deepcopy(PTP)
    _iface(ptp)["peer_ip"] = "auto"
    with pytest.raises(SpecError, match="needs a bridge model"):
        netconf.parse_netconf(ptp)


def test_point_to_point_checks() -> None:
    ptp = copy.deepcopy(PTP)
    del _iface(ptp)["ip"]
    with pytest.raises(SpecError, match="needed without a bridge model"):
        netconf.parse_netconf(ptp)
    ptp = copy.deepcopy(PTP)
    _iface(ptp)["peer_ip"] = "10.0.0.6/30"
    with pytest.raises(SpecError, match="outside the host end's subnet"):
        netconf.parse_netconf(ptp)


def test_dns_checks() -> None:
    assert "dns.nameservers[0]" in _bad(lambda d: d["dns"].update(nameservers=["nope"]))
    data = copy.deepcopy(SEED)
    data["dns"]["nameservers"] = ["2001:4860:4860::8888"]
    assert netconf.parse_netconf(data).dns is not None


def test_default_network_and_env() -> None:
    net = netconf.default_network({})
    assert (net.name, net.bridge, str(net.subnet), ip4.fmt(net.gateway), net.nat) == (
        "default",
        "tuibox0",
        "10.213.0.0/24",
        "10.213.0.1",
        True,
    )
    env = {"TUIBOX_BRIDGE": "tbtest0", "TUIBOX_SUBNET": "10.213.9.0/24", "TUIBOX_NAT": "0"}
    net = netconf.default_network(env)
    assert net.bridge == "tbtest0" and ip4.fmt(net.gateway) == "10.213.9.1" and not net.nat
    with pytest.raises(SpecError, match="outside the subnet"):
        netconf.default_network({**env, "TUIBOX_GATEWAY": "10.214.0.1"})
    with pytest.raises(SpecError, match="host bits"):
        netconf.default_network({"TUIBOX_SUBNET": "10.213.9.1/24"})
    with pytest.raises(SpecError, match="15 characters"):
        netconf.default_network({"TUIBOX_BRIDGE": "a-very-long-bridge"})
    with pytest.raises(SpecError, match="too small"):
        netconf.default_network({"TUIBOX_SUBNET": "10.213.9.0/31"})


def test_ports() -> None:
    assert netconf.parse_port("8080:80") == PortMapping(8080, 80, "tcp", None)
    p = netconf.parse_port("127.0.0.1:8080:80/udp")
    assert p == PortMapping(8080, 80, "udp", ip4.parse("127.0.0.1"))
    assert str(p) == "127.0.0.1:8080:80/udp"
    assert str(netconf.parse_port("0.0.0.0:53:53/udp")) == "53:53/udp"
    for bad in ("80", "8080:80/sctp", "x:80", "8080:0", "8080:65536", "1.2.3:8080:80", "a:b:c:d"):
        with pytest.raises(SpecError):
            netconf.parse_port(bad)
    with pytest.raises(SpecError, match="given twice"):
        netconf.parse_ports(["8080:80", "127.0.0.1:8080:81"])
    assert len(netconf.parse_ports(["8080:80", "8080:80/udp"])) == 2


def test_host_veth_names_unique_and_short() -> None:
    names = {veth.host_name("/run/tuibox", f"box-{i}", 0) for i in range(2000)}
    assert len(names) == 2000
    assert all(len(n) <= 15 and n.startswith("tb") for n in names)
    assert veth.host_name("/run/tuibox", "web", 0) == veth.host_name("/run/tuibox", "web", 0)
    assert veth.host_name("/run/tuibox", "web", 0) != veth.host_name("/tmp/other", "web", 0)
    assert veth.host_name("/r", "x" * 64, 9)[-1] == "9"


def test_render_hosts() -> None:
    a, b = ip4.parse("10.213.0.2"), ip4.parse("10.213.0.3")
    text = files.render_hosts([a], "web", "web", [(a, "web", "web"), (b, "db", "dbhost")])
    assert text.splitlines() == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "10.213.0.2\tweb",
        "10.213.0.3\tdbhost db",
    ]
    assert "127.0.1.1\tlonely" in files.render_hosts([], "lonely", "lonely", [])


def test_render_resolv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Dns(("8.8.8.8", "1.1.1.1"), "lambda1", ("lambda1", "lambda.local"))
    assert files.render_resolv(dns) == (
        "nameserver 8.8.8.8\nnameserver 1.1.1.1\ndomain lambda1\nsearch lambda1 lambda.local\n"
    )
    host = tmp_path / "resolv.conf"
    host.write_text("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example\n")
    monkeypatch.setattr(files, "HOST_RESOLV", str(host))
    monkeypatch.setattr(files, "RESOLVED_UPSTREAM", str(tmp_path / "none"))
    assert files.render_resolv(None) == "nameserver 192.0.2.53\nsearch example\n"
    host.write_text("nameserver 127.0.0.53\n")
    assert files.render_resolv(None).startswith("nameserver 8.8.8.8\n")


def test_write_in_place_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    assert not files.write_in_place(str(path), "x")
    assert files.write_in_place(str(path), "first version, longer\n", create=True)
    inode = path.stat().st_ino
    assert files.write_in_place(str(path), "second\n")
    assert path.read_text() == "second\n" and path.stat().st_ino == inode


def test_nft_table_text() -> None:
    text = nat.table_script("tuibox-tb0", "tb0", Cidr.parse("10.213.0.0/24"), nat=True)
    assert text.startswith("add table ip tuibox-tb0\ndelete table ip tuibox-tb0\n")
    assert "ip saddr 10.213.0.0/24 ip daddr != 10.213.0.0/24" in text
    assert 'iifname "tb0" ip daddr 127.0.0.0/8 drop' in text
    assert "masquerade" in nat.table_script("t", "tb0", Cidr.parse("10.0.0.0/24"), nat=False)
    without = nat.table_script("t", "tb0", Cidr.parse("10.0.0.0/24"), nat=False)
    assert "ip daddr != 10.0.0.0/24" not in without
    assert nat.table_name("tuibox0") == "tuibox-tuibox0"
    assert nat.table_name("br:x") == "tuibox-br_x"
