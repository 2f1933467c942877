"""The lean pyroute2 loading and tuibox's link message. No root: nothing is sent."""

from __future__ import annotations

import subprocess
import sys

from tuibox.runtime.network import rtnl

PROBE = """
import sys
import tuibox.runtime.network.rtnl
lean = sorted(m for m in sys.modules if m.startswith("pyroute2"))
assert "pyroute2.iproute" not in lean and "pyroute2.ndb" not in lean, lean
assert "asyncio" not in sys.modules and "multiprocessing" not in sys.modules
from pyroute2 import IPRoute  # the real package __init__ still runs on demand
assert IPRoute.__module__ == "pyroute2.iproute.linux", IPRoute.__module__
print(len(lean))
"""


def test_lean_import_and_full_package_on_demand() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) < 20


def _veth_request(cls: type) -> bytes:
    msg = cls()
    msg["flags"] = msg["change"] = rtnl.IFF_UP
    peer = {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", 7)]}
    msg["attrs"] = [
        ("IFLA_IFNAME", "tb0123abcd0"),
        ("IFLA_MASTER", 5),
        (
            "IFLA_LINKINFO",
            {
                "attrs": [
                    ("IFLA_INFO_KIND", "veth"),
                    ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]}),
                ]
            },
        ),
    ]
    msg["header"]["type"] = rtnl.RTM_NEWLINK
    msg["header"]["flags"] = 0x605
    msg["header"]["sequence_number"] = 1
    msg.encode()
    data: bytes = msg.data
    return data


def test_link_message_encodes_as_pyroute2s_own() -> None:
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg as full  # type: ignore[import-untyped]

    assert _veth_request(rtnl.ifinfmsg) == _veth_request(full)


def test_link_message_decodes() -> None:
    raw = _veth_request(rtnl.ifinfmsg)
    msg = rtnl.ifinfmsg(raw)
    msg.decode()
    link = rtnl._link(msg)
    assert (link.name, link.kind, link.master, link.up) == ("tb0123abcd0", "veth", 5, True)
