"""The veth pair: created with its peer straight inside the box's network namespace, the host
end on the bridge (or addressed, point-to-point); the box side configured from the host
through a netlink socket opened in the box's namespace.
"""

from __future__ import annotations

import errno
import os
import time

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.network import ip4

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.network.ip4 import Cidr
    from tuibox.runtime.network.netconf import Route
    from tuibox.runtime.network.rtnl import Rtnl

HOST_PREFIX = "tb"


def host_name(root: str, box: str, index: int) -> str:
    """A host-side name unique to (state root, box, interface): "tb" + 8 hex + index, at most
    15 characters. Two roots may hold boxes of the same name, hence the root in the hash."""
    digest = fnv1a(root + "\0" + box)
    return f"{HOST_PREFIX}{digest:08x}{index}"[:15]


def fnv1a(text: str) -> int:
    """32-bit FNV-1a: stable across processes (unlike hash()), and no import (hashlib loads
    OpenSSL, ~4 ms). A clash is caught by the kernel (EEXIST); with 32 bits the odds stay
    below 1% up to ~9000 boxes."""
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def create(nl: Rtnl, name: str, peer: str, netns_fd: int, master: int | None) -> None:
    try:
        nl.add_veth(name, peer, netns_fd, master)
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise NetworkError(f"host interface {name!r} already exists") from None
        raise NetworkError(f"create veth {name}: {e.strerror or e}") from None


def address_host_end(nl: Rtnl, name: str, addr: Cidr) -> None:
    link = nl.link(name)
    if link is None:
        raise NetworkError(f"veth {name} vanished while it was being set up")
    nl.add_address(link.index, addr, f"address {addr} on {name}")


def loopback_up(nl: Rtnl, loopback: str) -> None:
    try:
        nl.set_up(loopback)
    except OSError as e:
        raise NetworkError(f"loopback {loopback!r} in the box: {e.strerror}") from None


def configure_box(nl: Rtnl, peer: str, addr: Cidr, routes: tuple[Route, ...]) -> None:
    """Inside the box: the peer up with its address, then its routes."""
    nl.set_up(peer)
    link = nl.link(peer)
    if link is None:
        raise NetworkError(f"{peer} did not appear in the box")
    try:
        nl.add_address(link.index, addr, f"address {addr} on {peer}")
        for r in routes:
            gw = ip4.fmt(r.gateway) if r.gateway is not None else "-"
            nl.add_route(r.subnet, r.gateway, link.index, f"route {r.subnet} via {gw} in the box")
    except OSError as e:
        raise NetworkError(str(e.strerror or e)) from None


def remove(name: str, wait: float = 0.05) -> None:
    """Make sure the host end `name` is gone.

    Once the box's last process has exited, the kernel tears its network namespace down,
    veth pair included, within a few ms. Deleting the link ourselves costs ~14 ms
    (RTM_DELLINK waits for an RCU grace period in the caller) and needs pyroute2, so watch
    sysfs for `wait` seconds first; delete it for real only if it stays (a namespace kept
    alive by someone else)."""
    path = f"/sys/class/net/{name}"
    deadline = time.monotonic() + wait
    delay = 0.0005
    while os.path.exists(path):
        if time.monotonic() > deadline:
            from tuibox.runtime.network import rtnl

            with rtnl.Rtnl() as nl:
                nl.delete_link(name)
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.002)
