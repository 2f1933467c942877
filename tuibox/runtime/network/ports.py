"""Published ports: `-p [IP:]HOST:BOX[/proto]` as elements of the network table's DNAT maps.

`ports_any` is keyed by (proto, host port): every local address. `ports_addr` is keyed by
(host address, proto, host port), e.g. 127.0.0.1 only. Both map to (box address, box port).
`create element` fails if the key exists, so two boxes cannot take one port of one table.

Before publishing, under the host lock, a port is refused if any tuibox table on the host
already publishes it (with an overlapping address), or if a host process listens on it: a
DNAT rule would silently steal that process's traffic.
"""

from __future__ import annotations

from tuibox.runtime.errors import NetworkError, ResourceTeardownError
from tuibox.runtime.network import ip4, nat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from tuibox.runtime.network.ipam import Lease
    from tuibox.runtime.network.netconf import PortMapping


def _key(p: PortMapping) -> tuple[str, str]:
    """(map, key) of a mapping."""
    if p.host_ip is None:
        return "ports_any", f"{p.proto} . {p.host_port}"
    return "ports_addr", f"{ip4.fmt(p.host_ip)} . {p.proto} . {p.host_port}"


def published(nft: nat.Nft) -> list[tuple[str, int | None, str, int]]:
    """(table, host address or None, proto, host port) of every tuibox-published port."""
    out: list[tuple[str, int | None, str, int]] = []
    for item in nft.json("list maps ip"):
        m = item.get("map")
        if not m or not str(m.get("table", "")).startswith(nat.TABLE_PREFIX):
            continue
        for elem in m.get("elem") or ():
            key = elem[0]["concat"] if isinstance(elem, list) else None
            if not key:
                continue
            if m.get("name") == "ports_any" and len(key) == 2:
                out.append((m["table"], None, str(key[0]), int(key[1])))
            elif m.get("name") == "ports_addr" and len(key) == 3:
                out.append((m["table"], ip4.parse(str(key[0])), str(key[1]), int(key[2])))
    return out


def _check_host_listener(p: PortMapping) -> None:
    import socket  # only when publishing (~4 ms); unpublish does not need it

    kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip4.fmt(p.host_ip) if p.host_ip is not None else "0.0.0.0", p.host_port))
    except OSError as e:
        if e.errno == 98:  # EADDRINUSE
            raise NetworkError(
                f"--publish {p}: port {p.host_port}/{p.proto} is in use on the host"
            ) from None
        if e.errno == 99:  # EADDRNOTAVAIL
            raise NetworkError(
                f"--publish {p}: {ip4.fmt(p.host_ip or 0)} is not a host address"
            ) from None
        raise
    finally:
        s.close()


def publish(nft: nat.Nft, table: str, ports: Sequence[PortMapping], box_ip: int) -> list[str]:
    """Add the DNAT elements; returns what was added (for `unpublish`). Nothing is left
    behind when one of them fails."""
    done: list[PortMapping] = []
    with nat.HostLock():
        taken = published(nft)
        for p in ports:
            for _, addr, proto, port in taken:
                if (
                    proto == p.proto
                    and port == p.host_port
                    and (addr is None or p.host_ip is None or addr == p.host_ip)
                ):
                    raise NetworkError(
                        f"--publish {p}: host port {p.host_port}/{p.proto} is already published"
                    )
            _check_host_listener(p)
        try:
            for p in ports:
                name, key = _key(p)
                nft.run(
                    f"create element ip {table} {name} "
                    f"{{ {key} : {ip4.fmt(box_ip)} . {p.box_port} }}\n"
                )
                done.append(p)
        except NetworkError:
            unpublish(nft, table, [str(p) for p in done])
            raise
    return [str(p) for p in done]


def unpublish(nft: nat.Nft, table: str, ports: Sequence[str]) -> list[ResourceTeardownError]:
    """Delete the elements; one ResourceTeardownError per port that is still there."""
    from tuibox.runtime.network.netconf import parse_port

    failed = []
    for text in ports:
        name, key = _key(parse_port(text))
        try:
            nft.run(f"delete element ip {table} {name} {{ {key} }}\n")
        except NetworkError as e:
            if not nat.gone(e):  # else already gone, with its table (a flush, a retry)
                failed.append(ResourceTeardownError(f"published port {text} ({table})", e.message))
        except OSError as e:
            failed.append(ResourceTeardownError(f"published port {text} ({table})", str(e)))
    return failed


def restore_script(nft: nat.Nft, table: str, leases: Iterable[Lease]) -> tuple[str, list[str]]:
    """`add element` lines for the ports recorded in `leases` (to re-make a table after a
    flush or a reboot), and the ports skipped because another tuibox table took them since.
    Call it under the host lock."""
    from tuibox.runtime.network.netconf import parse_port

    taken = [t for t in published(nft) if t[0] != table]
    lines, skipped = [], []
    for lease in leases:
        for text in lease.ports:
            p = parse_port(text)
            if any(
                proto == p.proto
                and port == p.host_port
                and (addr is None or p.host_ip is None or addr == p.host_ip)
                for _, addr, proto, port in taken
            ):
                skipped.append(f"{text} of box {lease.box}")
                continue
            name, key = _key(p)
            lines.append(
                f"add element ip {table} {name} "
                f"{{ {key} : {ip4.fmt(lease.address)} . {p.box_port} }}\n"
            )
    return "".join(lines), skipped
