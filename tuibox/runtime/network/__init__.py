"""Box networking, done by the parent on the host once the box's network namespace exists.

    netconf.py   netconf.json, network definitions and -p values -> validated models (pure)
    ipam.py      address leases: one O_EXCL file per address, naming owner root and box
    bridgestore.py  a bridge's host-wide state, shared by state roots: lock, leases, table mark
    netstore.py  per-root network definitions (network.json), the list of networks
    rtnl.py      rtnetlink requests built with pyroute2's message classes (lean import)
    bridge.py    the bridge: find or create it, its gateway address, route clash check
    veth.py      the veth pair: host end on the bridge, peer configured inside the box
    nat.py       nftables (libnftables in-process): per-network table, ip_forward
    ports.py     published ports: DNAT map elements, host port checks
    files.py     /etc/hosts and /etc/resolv.conf of a box, rewritten in place
    stage.py     the create/destroy hooks (box.Stage) tying these together
    manage.py    `tuibox network ls/rm/create/reload` and `tuibox port`

Only stage.py is imported on every run (it registers the hooks); everything else, pyroute2
included, is imported when a box asks for a network.
"""
