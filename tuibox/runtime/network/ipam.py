"""Address leases: one file per address, created with O_EXCL.

    /run/tuibox-net/<bridge>/leases/<address>    "<box> <hostname>\\n"
                                                 "root <state root>\\n"
                                                 "port <mapping>\\n" for each published port

The store is the bridge's, shared by every state root (bridgestore.py): a lease names its
owner (state root and box), so a release or a collection never removes another root's lease,
and the ports line lets the nft rules be re-made from the store alone (after a flush).

The kernel's O_CREAT|O_EXCL is the whole concurrency story: twenty `tuibox run` processes
racing for addresses each win a different file, with no lock held while they scan. Leases
whose box directory has vanished (a crashed create) are collected when the pool runs dry; that
step needs the bridge's lock, since two collectors could otherwise delete a lease that was
just re-taken.
"""

from __future__ import annotations

import os

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.network import ip4
from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tuibox.runtime.network.ip4 import Cidr


class Lease(Plain):
    __slots__ = ("address", "box", "hostname", "ports", "root")

    def __init__(
        self,
        address: int,
        box: str,
        hostname: str,
        root: str = "",
        ports: tuple[str, ...] = (),
    ) -> None:
        self.address = address
        self.box = box
        self.hostname = hostname
        self.root = root  # the owner's state root; "" in a lease written before roots shared
        self.ports = ports

    def box_exists(self) -> bool:
        return bool(self.root) and os.path.isdir(os.path.join(self.root, self.box))


def _render(box: str, hostname: str, root: str, ports: Iterable[str] = ()) -> bytes:
    text = f"{box} {hostname or box}\n" + (f"root {root}\n" if root else "")
    return (text + "".join(f"port {p}\n" for p in ports)).encode()


class Leases:
    def __init__(self, net_dir: str, root: str = "") -> None:
        self.dir = os.path.join(net_dir, "leases")
        self.root = root  # the state root this view claims and releases for

    def _path(self, address: int) -> str:
        return os.path.join(self.dir, ip4.fmt(address))

    def claim(self, address: int, box: str, hostname: str = "") -> bool:
        """Take `address` for `box`; False when someone holds it already."""
        os.makedirs(self.dir, 0o700, exist_ok=True)
        try:
            fd = os.open(
                self._path(address), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
        except FileExistsError:
            return False
        try:
            os.write(fd, _render(box, hostname, self.root))
        finally:
            os.close(fd)
        return True

    def set_ports(self, address: int, box: str, ports: Iterable[str]) -> None:
        """Record the ports published to this lease (replaced whole: readers never see half)."""
        lease = self._read(ip4.fmt(address))
        if lease is None or not self._mine(lease, box):
            return
        from tuibox.runtime.state import atomic_write

        # Its temp file ("<address>.<pid>.tmp") never parses as a lease.
        atomic_write(self._path(address), _render(lease.box, lease.hostname, lease.root, ports))

    def allocate(
        self, subnet: Cidr, box: str, hostname: str = "", reserved: Iterable[int] = ()
    ) -> int:
        """The first free host address of `subnet`, leased to `box`."""
        skip = set(reserved)
        skip.update(lease.address for lease in self.list())
        for addr in subnet.hosts():
            if addr not in skip and self.claim(addr, box, hostname):
                return addr
        raise NetworkError(f"no free address left in {subnet.subnet}")

    def holder(self, address: int) -> Lease | None:
        return self._read(ip4.fmt(address))

    def _mine(self, lease: Lease, box: str) -> bool:
        return lease.box == box and lease.root in ("", self.root)

    def release(self, address: int, box: str) -> None:
        """Drop `box`'s lease of `address`; another root's or box's stays."""
        lease = self._read(ip4.fmt(address))
        if lease is not None and self._mine(lease, box):
            try:
                os.unlink(self._path(address))
            except FileNotFoundError:
                pass

    def list(self) -> list[Lease]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            lease = self._read(name)
            if lease is not None:
                out.append(lease)
        out.sort(key=lambda lease: lease.address)
        return out

    def collect(self, alive: Callable[[Lease], bool]) -> int:
        """Remove leases whose box is gone. Call it with the bridge's lock held."""
        n = 0
        for lease in self.list():
            if not alive(lease):
                try:
                    os.unlink(self._path(lease.address))
                    n += 1
                except FileNotFoundError:
                    pass
        return n

    def _read(self, name: str) -> Lease | None:
        try:
            address = ip4.parse(name)
        except ValueError:
            return None  # not a lease
        try:
            with open(os.path.join(self.dir, name)) as f:
                lines = f.read().splitlines()
        except (FileNotFoundError, IsADirectoryError):
            return None
        words = lines[0].split() if lines else []
        if not words:
            return None  # being written right now; its O_EXCL already holds the address
        root, ports = "", []
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            if key == "root":
                root = value
            elif key == "port":
                ports.append(value)
        hostname = words[1] if len(words) > 1 else words[0]
        return Lease(address, words[0], hostname, root, tuple(ports))
