"""The network stage: what `create` does for a box that asked for a network, and its undoing.

Imported through the stage table (stages/order.py) only when a request carries
options["network"], or when a destroyed box's record lists the stage.

    prepare (before the fork)  validate; hand the bridge to the netlink worker (helper.py,
                               forked by the CLI or here), which imports pyroute2 and makes
                               sure of the bridge meanwhile; under the
                               network's lock: lease addresses, make the nft table (first box
                               of a NAT network) and publish ports, write /etc/hosts and
                               /etc/resolv.conf, update the hosts files of the other boxes
    attach  (namespaces exist) the worker moves the veth peers into the box and configures
                               loopback, addresses and routes there
    teardown / undo            `leave`: the mirror of both, tolerant of a half-done join;
                               raises ResourceTeardownError naming every resource it could not
                               remove (a second call retries them). `leave_by_name` does
                               the same from the bridge stores' leases, without a record.

Leases, the table mark and the lock are the bridge's, shared by every state root
(bridgestore.py).

This process itself imports pyroute2 only for a netconf asking for an "auto" address (the
bridge's subnet is needed before the fork), and on a few rare paths.

req.options["network"] is a network name ("default", or one made by `tuibox network
create`), or a dict {"name": ..., "netconf": NetConf or path, "ports": ["8080:80", ...],
"worker": a Helper already started}.

record.extra gets "address" (the first interface's, no prefix), "ports" (["8080:80/tcp"])
and "network" (what `leave` needs: bridge, interfaces, leases, table).
"""

from __future__ import annotations

import os

from tuibox.runtime.errors import NetworkError, ResourceTeardownError, SpecError
from tuibox.runtime.network import files, ip4, ipam, nat, netconf, veth
from tuibox.runtime.network.bridgestore import BridgeStore, boot_id
from tuibox.runtime.network.helper import Helper
from tuibox.runtime.network.ip4 import Cidr
from tuibox.runtime.network.netconf import Interface, NetConf, NetworkDef, Route
from tuibox.runtime.network.netstore import NetState, NetStore
from tuibox.runtime.stages.base import Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.stages.base import SetupContext
    from tuibox.runtime.state import BoxRecord

NAME = "network"
HINT = "pick another subnet with TUIBOX_SUBNET (and bridge with TUIBOX_BRIDGE)"

# box name -> its netlink worker, from prepare to attach
_HELPERS: dict[str, Helper] = {}


def wanted(req: CreateRequest) -> bool:
    opt = req.options.get(NAME)
    return opt is not None and opt != "none"


# ---- the request ----------------------------------------------------------------------------


def _options(req: CreateRequest) -> dict[str, Any]:
    opt = req.options[NAME]
    if isinstance(opt, str):
        return {"name": opt}
    if not isinstance(opt, dict):
        raise SpecError("network option must be a network name or a dict")
    return opt


def resolve(root: str, name: str) -> NetworkDef:
    """A tuibox network by name: `default` (from the environment), else `network create`'s."""
    if name == netconf.DEFAULT_NETWORK:
        return netconf.default_network()
    s = NetStore(root).find(name)
    if s is None or s.kind != "tuibox" or s.subnet is None:
        raise SpecError(f"--network {name!r}: no such network (see 'tuibox network ls')")
    return netconf.network_def(s.name, s.bridge, s.subnet, s.gateway, s.nat, f"network {name}")


def as_netconf(net: NetworkDef) -> NetConf:
    """A tuibox network, said the way a netconf would say it."""
    iface = Interface(
        "veth", None, netconf.BOX_IFNAME, None, None, (Route(Cidr(0, 0), net.gateway),)
    )
    return NetConf(f"network {net.name}", "lo", net.bridge, (iface,), None)


def _check_namespace(req: CreateRequest) -> None:
    ns = req.spec.namespace("network")
    if ns is None:
        raise SpecError(
            "a network needs the box to have its own network namespace "
            "(config.json: linux.namespaces has no network entry)"
        )
    if ns.path:
        raise SpecError(
            f"a network needs a new network namespace, not the existing {ns.path} "
            "(config.json: linux.namespaces network path)"
        )


# ---- prepare ------------------------------------------------------------------------------


def prepare(ctx: SetupContext) -> None:
    req, record = ctx.request, ctx.record
    root = ctx.runtime.root.path
    opts = _options(req)
    _check_namespace(req)
    mappings = netconf.parse_ports(opts.get("ports") or ())
    netdef: NetworkDef | None = None
    if opts.get("netconf") is not None:
        if opts.get("name") not in (None, "none"):
            raise SpecError("use either --netconf or --network, not both")
        conf = opts["netconf"]
        if not isinstance(conf, NetConf):
            conf = netconf.load_netconf(os.fspath(conf))
    else:
        netdef = resolve(root, str(opts.get("name") or netconf.DEFAULT_NETWORK))
        conf = as_netconf(netdef)
    if mappings and conf.bridge is None:
        raise SpecError("--publish needs a bridge: --network, or a netconf with a bridge model")
    if conf.bridge is not None and netdef is None:
        from tuibox.runtime.network import bridge as br

        # Before anything exists, and without netlink: the bridge must be there already.
        if not br.exists(conf.bridge):
            raise NetworkError(
                f"{conf.source}: model.bridge_name: bridge {conf.bridge!r} does not exist "
                "(create it first, or use --network default)"
            )
        if not br.is_bridge(conf.bridge):
            raise NetworkError(f"{conf.source}: model.bridge_name: {conf.bridge!r} is not a bridge")
    # The netlink worker: forked by the CLI already if it knew early (cli/network.py).
    helper = opts.get("worker")
    if not isinstance(helper, Helper):
        helper = Helper.start()
    ctx.undo.callback(helper.finish)
    _HELPERS[record.id] = helper
    ctx.undo.callback(_HELPERS.pop, record.id, None)
    if netdef is not None:
        helper.ensure(
            {
                "root": root,
                "name": netdef.name,
                "bridge": netdef.bridge,
                "subnet": str(netdef.subnet),
                "gateway": ip4.fmt(netdef.gateway),
                "nat": netdef.nat,
                "hint": HINT,
            }
        )

    hostname = record.hostname or req.name
    ifaces: list[dict[str, Any]] = [
        {
            "host": f.name or veth.host_name(root, req.name, i),
            "box": f.peer_name,
            "address": str(f.peer_ip) if f.peer_ip is not None else None,
            "host_address": str(f.ip) if f.ip is not None else None,
            "routes": [
                [str(r.subnet), ip4.fmt(r.gateway) if r.gateway is not None else None]
                for r in f.routes
            ],
        }
        for i, f in enumerate(conf.interfaces)
    ]
    net: dict[str, Any] = {
        "name": netdef.name if netdef is not None else conf.bridge,
        "bridge": conf.bridge,
        "netconf": None if netdef is not None else conf.source,
        "loopback": conf.loopback_name,
        "interfaces": ifaces,
        "leases": [],
        "ports": [],
        "table": None,
    }
    record.extra[NAME] = net
    ctx.undo.callback(_leave_quietly, root, record)
    if conf.bridge is not None:
        prefer = opts.get("prefer")  # a stopped box started again: the address it had
        _join_bridge(root, ctx.box_dir, record, conf, netdef, mappings, hostname, prefer, req)
    else:
        _write_own_files(ctx.box_dir, record, [], hostname, conf)
    first = ifaces[0]["address"] if ifaces else None
    record.extra["address"] = first.partition("/")[0] if first else None
    record.extra["ports"] = list(net["ports"])
    ctx.plan.etc_files["/etc/resolv.conf"] = os.path.join(ctx.box_dir, "resolv.conf")


def _bridge_pool(bridge: str) -> tuple[Cidr | None, list[int]]:
    """A netconf bridge's subnet and addresses (for "auto"): the one netlink query made in
    this process."""
    from tuibox.runtime.network import bridge as br
    from tuibox.runtime.network import rtnl

    with rtnl.Rtnl() as nl:
        link = nl.link(bridge)
        if link is None:
            raise NetworkError(f"bridge {bridge!r} vanished")
        return br.bridge_subnet(nl, link)


def _join_bridge(
    root: str,
    box_dir: str,
    record: BoxRecord,
    conf: NetConf,
    netdef: NetworkDef | None,
    mappings: tuple[netconf.PortMapping, ...],
    hostname: str,
    prefer: str | None = None,
    req: CreateRequest | None = None,
) -> None:
    net = record.extra[NAME]
    bridge = str(conf.bridge)
    store = NetStore(root)
    with BridgeStore(bridge).locked() as shared:
        shared.migrate(root)
        state = store.read(bridge)
        old = state.as_dict() if state is not None else None
        subnet: Cidr | None
        if netdef is not None:
            if state is None or state.kind != "tuibox":
                state = NetState(netdef.name, bridge, "tuibox")
            state.subnet, state.gateway = str(netdef.subnet), ip4.fmt(netdef.gateway)
            state.nat = netdef.nat
            subnet, reserved = netdef.subnet, [netdef.gateway]
        else:
            if state is None:
                state = NetState(bridge, bridge, "netconf")
            subnet, reserved = None, []
            if any(f.peer_ip is None for f in conf.interfaces):
                subnet, reserved = _bridge_pool(bridge)
                state.subnet = str(subnet) if subnet is not None else state.subnet
        if state.as_dict() != old:
            store.write(state)  # only when it changed: each write is an fsync
        net["gateway"] = state.gateway
        leases = shared.leases(root)
        alone = not leases.list()  # the bridge's first box (of any root): it makes the table
        for i, (f, iface) in enumerate(zip(conf.interfaces, net["interfaces"], strict=True)):
            where = f"{conf.source}: interfaces[{i}]"
            if f.peer_ip is not None:
                addr = f.peer_ip
                if addr.ip in reserved:
                    raise NetworkError(f"{where}.peer_ip: {addr.address} is the bridge's address")
                if not leases.claim(addr.ip, record.id, hostname):
                    holder = leases.holder(addr.ip)
                    by = ""
                    if holder is not None:
                        by = f" by box {holder.box!r}"
                        if holder.root != root:
                            by += f" of state root {holder.root}"
                    raise NetworkError(
                        f"{where}.peer_ip: address {addr.address} is already in use{by}"
                    )
            else:
                if subnet is None:
                    raise NetworkError(
                        f'{where}.peer_ip: "auto" needs an IPv4 address on bridge {bridge!r}'
                    )
                got = None
                if prefer and i == 0:
                    got = _claim_again(leases, subnet, record.id, hostname, reserved, prefer)
                if got is None:
                    got = _allocate(leases, subnet, record.id, hostname, reserved)
                    if prefer and i == 0 and req is not None:
                        req.warnings.append(
                            f"box {record.id!r}: address {prefer} is taken, it now has "
                            f"{ip4.fmt(got)}"
                        )
                addr = Cidr(got, subnet.prefix)
                iface["address"] = str(addr)
            net["leases"].append(ip4.fmt(addr.ip))
            for j, (_, gw) in enumerate(iface["routes"]):
                if gw is not None:
                    netconf.check_gateway(ip4.parse(gw), addr, f"{where}.routes[{j}].gateway")
        _firewall(shared, root, net, state, subnet or _lease_subnet(net), mappings, alone)
        if net["ports"]:
            leases.set_ports(ip4.parse(net["leases"][0]), record.id, net["ports"])
        peers = _peers(leases.list(), root)
        _write_own_files(box_dir, record, peers, hostname, conf)
        _update_peers(root, record.id, peers)


def _peers(leases: list[ipam.Lease], root: str) -> list[tuple[int, str, str]]:
    """(address, box, hostname) of the boxes of `root` on the bridge: names are a state
    root's own (two roots may each have a box `web`), so /etc/hosts lists only those. A lease
    left by a crash (its box directory gone) is no peer."""
    return [
        (lease.address, lease.box, lease.hostname)
        for lease in leases
        if lease.root == root and lease.box_exists()
    ]


def _lease_subnet(net: dict[str, Any]) -> Cidr:
    return Cidr.parse(net["interfaces"][0]["address"]).subnet


def _claim_again(
    leases: ipam.Leases, subnet: Cidr, box: str, hostname: str, reserved: list[int], text: str
) -> int | None:
    """The address a stopped box had, if it is still free (or still its own: a start that
    died before its record named the lease); None otherwise."""
    try:
        address = ip4.parse(text)
    except ValueError:
        return None
    edges = (subnet.network, subnet.broadcast) if subnet.prefix < 31 else ()
    if address not in subnet or address in reserved or address in edges:
        return None
    if leases.claim(address, box, hostname):
        return address
    holder = leases.holder(address)
    if holder is not None and holder.box == box and holder.root == leases.root:
        return address
    return None


def _allocate(
    leases: ipam.Leases, subnet: Cidr, box: str, hostname: str, reserved: list[int]
) -> int:
    try:
        return leases.allocate(subnet, box, hostname, reserved)
    except NetworkError:
        # Perhaps leases of boxes that no longer exist (a crash), in any root: collect them
        # (the bridge's lock is held) and try once more.
        if not leases.collect(ipam.Lease.box_exists):
            raise
        return leases.allocate(subnet, box, hostname, reserved)


def _firewall(
    shared: BridgeStore,
    root: str,
    net: dict[str, Any],
    state: NetState,
    subnet: Cidr,
    mappings: tuple[netconf.PortMapping, ...],
    alone: bool,
) -> None:
    """The bridge's nft table (made by its first box, for NAT; or by the first box that
    publishes a port), then this box's ports. The table mark says the table was made, in
    which boot; the last box to leave deletes it (see _leave_bridge).

    The mark is not trusted alone: after a reboot (another boot id) or a firewall flush (the
    kernel has no such table) the table is made again, with the ports of the boxes already
    on the bridge (their leases keep them)."""
    if not (state.nat or mappings):
        return
    nft = nat.Nft.get()
    table = nat.table_name(shared.bridge)
    mark = shared.read_mark()
    if alone or mark is None or mark.boot != boot_id() or not nat.table_exists(nft, table):
        others = [] if alone else [x for x in shared.leases(root).list() if x.box_exists()]
        remake_table(nft, shared, table, subnet, state.nat, others)
    net["table"] = table
    if mappings:
        from tuibox.runtime.network import ports

        box_ip = ip4.parse(net["leases"][0])
        net["ports"] = ports.publish(nft, table, mappings, box_ip)


def remake_table(
    nft: nat.Nft,
    shared: BridgeStore,
    table: str,
    subnet: Cidr,
    with_nat: bool,
    leases: list[ipam.Lease],
) -> list[str]:
    """Make the bridge's table anew with the ports recorded in `leases`, in one transaction;
    mark it. Returns the ports skipped (another tuibox table publishes them now). Call it
    with the bridge's lock held."""
    from tuibox.runtime.network import ports

    with nat.HostLock():
        elements, skipped = ports.restore_script(nft, table, leases)
        nat.create_table(nft, table, shared.bridge, subnet, with_nat, elements)
    shared.write_mark(str(subnet), with_nat)
    if with_nat:
        nat.enable_forwarding()
    return skipped


def _write_own_files(
    box_dir: str,
    record: BoxRecord,
    peers: list[tuple[int, str, str]],
    hostname: str,
    conf: NetConf,
) -> None:
    own = [Cidr.parse(i["address"]).ip for i in record.extra[NAME]["interfaces"] if i["address"]]
    files.write_in_place(
        os.path.join(box_dir, "hosts"),
        files.render_hosts(own, record.id, hostname, peers),
        create=True,
    )
    files.write_in_place(
        os.path.join(box_dir, "resolv.conf"), files.render_resolv(conf.dns), create=True
    )


def _update_peers(root: str, name: str, peers: list[tuple[int, str, str]]) -> None:
    """Rewrite the hosts file of every other box on the network (in place: bind-mounted)."""
    by_box: dict[str, list[int]] = {}
    hostnames: dict[str, str] = {}
    for addr, box, host in peers:
        by_box.setdefault(box, []).append(addr)
        hostnames[box] = host
    for box, addrs in by_box.items():
        if box == name:
            continue
        text = files.render_hosts(addrs, box, hostnames[box], peers)
        files.write_in_place(os.path.join(root, box, "hosts"), text)


# ---- attach -------------------------------------------------------------------------------


def attach(ctx: SetupContext) -> None:
    net = ctx.record.extra[NAME]
    helper = _HELPERS.pop(ctx.record.id)
    created = helper.attach(
        {
            "pid": ctx.pid,
            "bridge": net["bridge"],
            "loopback": net["loopback"],
            "interfaces": net["interfaces"],
        }
    )
    for iface in net["interfaces"]:
        if iface["host"] in created:
            iface["created"] = True


# ---- leave (teardown and undo) ------------------------------------------------------------


def teardown(runtime: Runtime, record: BoxRecord, box_dir: str) -> None:
    leave(runtime.root.path, record)


def _leave_quietly(root: str, record: BoxRecord) -> None:
    try:
        leave(root, record)
    except Exception:
        pass  # undo must go on with the other steps


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def leave(root: str, record: BoxRecord) -> None:
    """Undo whatever part of a join is recorded in record.extra["network"].

    Every resource is tried even when one fails; ResourceTeardownError then names each that is left
    (its `failures`). Nothing here depends on an earlier attempt: a second call retries."""
    net = record.extra.get(NAME)
    if not net:
        return
    failed: list[ResourceTeardownError] = []
    bridge = net.get("bridge")
    if bridge is not None:
        try:
            _leave_bridge(root, record.id, net, failed)
        except Exception as e:  # the bridge's lock or state: none of its parts were done
            failed.append(ResourceTeardownError(f"network state of bridge {bridge}", _why(e)))
    # Last: by now the kernel has usually removed the pair with the box's namespace.
    for iface in net.get("interfaces", ()):
        if iface.get("created"):
            try:
                veth.remove(iface["host"])
            except Exception as e:
                failed.append(ResourceTeardownError(f"veth {iface['host']}", _why(e)))
    if failed:
        raise ResourceTeardownError.of(failed)


def _leave_bridge(
    root: str, box: str, net: dict[str, Any], failed: list[ResourceTeardownError]
) -> None:
    bridge = net["bridge"]
    store = NetStore(root)
    with BridgeStore(bridge).locked() as shared:
        shared.migrate(root)
        table = nat.table_name(bridge)
        if net.get("ports") and net.get("table"):
            from tuibox.runtime.network import ports

            failed.extend(ports.unpublish(nat.Nft.get(), net["table"], net["ports"]))
        leases = shared.leases(root)
        for address in net.get("leases", ()):
            try:
                leases.release(ip4.parse(address), box)
            except OSError as e:
                failed.append(ResourceTeardownError(f"lease {address} on {bridge}", _why(e)))
        remaining = leases.list()
        try:
            _update_peers(root, box, _peers(remaining, root))
        except OSError as e:
            failed.append(ResourceTeardownError("hosts files of the other boxes", _why(e)))
        if any(x.box_exists() for x in remaining):
            return  # the bridge still has boxes, perhaps of other state roots: the table stays
        # (A lease whose box is gone, left by a crash, keeps nothing alive; freeing it is
        # for `gc`, `network rm` or a pool that runs dry.)
        # The last box left: the bridge's table goes (and ip_forward, if tuibox set it),
        # whichever box or root made it.
        if shared.read_mark() is not None:
            # The mark goes last: while it stays, a retry deletes the table again (a no-op if
            # it is gone) and gives ip_forward back.
            try:
                nft = nat.Nft.get()
                nat.delete_table(nft, table)
            except Exception as e:
                failed.append(ResourceTeardownError(f"nft table {table}", _why(e)))
            else:
                try:
                    nat.release_forwarding(nft)
                    shared.drop_mark()
                except Exception as e:
                    failed.append(ResourceTeardownError("net.ipv4.ip_forward", _why(e)))
        try:
            state = store.read(bridge)
            if state is None or state.kind == "netconf":
                store.remove(bridge)  # nothing to remember about a bridge tuibox does not own
        except Exception as e:
            failed.append(ResourceTeardownError(f"network state of bridge {bridge}", _why(e)))


def leave_by_name(root: str, box: str) -> None:
    """Tear a box's network down without its record (a corrupt or missing state.json, a
    crash before the first write; `destroy --force`, `gc`): from the leases that name it as
    owner in every bridge's store, the ports those leases record, then the host ends of its
    veths (named from root and box). A netconf's point-to-point pair or a host end named in
    the netconf is not found this way; the kernel deletes those with the box's namespace.
    Raises ResourceTeardownError as `leave` does."""
    from tuibox.runtime.network import bridgestore
    from tuibox.runtime.network.bridgestore import LEGACY_NET_DIR, RUN_DIR

    failed: list[ResourceTeardownError] = []
    bridges: set[str] = set()
    bridges.update(bridgestore.bridges())
    try:
        bridges.update(os.listdir(os.path.join(root, LEGACY_NET_DIR)))
    except (FileNotFoundError, NotADirectoryError):
        pass
    count = 0
    for bridge in sorted(bridges):
        if not os.path.isdir(os.path.join(RUN_DIR, bridge)) and not os.path.isdir(
            os.path.join(root, LEGACY_NET_DIR, bridge, "leases")
        ):
            continue
        try:
            with BridgeStore(bridge).locked() as shared:
                shared.migrate(root)
                mine = [x for x in shared.leases(root).list() if x.box == box and x.root == root]
        except Exception as e:
            failed.append(ResourceTeardownError(f"network state of bridge {bridge}", _why(e)))
            continue
        if not mine:
            continue
        count += len(mine)
        net = {
            "bridge": bridge,
            "leases": [ip4.fmt(x.address) for x in mine],
            "ports": [p for x in mine for p in x.ports],
            "table": nat.table_name(bridge),
        }
        try:
            _leave_bridge(root, box, net, failed)
        except Exception as e:
            failed.append(ResourceTeardownError(f"network state of bridge {bridge}", _why(e)))
    for i in range(max(count, 1)):
        name = veth.host_name(root, box, i)
        if os.path.exists(f"/sys/class/net/{name}"):
            try:
                veth.remove(name)
            except Exception as e:
                failed.append(ResourceTeardownError(f"veth {name}", _why(e)))
    if failed:
        raise ResourceTeardownError.of(failed)


STAGE = Stage(NAME, wanted, prepare, attach, teardown)
