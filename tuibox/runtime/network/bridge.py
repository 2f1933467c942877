"""The bridge of a network: find it, or create it with its gateway address.

tuibox creates a bridge only for its own networks (`default`, `network create`) and records
that it did (NetState.created_bridge); only such a bridge is ever deleted, by
`tuibox network rm`. A bridge named by a netconf must exist already. A created bridge stays up
when its last box goes: re-creating it per box is what makes podman's bridge slow (GUIDE.md).
"""

from __future__ import annotations

import errno
import os

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.network import ip4
from tuibox.runtime.network.ip4 import Cidr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.network.rtnl import Link, Rtnl


def exists(name: str) -> bool:
    """Whether the host has an interface `name` (sysfs: no netlink, no pyroute2)."""
    return os.path.exists(f"/sys/class/net/{name}")


def is_bridge(name: str) -> bool:
    return os.path.isdir(f"/sys/class/net/{name}/bridge")


def check_no_clash(nl: Rtnl, subnet: Cidr, hint: str) -> None:
    """Refuse a subnet that overlaps a route or an address the host already has."""
    names: dict[int, str] = {}

    def dev(index: int | None) -> str:
        if not names:
            names.update((link.index, link.name) for link in nl.links())
        return names.get(index or 0, f"#{index}")

    for dst, oif in nl.routes():
        if dst.prefix and dst.overlaps(subnet):
            raise NetworkError(
                f"subnet {subnet} overlaps the host route {dst} (dev {dev(oif)}); {hint}"
            )
    for index, addr in nl.addresses():
        if addr.ip in subnet:
            raise NetworkError(
                f"subnet {subnet} holds the host address {addr.address} (dev {dev(index)}); {hint}"
            )


def ensure_bridge(nl: Rtnl, name: str, subnet: Cidr, gateway: int, hint: str) -> tuple[Link, bool]:
    """The bridge `name` with `gateway` on it; (link, True) when this call created it."""
    link = nl.link(name)
    created = False
    if link is None:
        check_no_clash(nl, subnet, hint)
        try:
            nl.add_bridge(name)
            created = True
        except OSError as e:
            if e.errno != errno.EEXIST:  # someone else made it just now: use theirs
                raise NetworkError(f"create bridge {name}: {e.strerror}") from None
        link = nl.link(name)
        if link is None:
            raise NetworkError(f"bridge {name} vanished while it was being set up")
    if link.kind != "bridge":
        raise NetworkError(f"{name} exists on the host and is not a bridge")
    have = [a for i, a in nl.addresses(link.index)]
    if not any(a.ip == gateway for a in have):
        if not created:
            raise NetworkError(
                f"bridge {name} exists but does not have the gateway address "
                f"{ip4.fmt(gateway)}; {hint}"
            )
        nl.add_address(link.index, Cidr(gateway, subnet.prefix), f"address of bridge {name}")
    if created:
        set_route_localnet(name)
    return link, created


def set_route_localnet(bridge: str) -> None:
    """Let DNAT'ed connections from 127.0.0.1 leave through this bridge (see nat.py)."""
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
        f.write("1\n")


def bridge_subnet(nl: Rtnl, link: Link) -> tuple[Cidr | None, list[int]]:
    """The subnet of the bridge's first IPv4 address, and all of its addresses."""
    addrs = [a for _, a in nl.addresses(link.index)]
    return (addrs[0].subnet if addrs else None), [a.ip for a in addrs]


def delete_bridge(nl: Rtnl, name: str) -> bool:
    return nl.delete_link(name)
