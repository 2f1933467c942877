"""The rtnetlink requests tuibox needs, encoded and decoded by pyroute2's message classes.

Why not `pyroute2.IPRoute`: in pyroute2 0.9 `import pyroute2` runs the package's __init__,
which loads ~380 modules (asyncio, multiprocessing, ssl, NDB...) for 150-200 ms here, and
`IPRoute(netns=...)` forks a helper to open its socket. A box's whole setup should cost less
than that import. So this module:

- makes `pyroute2` importable without running its __init__ (`_lean_package`): submodules
  load on their own, and the first access to anything else on the package still runs the
  real __init__, so other code in the process that wants `from pyroute2 import IPRoute`
  gets it;
- uses pyroute2's marshalling (`pyroute2.netlink`) and its address and route messages, and
  declares the link message with only the attributes tuibox uses, on pyroute2's `nlmsg`
  base (pyroute2's own ifinfmsg pulls in multiprocessing and every link-kind plugin, +14 ms);
- talks over a plain NETLINK_ROUTE socket: synchronous, no threads, no event loop. A socket
  opened while the thread sits in the box's network namespace stays bound to it, so the box
  side is configured from here with setns there and back, without a helper process.

Measured (bench/network_bench.py --imports): ~40-55 modules instead, most of the time in what
pyroute2.netlink itself imports (logging with re, socket with enum, typing). It is imported by
the netlink worker (helper.py), in parallel with the rest of a create.
"""

from __future__ import annotations

import errno
import importlib
import importlib.machinery
import os
import socket
import struct
import sys
import types

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.network import ip4
from tuibox.runtime.network.ip4 import Cidr
from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _find_pyroute2() -> importlib.machinery.ModuleSpec | None:
    spec = importlib.machinery.PathFinder.find_spec("pyroute2")
    if spec is not None:
        return spec
    # The `tuibox` launcher runs Python with -I -S: no site-packages on sys.path (and, with
    # -S, sys.prefix is the base interpreter's). Add the virtual environment's directory
    # only; site.main() would also run every .pth file (~15 ms with an editable install).
    v = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    candidates = [os.path.join(base, "lib", v, "site-packages") for base in (venv, sys.prefix)]
    if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
        candidates.pop(0)
    for d in candidates:
        if os.path.isdir(d) and d not in sys.path:
            sys.path.append(d)
            spec = importlib.machinery.PathFinder.find_spec("pyroute2")
            if spec is not None:
                return spec
    from tuibox import sitepath

    sitepath.ensure()
    return importlib.machinery.PathFinder.find_spec("pyroute2")


def _lean_package() -> None:
    """Register a `pyroute2` package object whose __init__ has not run (see module doc)."""
    if "pyroute2" in sys.modules:
        return
    spec = _find_pyroute2()
    if spec is None or not spec.submodule_search_locations or spec.loader is None:
        raise NetworkError("networking needs pyroute2, which is not installed")
    pkg = types.ModuleType("pyroute2")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    pkg.__loader__ = spec.loader
    pkg.__package__ = "pyroute2"
    loader = spec.loader
    dirs = list(pkg.__path__)

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for d in dirs:
            if os.path.exists(os.path.join(d, name + ".py")) or os.path.isdir(
                os.path.join(d, name)
            ):
                return importlib.import_module(f"pyroute2.{name}")
        # Anything else lives in the real __init__: run it now, once.
        del pkg.__dict__["__getattr__"]
        loader.exec_module(pkg)
        return getattr(pkg, name)

    pkg.__dict__["__getattr__"] = __getattr__
    sys.modules["pyroute2"] = pkg


_lean_package()

# ruff: noqa: E402 - these imports must follow _lean_package()
from pyroute2.netlink import (  # type: ignore[import-untyped]
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    nla,
    nlmsg,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # type: ignore[import-untyped]

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1
_NETLINK_ROUTE = 0
_HDR = struct.Struct("=IHHII")


class _LinkBody:
    """struct ifinfomsg and the link attributes tuibox reads or writes."""

    prefix = "IFLA_"
    fields = (
        ("family", "B"),
        ("__align", "x"),
        ("ifi_type", "H"),
        ("index", "i"),
        ("flags", "I"),
        ("change", "I"),
    )
    nla_map = (
        (3, "IFLA_IFNAME", "asciiz"),
        (10, "IFLA_MASTER", "uint32"),
        (18, "IFLA_LINKINFO", "linkinfo"),
        (28, "IFLA_NET_NS_FD", "uint32"),
    )

    class linkinfo(nla):  # type: ignore[misc]
        prefix = "IFLA_INFO_"
        nla_map = (
            (1, "IFLA_INFO_KIND", "asciiz"),
            (2, "IFLA_INFO_DATA", "info_data"),
        )

        @staticmethod
        def info_data(self: Any, *argv: Any, **kwarg: Any) -> Any:
            if self.get_attr("IFLA_INFO_KIND") == "veth":
                return self.veth_data
            return self.hex

        class veth_data(nla):  # type: ignore[misc]
            nla_map = ((1, "VETH_INFO_PEER", "peer"),)

            @staticmethod
            def peer(self: Any, *argv: Any, **kwarg: Any) -> Any:
                return ifinfpeer


class ifinfmsg(_LinkBody, nlmsg):  # type: ignore[misc]
    pass


class ifinfpeer(_LinkBody, nla):  # type: ignore[misc]
    """A veth peer: an ifinfomsg carried inside VETH_INFO_PEER."""


class Link(Plain):
    __slots__ = ("index", "kind", "master", "name", "up")

    def __init__(
        self, index: int, name: str, kind: str | None, master: int | None, up: bool
    ) -> None:
        self.index = index
        self.name = name
        self.kind = kind
        self.master = master
        self.up = up


class Rtnl:
    """One NETLINK_ROUTE socket; `Rtnl(netns_fd)` opens it inside that network namespace."""

    def __init__(self, netns_fd: int | None = None) -> None:
        if netns_fd is None:
            self.sock = _socket()
        else:
            with InNetns(netns_fd):
                self.sock = _socket()
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the request loop -------------------------------------------------------------------

    def request(self, msg: Any, mtype: int, flags: int, what: str) -> list[Any]:
        """Send one request; return the decoded replies (dumps) or [] (acks)."""
        self._seq += 1
        seq = self._seq
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags | NLM_F_REQUEST | (0 if dump else NLM_F_ACK)
        msg["header"]["sequence_number"] = seq
        msg.encode()
        self.sock.send(msg.data)
        cls = type(msg)
        out: list[Any] = []
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, rtype, _, rseq, _ = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    raise NetworkError(f"{what}: malformed netlink reply")
                if rseq == seq:
                    if rtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + _HDR.size)
                        if code:
                            raise OSError(-code, f"{what}: {os.strerror(-code).lower()}")
                        return out
                    if rtype == NLMSG_DONE:
                        return out
                    reply = cls(data[offset : offset + length])
                    reply.decode()
                    out.append(reply)
                offset += (length + 3) & ~3

    # ---- links ------------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        try:
            (reply,) = self.request(msg, RTM_GETLINK, 0, f"look up {name}") or (None,)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        if reply is None:
            return None
        return _link(reply)

    def links(self) -> list[Link]:
        return [_link(m) for m in self.request(ifinfmsg(), RTM_GETLINK, NLM_F_DUMP, "list links")]

    def add_bridge(self, name: str) -> None:
        msg = ifinfmsg()
        msg["flags"] = msg["change"] = IFF_UP
        msg["attrs"] = [
            ("IFLA_IFNAME", name),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]}),
        ]
        self.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"create bridge {name}")

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, master: int | None) -> None:
        """Create the pair, `name` here (up, on `master`), `peer` straight in the box's netns.

        The peer stays down: the kernel configures it before the two ends are linked, and
        bringing it up then fails with ENOTCONN. The box side sets it up afterwards."""
        msg = ifinfmsg()
        msg["flags"] = msg["change"] = IFF_UP
        peer_msg = {"attrs": [("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", peer_netns_fd)]}
        attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", name)]
        if master is not None:
            attrs.append(("IFLA_MASTER", master))
        attrs.append(
            (
                "IFLA_LINKINFO",
                {
                    "attrs": [
                        ("IFLA_INFO_KIND", "veth"),
                        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer_msg)]}),
                    ]
                },
            )
        )
        msg["attrs"] = attrs
        self.request(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"create veth {name}")

    def set_up(self, name: str) -> None:
        msg = ifinfmsg()
        msg["flags"] = msg["change"] = IFF_UP
        msg["attrs"] = [("IFLA_IFNAME", name)]
        self.request(msg, RTM_NEWLINK, 0, f"set {name} up")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when it does not exist."""
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        try:
            self.request(msg, RTM_DELLINK, 0, f"delete {name}")
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # ---- addresses and routes ---------------------------------------------------------------

    def add_address(self, index: int, addr: Cidr, what: str) -> None:
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["prefixlen"] = addr.prefix
        msg["index"] = index
        msg["attrs"] = [("IFA_LOCAL", addr.address), ("IFA_ADDRESS", addr.address)]
        if addr.prefix <= 30:
            msg["attrs"].append(("IFA_BROADCAST", ip4.fmt(addr.broadcast)))
        self.request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, what)

    def addresses(self, index: int | None = None) -> list[tuple[int, Cidr]]:
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        out = []
        for m in self.request(msg, RTM_GETADDR, NLM_F_DUMP, "list addresses"):
            if index is not None and m["index"] != index:
                continue
            addr = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
            if addr:
                out.append((int(m["index"]), Cidr(ip4.parse(addr), int(m["prefixlen"]))))
        return out

    def add_route(self, dst: Cidr, gateway: int | None, oif: int, what: str) -> None:
        msg = rtmsg()
        msg["family"] = socket.AF_INET
        msg["dst_len"] = dst.prefix
        msg["table"] = RT_TABLE_MAIN
        msg["proto"] = RTPROT_BOOT
        msg["scope"] = RT_SCOPE_UNIVERSE if gateway is not None else RT_SCOPE_LINK
        msg["type"] = RTN_UNICAST
        attrs: list[tuple[str, Any]] = [("RTA_OIF", oif)]
        if dst.prefix:
            attrs.append(("RTA_DST", ip4.fmt(dst.network)))
        if gateway is not None:
            attrs.append(("RTA_GATEWAY", ip4.fmt(gateway)))
        msg["attrs"] = attrs
        self.request(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, what)

    def routes(self) -> list[tuple[Cidr, int | None]]:
        """(destination, output interface) of the main table's IPv4 routes."""
        msg = rtmsg()
        msg["family"] = socket.AF_INET
        out = []
        for m in self.request(msg, RTM_GETROUTE, NLM_F_DUMP, "list routes"):
            table = m.get_attr("RTA_TABLE") or m["table"]
            if table != RT_TABLE_MAIN:
                continue
            dst = m.get_attr("RTA_DST") or "0.0.0.0"
            oif = m.get_attr("RTA_OIF")
            out.append((Cidr(ip4.parse(dst), int(m["dst_len"])), oif))
        return out


def _link(m: Any) -> Link:
    info = m.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    return Link(
        index=int(m["index"]),
        name=str(m.get_attr("IFLA_IFNAME")),
        kind=kind,
        master=m.get_attr("IFLA_MASTER"),
        up=bool(m["flags"] & IFF_UP),
    )


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((0, 0))
    except BaseException:
        s.close()
        raise
    return s


class InNetns:
    """`with InNetns(fd):` runs the block with this thread in another network namespace."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.own = -1

    def __enter__(self) -> None:
        self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(self.fd, sc.CLONE_NEWNET)
        except BaseException:
            os.close(self.own)
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            sc.setns(self.own, sc.CLONE_NEWNET)
        finally:
            os.close(self.own)


def open_netns(pid: int) -> int:
    try:
        return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetworkError(
            f"network namespace of pid {pid}: {os.strerror(e.errno or 0).lower()}"
        ) from None
