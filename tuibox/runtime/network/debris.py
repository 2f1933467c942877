"""Network debris of boxes that are gone or whose record is unreadable (destroy --force, gc).

Found from what the network keeps itself, not from a box's record: leases name their box,
and a box's host-side veth name is derived from (state root, box, index). Leaving goes
through `stage.leave`, so the last box out still removes the network's nft table.
"""

from __future__ import annotations

import os

from tuibox.runtime.network import ip4, ipam, stage, veth
from tuibox.runtime.network.netstore import NetStore
from tuibox.runtime.state import BoxRecord


def held_leases(root: str, box: str | None = None) -> list[tuple[str, str, str]]:
    """(bridge, address, box) of every lease in this state root, or only `box`'s."""
    store = NetStore(root)
    try:
        bridges = sorted(os.listdir(store.path))
    except FileNotFoundError:
        return []
    out = []
    for bridge in bridges:
        for lease in ipam.Leases(store.dir(bridge)).list():
            if box is None or lease.box == box:
                out.append((bridge, ip4.fmt(lease.address), lease.box))
    return out


def leftover_veths(root: str, box: str) -> list[str]:
    """Host ends named after `box` (interfaces 0-3) that still exist."""
    names = [veth.host_name(root, box, i) for i in range(4)]
    return [n for n in names if os.path.exists(f"/sys/class/net/{n}")]


def release_box(root: str, box: str) -> list[str]:
    """Release every lease `box` holds and remove its host veths; returns what was done.

    Raises what `stage.leave` raises (the caller reports it as one failed resource)."""
    done = []
    by_bridge: dict[str, list[str]] = {}
    for bridge, address, _owner in held_leases(root, box):
        by_bridge.setdefault(bridge, []).append(address)
    for bridge, addresses in by_bridge.items():
        fake = BoxRecord(box, "stopped", "", "")
        fake.extra[stage.NAME] = {
            "bridge": bridge,
            "leases": addresses,
            "interfaces": [],
            "ports": [],
            "table": None,
        }
        stage.leave(root, fake)
        done += [f"lease {a} on {bridge}" for a in addresses]
    for name in leftover_veths(root, box):
        veth.remove(name)
        done.append(f"veth {name}")
    return done
