"""nftables for outbound NAT and published ports, and the host's ip_forward switch.

One table per bridge, `ip tuibox-<bridge>`, created with the bridge's first box and deleted
with its last one, of any state root (or by `tuibox network rm`); re-made when a reboot or a
firewall flush took it (stage.py) or by `tuibox network reload` (manage.py). tuibox's rules
never mix with anyone else's, removing them never needs rule handles, and the ruleset holds
nothing of tuibox's while a bridge has no box. Published ports are elements of two maps in
that table (see ports.py), so adding and removing one is a single element operation.

    table ip tuibox-BR {
      map ports_any   { type inet_proto . inet_service : ipv4_addr . inet_service }
      map ports_addr  { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
      chain guard       prerouting, filter, raw: drop 127.0.0.0/8 arriving from the bridge
      chain prerouting  nat, dstnat: DNAT of published ports (traffic from outside)
      chain output      nat, -100:   the same for the host's own connections (127.0.0.1:PORT)
      chain postrouting nat, srcnat: masquerade the subnet going out (NAT networks only), and
                                     DNAT'ed flows from 127.0.0.0/8 or from the subnet itself
                                     (hairpin) going into the bridge
    }

Reaching a published port on 127.0.0.1 from the host itself is done in the kernel, not by a
proxy process per port: the output-chain DNAT sends the connection into the bridge with source
127.0.0.1, which the kernel routes only with `route_localnet=1` on the bridge (set by
bridge.py, on bridges tuibox creates) and the masquerade rule rewrites to the gateway. The
guard chain drops what route_localnet would otherwise let boxes do: reach the host's
loopback-only services (CVE-2020-8558 in kube-proxy was exactly that).

Commands go through libnftables in-process (ctypes): ~0.2 ms an element, against ~4 ms for
each `nft` process. Without the library the `nft` binary is used.

ip_forward: turned on only when a NAT network's table is made, and only if it was off; the
old value is kept in /run/tuibox.ip_forward and put back when the last tuibox table on the
host goes. A host lock (/run/lock/tuibox-netfilter.lock) serialises that decision and the port
checks between state roots.
"""

from __future__ import annotations

import ctypes
import fcntl
import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import NetworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.network.ip4 import Cidr

TABLE_PREFIX = "tuibox-"
FORWARD = "/proc/sys/net/ipv4/ip_forward"
FORWARD_MARK = "/run/tuibox.ip_forward"
HOST_LOCK = "/run/lock/tuibox-netfilter.lock"
_NFT_CTX_OUTPUT_JSON = 1 << 4


class Nft:
    """Runs nft scripts; raises NetworkError with nft's first error line.

    Use `Nft.get()`: one context per process, never freed, because nft_ctx_free() costs
    ~14 ms here (more than everything else a box's network needs)."""

    _shared: Nft | None = None

    @classmethod
    def get(cls) -> Nft:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def __init__(self) -> None:
        self._lib: Any = None
        self._ctx: int | None = None
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            return
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = (ctypes.c_uint32,)
        lib.nft_ctx_buffer_output.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_buffer_error.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_output_get_flags.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        lib.nft_ctx_output_set_flags.argtypes = (ctypes.c_void_p, ctypes.c_uint)
        lib.nft_run_cmd_from_buffer.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
        lib.nft_ctx_get_output_buffer.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = (ctypes.c_void_p,)
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            return
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self._lib, self._ctx = lib, ctx

    def run(self, script: str, json: bool = False) -> str:
        if self._ctx is None:
            return self._run_binary(script, json)
        lib, ctx = self._lib, self._ctx
        flags = lib.nft_ctx_output_get_flags(ctx)
        lib.nft_ctx_output_set_flags(
            ctx, flags | _NFT_CTX_OUTPUT_JSON if json else flags & ~_NFT_CTX_OUTPUT_JSON
        )
        rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        if rc != 0:
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
            raise NetworkError(f"nftables: {_first_error(err)}")
        return str(out)

    def _run_binary(self, script: str, json: bool) -> str:
        import subprocess

        argv = ["nft", "-j", "-f", "-"] if json else ["nft", "-f", "-"]
        try:
            proc = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise NetworkError("NAT and published ports need nftables (nft not found)") from None
        if proc.returncode != 0:
            raise NetworkError(f"nftables: {_first_error(proc.stderr)}")
        return proc.stdout

    def json(self, command: str) -> list[dict[str, Any]]:
        raw = self.run(command, json=True).strip()
        if not raw:
            return []
        items: list[dict[str, Any]] = fastjson.loads(raw).get("nftables", [])
        return items


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Error:"):
            return line[len("Error:") :].strip().lower()
    return text.strip().splitlines()[0] if text.strip() else "failed"


def table_name(bridge: str) -> str:
    # nft identifiers take letters, digits and _-./; bridge names are checked the same way.
    return TABLE_PREFIX + "".join(c if c.isalnum() or c in "_-." else "_" for c in bridge)


def table_script(table: str, bridge: str, subnet: Cidr, nat: bool) -> str:
    br = f'"{bridge}"'
    net = str(subnet.subnet)
    masquerade = f"    ip saddr {net} ip daddr != {net} oifname != {br} masquerade\n" if nat else ""
    dnat = (
        "    meta l4proto { tcp, udp } fib daddr type local"
        " dnat ip to ip daddr . meta l4proto . th dport map @ports_addr\n"
        "    meta l4proto { tcp, udp } fib daddr type local"
        " dnat ip to meta l4proto . th dport map @ports_any\n"
    )
    # `add` then `delete` first: replaces a table left by a crash instead of merging into it.
    return (
        f"add table ip {table}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "  map ports_any {\n"
        "    type inet_proto . inet_service : ipv4_addr . inet_service\n"
        "  }\n"
        "  map ports_addr {\n"
        "    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n"
        "  }\n"
        "  chain guard {\n"
        "    type filter hook prerouting priority raw; policy accept;\n"
        f"    iifname {br} ip daddr 127.0.0.0/8 drop\n"
        "  }\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        f"{dnat}"
        "  }\n"
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        f"{dnat}"
        "  }\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f"{masquerade}"
        f"    oifname {br} ct status dnat ip saddr {{ 127.0.0.0/8, {net} }} masquerade\n"
        "  }\n"
        "}\n"
    )


def create_table(
    nft: Nft, table: str, bridge: str, subnet: Cidr, nat: bool, elements: str = ""
) -> None:
    """(Re)make the table, with `elements` (ports.element_script lines) in the same
    transaction: a reload never shows a moment without the ports."""
    nft.run(table_script(table, bridge, subnet, nat) + elements)


def table_exists(nft: Nft, table: str) -> bool:
    """Whether the kernel has the table (a firewall flush removes it): ~0.05 ms."""
    try:
        nft.run(f"list map ip {table} ports_any\n")
    except NetworkError:
        return False
    return True


def gone(e: NetworkError) -> bool:
    """nft's answer for a table, map or element that does not exist."""
    return "no such file or directory" in e.message


def delete_table(nft: Nft, table: str) -> None:
    if not table.startswith(TABLE_PREFIX):
        raise NetworkError(f"refusing to delete nftables table {table!r}: not tuibox's")
    # add-then-delete: idempotent, whether or not the table is still there.
    nft.run(f"add table ip {table}\ndelete table ip {table}\n")


def tuibox_tables(nft: Nft) -> list[str]:
    out = []
    for item in nft.json("list tables ip"):
        t = item.get("table")
        if t and str(t.get("name", "")).startswith(TABLE_PREFIX):
            out.append(str(t["name"]))
    return out


class HostLock:
    """flock on /run/lock/tuibox-netfilter.lock: one host, many state roots."""

    def __init__(self) -> None:
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enable_forwarding() -> None:
    """ip_forward=1 for a NAT network; remember that tuibox turned it on."""
    with HostLock():
        if _read(FORWARD) == "1":
            return
        _write(FORWARD_MARK, "0\n")
        _write(FORWARD, "1\n")


def release_forwarding(nft: Nft) -> None:
    """Put ip_forward back once no tuibox table is left, if tuibox was the one to set it."""
    if not os.path.exists(FORWARD_MARK):
        return
    with HostLock():
        if not os.path.exists(FORWARD_MARK) or tuibox_tables(nft):
            return
        if _read(FORWARD) == "1":
            _write(FORWARD, _read(FORWARD_MARK) + "\n")
        os.unlink(FORWARD_MARK)
