"""A box's /etc/hosts and /etc/resolv.conf, kept in its state dir and bind-mounted in.

When a box joins or leaves a network the hosts files of the other boxes on it are rewritten
*in place* (truncate and write the same inode): a bind mount pins the inode, so a rename
would leave the box looking at the old file.
"""

from __future__ import annotations

import os

from tuibox.runtime.network import ip4

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from tuibox.runtime.network.netconf import Dns

LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
HOST_RESOLV = "/etc/resolv.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"
# docker's fallback when the host only lists resolvers on its own loopback.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def _names(name: str, hostname: str) -> str:
    return hostname if hostname == name else f"{hostname} {name}"


def render_hosts(
    own: Iterable[int], name: str, hostname: str, peers: Iterable[tuple[int, str, str]]
) -> str:
    """localhost lines, the box's own addresses, then (address, box, hostname) of its peers."""
    lines = [LOCALHOST]
    own = list(own)
    if own:
        lines.extend(f"{ip4.fmt(a)}\t{_names(name, hostname)}\n" for a in own)
    else:
        lines.append(f"127.0.1.1\t{hostname}\n")
    lines.extend(f"{ip4.fmt(a)}\t{_names(box, host)}\n" for a, box, host in peers if box != name)
    return "".join(lines)


def render_resolv(dns: Dns | None) -> str:
    """From the netconf's `dns`; without one, the host's resolvers (minus loopback ones)."""
    if dns is not None:
        lines = [f"nameserver {s}\n" for s in dns.nameservers]
        if dns.domain:
            lines.append(f"domain {dns.domain}\n")
        if dns.search:
            lines.append(f"search {' '.join(dns.search)}\n")
        return "".join(lines)
    servers, rest = _host_resolv(HOST_RESOLV)
    if not servers and os.path.exists(RESOLVED_UPSTREAM):
        # systemd-resolved: its stub (127.0.0.53) is not reachable from a box.
        servers, _ = _host_resolv(RESOLVED_UPSTREAM)
    if not servers:
        servers = list(FALLBACK_NAMESERVERS)
    return "".join(f"nameserver {s}\n" for s in servers) + "".join(rest)


def _host_resolv(path: str) -> tuple[list[str], list[str]]:
    servers: list[str] = []
    rest: list[str] = []
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return servers, rest
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            if not (words[1].startswith("127.") or words[1] == "::1"):
                servers.append(words[1])
        elif words[0] in ("search", "domain", "options"):
            rest.append(" ".join(words) + "\n")
    return servers, rest


def write_in_place(path: str, text: str, create: bool = False) -> bool:
    """Truncate and rewrite `path` (same inode); False if it is gone and not to be created."""
    flags = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return True
