"""Host-wide state of one bridge, shared by every state root that puts boxes on it.

    /run/tuibox-net/<bridge>/lock      flock'ed around joins, leaves, reloads, network create/rm
    /run/tuibox-net/<bridge>/leases/   one file per address (ipam.py); each names its owner,
                                       state root and box
    /run/tuibox-net/<bridge>/table     while the bridge's nft table exists: the boot it was
                                       made in, its subnet and whether it does NAT

An address, a DNAT port and the nft table `tuibox-<bridge>` are resources of the bridge, not
of a state root: two roots on one bridge must not lease the same address, and the table goes
only when no root has a box on the bridge any more (the lease list is the reference count).
Everything lives under /run (a tmpfs): a reboot forgets it with the kernel state it describes.
The boot id in `table` covers a /run that is not a tmpfs; a table missing although marked
(a firewall flush) is caught by checking the kernel on the next join (stage.py).

The directory is removed when its lock is released with no lease and no table left.
"""

from __future__ import annotations

import fcntl
import os

from tuibox.runtime.network import ip4, ipam
from tuibox.runtime.plain import Plain

RUN_DIR = "/run/tuibox-net"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
TABLE_MARK = "table"
LEGACY_NET_DIR = ".network"  # <root>/.network/<bridge>/{leases,table}: before this store

_boot: str | None = None


def boot_id() -> str:
    global _boot
    if _boot is None:
        with open(BOOT_ID) as f:
            _boot = f.read().strip()
    return _boot


def bridges(base: str = RUN_DIR) -> list[str]:
    """Bridges with shared state on this host (for `gc`: their leases name their owners)."""
    try:
        return sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
    except FileNotFoundError:
        return []


class TableMark(Plain):
    __slots__ = ("boot", "nat", "subnet")

    def __init__(self, boot: str, subnet: str, nat: bool) -> None:
        self.boot = boot
        self.subnet = subnet
        self.nat = nat


class BridgeStore:
    def __init__(self, bridge: str, base: str = RUN_DIR) -> None:
        self.bridge = bridge
        self.base = base
        self.dir = os.path.join(base, bridge)
        self._fd = -1

    # ---- the lock -------------------------------------------------------------------------

    def locked(self) -> BridgeStore:
        return self

    def __enter__(self) -> BridgeStore:
        lock = os.path.join(self.dir, "lock")
        while True:
            os.makedirs(self.base, 0o700, exist_ok=True)
            os.makedirs(self.dir, 0o700, exist_ok=True)
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # the directory went with its last user just now
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # The last user deletes the directory, lock included: whoever then wins the
                # lock of the deleted file must start over with a new one.
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                self._fd = fd
                return self
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.in_use():
                self._remove()
        finally:
            os.close(self._fd)
            self._fd = -1

    def in_use(self) -> bool:
        if os.path.exists(os.path.join(self.dir, TABLE_MARK)):
            return True
        try:
            return bool(os.listdir(os.path.join(self.dir, "leases")))
        except FileNotFoundError:
            return False

    def _remove(self) -> None:
        # Lock file before directory, so a newcomer either sees no lock (and makes a new one)
        # or makes one first, and then our rmdir fails and the directory stays.
        for step, path in (
            (os.rmdir, os.path.join(self.dir, "leases")),
            (os.unlink, os.path.join(self.dir, "lock")),
            (os.rmdir, self.dir),
        ):
            try:
                step(path)
            except FileNotFoundError:
                continue
            except OSError:
                return  # not empty: someone came in meanwhile

    # ---- leases and the table mark (call these with the lock held) -------------------------

    def leases(self, root: str) -> ipam.Leases:
        """The bridge's leases, as seen by state root `root` (the owner of what it claims)."""
        return ipam.Leases(self.dir, root)

    def read_mark(self) -> TableMark | None:
        try:
            with open(os.path.join(self.dir, TABLE_MARK)) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        fields = dict(line.partition("=")[::2] for line in text.splitlines())
        return TableMark(fields.get("boot", ""), fields.get("subnet", ""), fields.get("nat") == "1")

    def write_mark(self, subnet: str, nat: bool) -> None:
        from tuibox.runtime.state import atomic_write

        text = f"boot={boot_id()}\nsubnet={subnet}\nnat={int(nat)}\n"
        atomic_write(os.path.join(self.dir, TABLE_MARK), text.encode())

    def drop_mark(self) -> None:
        try:
            os.unlink(os.path.join(self.dir, TABLE_MARK))
        except FileNotFoundError:
            pass

    def migrate(self, root: str) -> None:
        """Bring a state root's own leases and table mark (kept under the root before leases
        were shared) into this store, once. A legacy lease whose address another root holds
        here already is dropped: that clash is what this store exists to prevent."""
        old = os.path.join(root, LEGACY_NET_DIR, self.bridge)
        old_leases = os.path.join(old, "leases")
        if os.path.isdir(old_leases):
            legacy = ipam.Leases(old, root)
            mine = self.leases(root)
            for lease in legacy.list():
                if mine.claim(lease.address, lease.box, lease.hostname):
                    # Old leases did not keep their ports; the box's record does.
                    ports = _recorded_ports(root, lease.box)
                    if ports:
                        mine.set_ports(lease.address, lease.box, ports)
                try:
                    os.unlink(os.path.join(old_leases, ip4.fmt(lease.address)))
                except FileNotFoundError:
                    pass
            try:
                os.rmdir(old_leases)
            except OSError:
                pass
        old_mark = os.path.join(old, TABLE_MARK)
        if os.path.exists(old_mark):
            if self.read_mark() is None:
                # Which boot made it is unknown: the next join checks the kernel and remakes it.
                from tuibox.runtime.state import atomic_write

                atomic_write(os.path.join(self.dir, TABLE_MARK), b"boot=\nsubnet=\nnat=0\n")
            os.unlink(old_mark)


def _recorded_ports(root: str, box: str) -> list[str]:
    from tuibox.runtime import fastjson

    try:
        with open(os.path.join(root, box, "state.json"), "rb") as f:
            data = fastjson.loads(f.read())
        ports = data["extra"]["ports"]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    return [str(p) for p in ports] if isinstance(ports, list) else []
