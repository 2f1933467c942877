"""Network debris of boxes that are gone or whose record is unreadable (destroy --force, gc).

Found from what the network keeps itself, not from a box's record: the per-bridge lease
stores (bridgestore.py) name each lease's owner (state root + box), and a box's host-side
veth name is derived from (state root, box, index). Releasing goes through
`stage.leave_by_name`, so the last box out of any root still removes the bridge's nft table,
and another root's lease of a box with the same name is never touched.
"""

from __future__ import annotations

import os

from tuibox.runtime.network import bridgestore, ip4, stage, veth
from tuibox.runtime.network.bridgestore import LEGACY_NET_DIR, RUN_DIR, BridgeStore


def held_leases(root: str, box: str | None = None) -> list[tuple[str, str, str]]:
    """(bridge, address, box) of every lease this state root owns, or only `box`'s."""
    names: set[str] = set(bridgestore.bridges())
    try:
        names.update(os.listdir(os.path.join(root, LEGACY_NET_DIR)))
    except (FileNotFoundError, NotADirectoryError):
        pass
    out = []
    for bridge in sorted(names):
        if not os.path.isdir(os.path.join(RUN_DIR, bridge)) and not os.path.isdir(
            os.path.join(root, LEGACY_NET_DIR, bridge, "leases")
        ):
            continue  # nothing to look at: do not make a store for it
        try:
            with BridgeStore(bridge).locked() as shared:
                shared.migrate(root)
                leases = shared.leases(root).list()
        except OSError:
            continue
        for lease in leases:
            if lease.root == root and (box is None or lease.box == box):
                out.append((bridge, ip4.fmt(lease.address), lease.box))
    return out


def leftover_veths(root: str, box: str) -> list[str]:
    """Host ends named after `box` (interfaces 0-3) that still exist."""
    names = [veth.host_name(root, box, i) for i in range(4)]
    return [n for n in names if os.path.exists(f"/sys/class/net/{n}")]


def release_box(root: str, box: str) -> list[str]:
    """Release every lease `box` of this root holds and remove its host veths; returns what
    was done. Raises what `stage.leave_by_name` raises (ResourceTeardownError, naming each
    resource that could not be removed)."""
    done = [f"lease {a} on {b}" for b, a, _ in held_leases(root, box)]
    done += [f"veth {n}" for n in leftover_veths(root, box)]
    stage.leave_by_name(root, box)
    return done
