"""Address leases: one file per address, created with O_EXCL.

    <root>/.network/<bridge>/leases/<address>    contains "<box> <hostname>\\n"

The kernel's O_CREAT|O_EXCL is the whole concurrency story: twenty `tuibox run` processes
racing for addresses each win a different file, with no lock held while they scan. A lease
names its box, so a release never removes another box's lease. Leases whose box directory
has vanished (a crashed create) are collected when the pool runs dry; that step needs the
network's lock, since two collectors could otherwise delete a lease that was just re-taken.
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
    __slots__ = ("address", "box", "hostname")

    def __init__(self, address: int, box: str, hostname: str) -> None:
        self.address = address
        self.box = box
        self.hostname = hostname


class Leases:
    def __init__(self, net_dir: str) -> None:
        self.dir = os.path.join(net_dir, "leases")

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
            os.write(fd, f"{box} {hostname or box}\n".encode())
        finally:
            os.close(fd)
        return True

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

    def holder(self, address: int) -> str | None:
        lease = self._read(ip4.fmt(address))
        return None if lease is None else lease.box

    def release(self, address: int, box: str) -> None:
        lease = self._read(ip4.fmt(address))
        if lease is not None and lease.box == box:
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

    def collect(self, box_exists: Callable[[str], bool]) -> int:
        """Remove leases whose box is gone. Call it with the network's lock held."""
        n = 0
        for lease in self.list():
            if not box_exists(lease.box):
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
                words = f.read().split()
        except (FileNotFoundError, IsADirectoryError):
            return None
        if not words:
            return None  # being written right now; its O_EXCL already holds the address
        return Lease(address, words[0], words[1] if len(words) > 1 else words[0])
