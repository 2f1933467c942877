"""Per-network definitions under the state root, keyed by bridge name.

    <root>/.network/<bridge>/network.json   what this root knows and did (see NetState)

What belongs to the bridge itself (its lock, the address leases, the nft table's mark) is
shared by every state root: bridgestore.py.

A dot-directory, so `StateRoot.names()` never takes it for a box.
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.network.bridgestore import BridgeStore
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


class NetStore:
    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, NET_DIR)

    def dir(self, bridge: str) -> str:
        return os.path.join(self.path, bridge)

    def locked(self, bridge: str) -> BridgeStore:
        """The bridge's lock: host-wide, shared with every other state root using it."""
        return BridgeStore(bridge).locked()

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
        os.makedirs(self.dir(state.bridge), 0o700, exist_ok=True)
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
