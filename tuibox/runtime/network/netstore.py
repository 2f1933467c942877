"""Per-network state under the state root, keyed by bridge name (one L2 domain, one pool).

    <root>/.network/<bridge>/network.json   what tuibox knows and did (see NetState)
    <root>/.network/<bridge>/lock           flock'ed around joins, leaves and removal
    <root>/.network/<bridge>/leases/        see ipam.py
    <root>/.network/<bridge>/table          exists while the network's nft table does

A dot-directory, so `StateRoot.names()` never takes it for a box.
"""

from __future__ import annotations

import fcntl
import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.plain import Plain
from tuibox.runtime.state import atomic_write, remove_tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NET_DIR = ".network"


class NetState(Plain):
    __slots__ = ("bridge", "created_bridge", "gateway", "kind", "name", "nat", "subnet")

    def __init__(
        self,
        name: str,
        bridge: str,
        kind: str,
        subnet: str | None = None,
        gateway: str | None = None,
        nat: bool = False,
        created_bridge: bool = False,
    ) -> None:
        self.name = name  # "default", a `network create` name, or a netconf's bridge
        self.bridge = bridge
        self.kind = kind  # "tuibox" (tuibox's own definition) or "netconf" (a netconf's bridge)
        self.subnet = subnet  # "10.213.0.0/24"; None until known
        self.gateway = gateway
        self.nat = nat
        self.created_bridge = created_bridge  # only then may tuibox delete the bridge

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetState:
        known = {k: v for k, v in data.items() if k in cls.__slots__}
        return cls(**known)


class _Lock:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.fd = -1

    def __enter__(self) -> str:
        lock = os.path.join(self.dir, "lock")
        while True:
            os.makedirs(self.dir, 0o700, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # `network rm` deletes the directory, lock included: whoever then wins the lock
            # of the deleted file must start over with the new one.
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self.dir
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class NetStore:
    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, NET_DIR)

    def dir(self, bridge: str) -> str:
        return os.path.join(self.path, bridge)

    def locked(self, bridge: str) -> _Lock:
        return _Lock(self.dir(bridge))

    def read(self, bridge: str) -> NetState | None:
        path = os.path.join(self.dir(bridge), "network.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return NetState.from_json(fastjson.loads(raw))
        except (ValueError, TypeError) as e:
            raise TuiboxError(f"network state is corrupt: {path}") from e

    def write(self, state: NetState) -> None:
        data = fastjson.dumps(state.as_dict(), indent=1).encode()
        atomic_write(os.path.join(self.dir(state.bridge), "network.json"), data)

    def remove(self, bridge: str) -> None:
        remove_tree(self.dir(bridge))

    def all(self) -> list[NetState]:
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            s = self.read(name)
            if s is not None:
                out.append(s)
        return out

    def find(self, name: str) -> NetState | None:
        """A network by its name, else by its bridge."""
        states = self.all()
        for s in states:
            if s.name == name:
                return s
        for s in states:
            if s.bridge == name:
                return s
        return None
