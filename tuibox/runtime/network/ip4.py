"""IPv4 addresses as ints, and `Cidr` (an address with its prefix length).

The `ipaddress` module would do, at ~3 ms of import on the network path (it pulls in
functools' lru_cache machinery); tuibox needs a dozen lines of it.
"""

from __future__ import annotations

from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

_ALL = 0xFFFFFFFF


def parse(text: str) -> int:
    """'10.0.0.1' -> int; ValueError for anything else (no leading zeros, as ipaddress)."""
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(text)
    n = 0
    for p in parts:
        if not p.isdigit() or not p.isascii() or (len(p) > 1 and p[0] == "0") or int(p) > 255:
            raise ValueError(text)
        n = (n << 8) | int(p)
    return n


def fmt(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def mask(prefix: int) -> int:
    return (_ALL << (32 - prefix)) & _ALL


class Cidr(Plain):
    """`ip`/`prefix`: an interface address ("10.0.0.2/24") or a subnet ("10.0.0.0/24")."""

    __slots__ = ("ip", "prefix")

    def __init__(self, ip: int, prefix: int) -> None:
        self.ip = ip
        self.prefix = prefix

    @classmethod
    def parse(cls, text: str) -> Cidr:
        """'a.b.c.d/n'; ValueError when malformed."""
        head, slash, tail = text.partition("/")
        if not slash or not tail.isdigit() or not tail.isascii() or int(tail) > 32:
            raise ValueError(text)
        return cls(parse(head), int(tail))

    @property
    def network(self) -> int:
        return self.ip & mask(self.prefix)

    @property
    def broadcast(self) -> int:
        return self.network | (~mask(self.prefix) & _ALL)

    @property
    def subnet(self) -> Cidr:
        return Cidr(self.network, self.prefix)

    def is_network(self) -> bool:
        """True when there are no host bits (a subnet, not an address in it)."""
        return self.ip == self.network

    def __contains__(self, ip: int) -> bool:
        return ip & mask(self.prefix) == self.network

    def overlaps(self, other: Cidr) -> bool:
        p = min(self.prefix, other.prefix)
        return self.ip & mask(p) == other.ip & mask(p)

    def hosts(self) -> Iterator[int]:
        """Usable addresses: all but the network and broadcast ones (for /31 and /32, all)."""
        if self.prefix >= 31:
            return iter(range(self.network, self.broadcast + 1))
        return iter(range(self.network + 1, self.broadcast))

    @property
    def address(self) -> str:
        return fmt(self.ip)

    def __str__(self) -> str:
        return f"{fmt(self.ip)}/{self.prefix}"

    def __hash__(self) -> int:  # type: ignore[override]  # Plain is unhashable; values are not
        return hash((self.ip, self.prefix))
