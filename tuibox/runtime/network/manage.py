"""Networks as a user manages them: `tuibox network ls / create / rm` and `tuibox port`.

tuibox deletes only what it made: a bridge whose NetState says `created_bridge`, and tables
named `tuibox-*`. A network still holding boxes is not removed.
"""

from __future__ import annotations

from tuibox.runtime.errors import NetworkError, SpecError
from tuibox.runtime.network import ip4, ipam, netconf
from tuibox.runtime.network.bridgestore import BridgeStore
from tuibox.runtime.network.netstore import NetState, NetStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.state import BoxRecord


def list_networks(root: str) -> list[dict[str, Any]]:
    """Networks known in this state root; `default` appears once it has been used."""
    out = []
    store = NetStore(root)
    for s in store.all():
        with BridgeStore(s.bridge).locked() as shared:
            shared.migrate(root)
            leases = shared.leases(root).list()
        boxes = sorted({lease.box for lease in leases if lease.root == root})
        out.append(
            {
                "name": s.name,
                "bridge": s.bridge,
                "kind": s.kind,
                "subnet": s.subnet,
                "gateway": s.gateway,
                "nat": s.nat,
                "created_bridge": s.created_bridge,
                "boxes": boxes,
            }
        )
    return out


def check_network_name(name: str) -> None:
    """The rule for a new network's name (the TUI's form checks it before anything runs)."""
    if name in (netconf.DEFAULT_NETWORK, "none", "host") or not name.replace("-", "").isalnum():
        raise SpecError(f"network create: invalid or reserved network name {name!r}")


def create_network(
    root: str, name: str, subnet: str, bridge: str | None, gateway: str | None, nat: bool
) -> dict[str, Any]:
    """Define a network; its bridge is made when its first box arrives."""
    check_network_name(name)
    bridge = bridge or ("tb-" + name)[: netconf.MAX_IFNAME]
    net = netconf.network_def(name, bridge, subnet, gateway, nat, f"network {name}")
    store = NetStore(root)
    if store.find(name) is not None:
        raise SpecError(f"network {name!r} already exists")
    with store.locked(bridge):
        if store.read(bridge) is not None:
            raise SpecError(f"bridge {bridge!r} already belongs to another network")
        store.write(NetState(name, bridge, "tuibox", str(net.subnet), ip4.fmt(net.gateway), nat))
    return net.to_json()


def remove_network(root: str, name: str) -> list[str]:
    """Remove a network with no box left: its table, its bridge if tuibox made it, its
    state. Returns notes for the user (e.g. a bridge kept because tuibox did not make it)."""
    from tuibox.runtime.network import nat, rtnl

    store = NetStore(root)
    found = store.find(name)
    if found is None:
        raise NetworkError(f"network {name!r} does not exist (see 'tuibox network ls')")
    notes = []
    with BridgeStore(found.bridge).locked() as shared:
        shared.migrate(root)
        state = store.read(found.bridge)
        if state is None:
            raise NetworkError(f"network {name!r} does not exist")
        alive = [x for x in shared.leases(root).list() if x.box_exists()]
        if alive:
            names = [x.box if x.root == root else f"{x.box} (state root {x.root})" for x in alive]
            raise NetworkError(
                f"network {name!r} still has boxes: {', '.join(sorted(set(names)))} "
                "(destroy them first)"
            )
        # Leases of boxes that are gone (a crash, in any root) hold nothing any more.
        shared.leases(root).collect(ipam.Lease.box_exists)
        # Its table went with its last box; one left by a crash goes now.
        if shared.read_mark() is not None:
            nft = nat.Nft.get()
            nat.delete_table(nft, nat.table_name(state.bridge))
            shared.drop_mark()
            nat.release_forwarding(nft)
        if state.created_bridge:
            with rtnl.Rtnl() as nl:
                nl.delete_link(state.bridge)
        else:
            with rtnl.Rtnl() as nl:
                if nl.link(state.bridge) is not None:
                    notes.append(f"bridge {state.bridge} left in place: tuibox did not create it")
        store.remove(state.bridge)
    return notes


def reload_networks(root: str, names: list[str]) -> list[str]:
    """`network reload`: make the NAT and published-port rules of the named networks (all
    of this root's without names) anew, for every box on their bridges, of any state root
    (podman's `network reload`, after a firewall flush). Returns one line per network."""
    from tuibox.runtime.network import nat
    from tuibox.runtime.network.ip4 import Cidr
    from tuibox.runtime.network.stage import remake_table

    store = NetStore(root)
    if names:
        states = []
        for name in names:
            found = store.find(name)
            if found is None:
                raise NetworkError(f"network {name!r} does not exist (see 'tuibox network ls')")
            states.append(found)
    else:
        states = store.all()
    out = []
    for state in states:
        with BridgeStore(state.bridge).locked() as shared:
            shared.migrate(root)
            live = [x for x in shared.leases(root).list() if x.box_exists()]
            mark = shared.read_mark()
            with_nat = state.nat if mark is None or not mark.subnet else mark.nat
            subnet = (mark.subnet if mark is not None and mark.subnet else "") or state.subnet
            n_ports = sum(len(x.ports) for x in live)
            if not live or not (with_nat or n_ports):
                out.append(f"{state.name}: no rules to reload")
                continue
            if not subnet:
                raise NetworkError(f"network {state.name!r}: its subnet is unknown")
            nft = nat.Nft.get()
            table = nat.table_name(state.bridge)
            skipped = remake_table(nft, shared, table, Cidr.parse(subnet), with_nat, live)
            line = f"{state.name}: table {table}, {n_ports - len(skipped)} published ports"
            if skipped:
                line += f" (skipped, published by another network now: {', '.join(skipped)})"
            out.append(line)
    return out


def box_ports(record: BoxRecord) -> list[dict[str, Any]]:
    """The box's published ports: [{"box": "80/tcp", "host": "0.0.0.0:8080"}...]."""
    out = []
    for text in record.extra.get("ports") or ():
        p = netconf.parse_port(text)
        host_ip = ip4.fmt(p.host_ip) if p.host_ip is not None else "0.0.0.0"
        out.append({"box": f"{p.box_port}/{p.proto}", "host": f"{host_ip}:{p.host_port}"})
    return out
