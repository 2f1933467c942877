"""netconf.json (box's format, accepted unchanged), tuibox's network definitions and `-p`
values -> validated plain models.

No side effects: a request is checked completely before the first interface, lease or rule
exists. Every error is one line naming the file and the field.

box's format:

    {"loopback_name": "lo",
     "model": {"type": "bridge", "bridge_name": "docker0"},        # optional
     "interfaces": [{"type": "veth", "name": "eth1", "peer_name": "eth2",
                     "ip": "0.0.0.0/0", "peer_ip": "172.17.0.6/28",
                     "routes": [{"subnet": "0.0.0.0/0", "gateway": "172.17.0.1"}]}],
     "dns": {"nameservers": ["8.8.8.8"], "domain": "lambda1", "search": ["lambda1"]}}

With the bridge model the host end (`name`) joins the bridge and `ip` is not used (box's own
example writes "0.0.0.0/0"); without a model the host end gets `ip` and the pair is
point-to-point. tuibox adds `"auto"` for `name` (a name derived from the box) and for
`peer_ip` (an address leased from the bridge's subnet).
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import SpecError
from tuibox.runtime.network import ip4
from tuibox.runtime.network.ip4 import Cidr
from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

MAX_IFNAME = 15  # IFNAMSIZ - 1
AUTO = "auto"
_IFNAME_BAD = frozenset("/: \t\n\r")

DEFAULT_NETWORK = "default"
DEFAULT_BRIDGE = "tuibox0"
# podman uses 10.88.0.0/16, docker 172.17.0.0/16, libvirt 192.168.122.0/24, LXD a random
# 10.x/24: 10.213.0.0/24 is none of their defaults. A clash with a host route is detected.
DEFAULT_SUBNET = "10.213.0.0/24"
BOX_IFNAME = "eth0"  # the box's end on tuibox's own networks


class Route(Plain):
    __slots__ = ("gateway", "subnet")

    def __init__(self, subnet: Cidr, gateway: int | None = None) -> None:
        self.subnet = subnet
        self.gateway = gateway


class Dns(Plain):
    __slots__ = ("domain", "nameservers", "search")

    def __init__(
        self,
        nameservers: tuple[str, ...] = (),
        domain: str | None = None,
        search: tuple[str, ...] = (),
    ) -> None:
        self.nameservers = nameservers
        self.domain = domain
        self.search = search


class Interface(Plain):
    __slots__ = ("ip", "name", "peer_ip", "peer_name", "routes", "type")

    def __init__(
        self,
        type: str,
        name: str | None,
        peer_name: str,
        ip: Cidr | None,
        peer_ip: Cidr | None,
        routes: tuple[Route, ...] = (),
    ) -> None:
        self.type = type  # only "veth"
        self.name = name  # host end; None: derived from the box
        self.peer_name = peer_name  # the end inside the box
        self.ip = ip  # host end address (point-to-point only)
        self.peer_ip = peer_ip  # None: leased automatically
        self.routes = routes


class NetConf(Plain):
    __slots__ = ("bridge", "dns", "interfaces", "loopback_name", "source", "unsupported")

    def __init__(
        self,
        source: str,
        loopback_name: str = "lo",
        bridge: str | None = None,
        interfaces: tuple[Interface, ...] = (),
        dns: Dns | None = None,
        unsupported: tuple[str, ...] = (),
    ) -> None:
        self.source = source  # the file, for messages
        self.loopback_name = loopback_name
        self.bridge = bridge  # the bridge model's bridge; None: point-to-point
        self.interfaces = interfaces
        self.dns = dns
        self.unsupported = unsupported  # keys present but not implemented (warned about)


class NetworkDef(Plain):
    """One of tuibox's own networks: a bridge tuibox may create, a subnet, NAT or not."""

    __slots__ = ("bridge", "gateway", "name", "nat", "subnet")

    def __init__(
        self, name: str, bridge: str, subnet: Cidr, gateway: int, nat: bool = True
    ) -> None:
        self.name = name
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway
        self.nat = nat

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bridge": self.bridge,
            "subnet": str(self.subnet),
            "gateway": ip4.fmt(self.gateway),
            "nat": self.nat,
        }


class PortMapping(Plain):
    __slots__ = ("box_port", "host_ip", "host_port", "proto")

    def __init__(
        self, host_port: int, box_port: int, proto: str = "tcp", host_ip: int | None = None
    ) -> None:
        self.host_port = host_port
        self.box_port = box_port
        self.proto = proto
        self.host_ip = host_ip  # None: every host address

    def __str__(self) -> str:
        head = f"{ip4.fmt(self.host_ip)}:" if self.host_ip is not None else ""
        return f"{head}{self.host_port}:{self.box_port}/{self.proto}"


# ---- small checks ---------------------------------------------------------------------------


def check_ifname(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: must be an interface name (a non-empty string)")
    if len(value.encode()) > MAX_IFNAME:
        raise SpecError(f"{where}: interface name {value!r} is longer than {MAX_IFNAME} characters")
    if value in (".", "..") or any(c in _IFNAME_BAD for c in value):
        raise SpecError(f"{where}: invalid interface name {value!r}")
    return value


def parse_cidr(value: object, where: str) -> Cidr:
    """An IPv4 address with its prefix, as in "172.17.0.6/28"."""
    if not isinstance(value, str) or "/" not in value:
        raise SpecError(f"{where}: {value!r} is not an address with a prefix, like 10.0.0.2/24")
    try:
        return Cidr.parse(value)
    except ValueError:
        raise SpecError(f"{where}: invalid CIDR {value!r}") from None


def parse_subnet(value: object, where: str) -> Cidr:
    c = parse_cidr(value, where)
    if not c.is_network():
        raise SpecError(f"{where}: subnet {value!r} has host bits set")
    return c


def parse_address(value: object, where: str) -> int:
    if not isinstance(value, str):
        raise SpecError(f"{where}: must be an IPv4 address")
    try:
        return ip4.parse(value)
    except ValueError:
        raise SpecError(f"{where}: invalid IPv4 address {value!r}") from None


def check_host_address(c: Cidr, where: str) -> None:
    """A box or gateway address must not be its subnet's network or broadcast address."""
    if c.prefix <= 30 and c.ip in (c.network, c.broadcast):
        kind = "network" if c.ip == c.network else "broadcast"
        raise SpecError(f"{where}: {c} is the {kind} address of {c.subnet}")


def _is_address(text: str) -> bool:
    try:
        ip4.parse(text)
        return True
    except ValueError:
        # IPv6 nameservers are written to resolv.conf as given; only the shape is checked.
        hexdigits = "0123456789abcdefABCDEF:."
        return text.count(":") >= 2 and all(c in hexdigits for c in text)


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: must be an object")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: must be a list of strings")
    return tuple(value)


# ---- netconf.json ---------------------------------------------------------------------------

_TOP = frozenset({"loopback_name", "model", "interfaces", "dns"})
_IFACE = frozenset({"type", "name", "peer_name", "ip", "peer_ip", "routes"})


def load_netconf(path: str) -> NetConf:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as e:
        raise SpecError(f"{path}: {(e.strerror or str(e)).lower()}") from None
    try:
        data = fastjson.loads(raw)
    except ValueError as e:
        raise SpecError(f"{path}: invalid JSON: {e}") from None
    return parse_netconf(data, path)


def parse_netconf(data: object, src: str = "netconf.json") -> NetConf:
    top = _obj(data, src)
    unsupported = tuple(sorted(k for k in top if k not in _TOP))
    lo = check_ifname(top.get("loopback_name", "lo"), f"{src}: loopback_name")
    bridge = None
    if top.get("model") is not None:
        model = _obj(top["model"], f"{src}: model")
        kind = model.get("type")
        if kind != "bridge":
            raise SpecError(f"{src}: model.type: unknown model {kind!r} (supported: bridge)")
        bridge = check_ifname(model.get("bridge_name"), f"{src}: model.bridge_name")
    raw_ifaces = top.get("interfaces", [])
    if not isinstance(raw_ifaces, list):
        raise SpecError(f"{src}: interfaces: must be a list")
    ifaces = tuple(
        _interface(item, f"{src}: interfaces[{i}]", i, bridge) for i, item in enumerate(raw_ifaces)
    )
    _no_duplicates(ifaces, lo, src)
    dns = None
    if top.get("dns") is not None:
        d = _obj(top["dns"], f"{src}: dns")
        servers = _strings(d.get("nameservers"), f"{src}: dns.nameservers")
        for i, s in enumerate(servers):
            if not _is_address(s):
                raise SpecError(f"{src}: dns.nameservers[{i}]: invalid address {s!r}")
        domain = d.get("domain")
        if domain is not None and (not isinstance(domain, str) or not domain.strip()):
            raise SpecError(f"{src}: dns.domain: must be a non-empty string")
        dns = Dns(servers, domain, _strings(d.get("search"), f"{src}: dns.search"))
    return NetConf(src, lo, bridge, ifaces, dns, unsupported)


def _interface(item: object, where: str, index: int, bridge: str | None) -> Interface:
    d = _obj(item, where)
    kind = d.get("type")
    if kind != "veth":
        raise SpecError(f"{where}.type: unknown interface type {kind!r} (supported: veth)")
    unknown = sorted(k for k in d if k not in _IFACE)
    if unknown:
        raise SpecError(f"{where}: unknown field {unknown[0]!r}")
    name = None if d.get("name", AUTO) == AUTO else check_ifname(d["name"], f"{where}.name")
    peer_name = check_ifname(d.get("peer_name", f"eth{index}"), f"{where}.peer_name")
    peer_ip = None
    if d.get("peer_ip", AUTO) != AUTO:
        peer_ip = parse_cidr(d["peer_ip"], f"{where}.peer_ip")
        check_host_address(peer_ip, f"{where}.peer_ip")
    ip = None
    if bridge is None:
        if d.get("ip") is None:
            raise SpecError(f"{where}.ip: needed without a bridge model (the host end's address)")
        ip = parse_cidr(d["ip"], f"{where}.ip")
        check_host_address(ip, f"{where}.ip")
        if peer_ip is None:
            raise SpecError(
                f'{where}.peer_ip: "auto" needs a bridge model (no subnet to pick from)'
            )
        if peer_ip.ip not in ip.subnet:
            raise SpecError(
                f"{where}: peer_ip {peer_ip} is outside the host end's subnet {ip.subnet}"
            )
        if peer_ip.ip == ip.ip:
            raise SpecError(f"{where}: ip and peer_ip are the same address {ip.address}")
    elif d.get("ip") is not None:
        # Accepted and unused, as in box: the host end of a bridged pair has no address.
        parse_cidr(d["ip"], f"{where}.ip")
    raw_routes = d.get("routes", [])
    if not isinstance(raw_routes, list):
        raise SpecError(f"{where}.routes: must be a list")
    routes = []
    for j, r in enumerate(raw_routes):
        rw = f"{where}.routes[{j}]"
        rd = _obj(r, rw)
        subnet = parse_subnet(rd.get("subnet"), f"{rw}.subnet")
        gw = None if rd.get("gateway") is None else parse_address(rd["gateway"], f"{rw}.gateway")
        if gw is not None and peer_ip is not None:
            check_gateway(gw, peer_ip, f"{rw}.gateway")
        routes.append(Route(subnet, gw))
    return Interface("veth", name, peer_name, ip, peer_ip, tuple(routes))


def check_gateway(gw: int, own: Cidr, where: str) -> None:
    """A route's gateway must be on the interface's own subnet, and not the box itself."""
    if gw not in own.subnet:
        raise SpecError(f"{where}: {ip4.fmt(gw)} is outside the interface's subnet {own.subnet}")
    if gw == own.ip:
        raise SpecError(f"{where}: {ip4.fmt(gw)} is the interface's own address")


def _no_duplicates(ifaces: tuple[Interface, ...], lo: str, src: str) -> None:
    seen_peer: set[str] = {lo}
    seen_host: set[str] = set()
    seen_ip: set[int] = set()
    for i, f in enumerate(ifaces):
        where = f"{src}: interfaces[{i}]"
        if f.peer_name in seen_peer:
            raise SpecError(f"{where}.peer_name: {f.peer_name!r} is used twice in the box")
        seen_peer.add(f.peer_name)
        if f.name is not None:
            if f.name in seen_host:
                raise SpecError(f"{where}.name: {f.name!r} is used twice")
            seen_host.add(f.name)
        for c in (f.peer_ip, f.ip):
            if c is None:
                continue
            if c.ip in seen_ip:
                raise SpecError(f"{where}: duplicate static address {c.address}")
            seen_ip.add(c.ip)


# ---- tuibox's own networks ------------------------------------------------------------------


def network_def(
    name: str,
    bridge: object,
    subnet: object,
    gateway: object = None,
    nat: bool = True,
    where: str = "network",
) -> NetworkDef:
    br = check_ifname(bridge, f"{where}: bridge")
    net = parse_subnet(subnet, f"{where}: subnet")
    if net.prefix > 30:
        raise SpecError(f"{where}: subnet {net} is too small (at most /30)")
    gw = parse_address(gateway, f"{where}: gateway") if gateway else net.network + 1
    if gw not in net:
        raise SpecError(f"{where}: gateway {ip4.fmt(gw)} is outside the subnet {net}")
    check_host_address(Cidr(gw, net.prefix), f"{where}: gateway")
    return NetworkDef(name, br, net, gw, nat)


def default_network(env: Mapping[str, str] | None = None) -> NetworkDef:
    """The `default` network. TUIBOX_BRIDGE, TUIBOX_SUBNET, TUIBOX_GATEWAY and TUIBOX_NAT=0
    change it (tests use them to stay off a user's tuibox0)."""
    e = os.environ if env is None else env
    return network_def(
        DEFAULT_NETWORK,
        e.get("TUIBOX_BRIDGE") or DEFAULT_BRIDGE,
        e.get("TUIBOX_SUBNET") or DEFAULT_SUBNET,
        e.get("TUIBOX_GATEWAY") or None,
        (e.get("TUIBOX_NAT") or "1").lower() not in ("0", "no", "false", "off"),
        where="default network (TUIBOX_BRIDGE, TUIBOX_SUBNET, TUIBOX_GATEWAY)",
    )


# ---- published ports ------------------------------------------------------------------------


def parse_port(text: str) -> PortMapping:
    """`[IP:]HOST:BOX[/tcp|udp]`, as docker's -p."""
    where = f"--publish {text!r}"
    body, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise SpecError(f"{where}: protocol must be tcp or udp")
    parts = body.split(":")
    if len(parts) == 2:
        host_ip, host, box = "", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, box = parts
    else:
        raise SpecError(f"{where}: must be [IP:]HOST_PORT:BOX_PORT[/tcp|udp]")
    addr = parse_address(host_ip, where) if host_ip else None
    if addr == 0:
        addr = None  # 0.0.0.0: every address, as docker
    return PortMapping(_port(host, where), _port(box, where), proto, addr)


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not text.isascii() or not 0 < int(text) < 65536:
        raise SpecError(f"{where}: {text!r} is not a port number (1-65535)")
    return int(text)


def parse_ports(values: Sequence[str]) -> tuple[PortMapping, ...]:
    ports = tuple(parse_port(v) for v in values)
    seen: set[tuple[int, str]] = set()
    for p in ports:
        if (p.host_port, p.proto) in seen:
            raise SpecError(f"--publish: host port {p.host_port}/{p.proto} is given twice")
        seen.add((p.host_port, p.proto))
    return ports
