"""Address leases on a tmp_path: allocation, release, collection, and races between
processes. Pure: no root, no kernel features."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.network import ip4
from tuibox.runtime.network.bridgestore import BridgeStore, boot_id
from tuibox.runtime.network.ip4 import Cidr
from tuibox.runtime.network.ipam import Lease, Leases
from tuibox.runtime.network.netstore import NetState, NetStore

SUBNET = Cidr.parse("10.213.5.0/24")
GATEWAY = ip4.parse("10.213.5.1")


def test_allocate_skips_gateway_and_taken(tmp_path: Path) -> None:
    leases = Leases(str(tmp_path))
    a = leases.allocate(SUBNET, "a", reserved=[GATEWAY])
    b = leases.allocate(SUBNET, "b", "b-host", reserved=[GATEWAY])
    assert (ip4.fmt(a), ip4.fmt(b)) == ("10.213.5.2", "10.213.5.3")
    assert (tmp_path / "leases" / "10.213.5.3").read_text() == "b b-host\n"
    assert [(ip4.fmt(x.address), x.box, x.hostname) for x in leases.list()] == [
        ("10.213.5.2", "a", "a"),
        ("10.213.5.3", "b", "b-host"),
    ]


def _holder(leases: Leases, addr: int) -> str | None:
    lease = leases.holder(addr)
    return None if lease is None else lease.box


def test_claim_is_exclusive_and_release_only_own(tmp_path: Path) -> None:
    leases = Leases(str(tmp_path))
    addr = ip4.parse("10.213.5.9")
    assert leases.claim(addr, "a")
    assert not leases.claim(addr, "b")
    assert _holder(leases, addr) == "a"
    leases.release(addr, "b")  # not b's: stays
    assert _holder(leases, addr) == "a"
    leases.release(addr, "a")
    assert _holder(leases, addr) is None
    leases.release(addr, "a")  # twice is fine


def test_a_lease_names_its_root_and_another_root_never_frees_it(tmp_path: Path) -> None:
    one, two = Leases(str(tmp_path), "/r1"), Leases(str(tmp_path), "/r2")
    a = one.allocate(SUBNET, "web", reserved=[GATEWAY])
    b = two.allocate(SUBNET, "web", reserved=[GATEWAY])  # same box name, other root
    assert a != b
    assert (tmp_path / "leases" / ip4.fmt(a)).read_text() == "web web\nroot /r1\n"
    two.release(a, "web")  # r2's "web" does not hold a
    assert [(ip4.fmt(x.address), x.root) for x in one.list()] == [
        (ip4.fmt(a), "/r1"),
        (ip4.fmt(b), "/r2"),
    ]
    one.set_ports(a, "web", ["8080:80/tcp"])
    two.set_ports(a, "web", ["9090:80/tcp"])  # not its lease: ignored
    lease = one.holder(a)
    assert lease is not None and lease.ports == ("8080:80/tcp",) and lease.root == "/r1"
    assert sorted(os.listdir(tmp_path / "leases")) == sorted([ip4.fmt(a), ip4.fmt(b)])


def test_exhaustion_is_a_clear_error(tmp_path: Path) -> None:
    leases = Leases(str(tmp_path))
    small = Cidr.parse("10.213.5.0/30")  # hosts .1 and .2; .1 is the gateway
    leases.allocate(small, "a", reserved=[ip4.parse("10.213.5.1")])
    with pytest.raises(NetworkError, match=r"no free address left in 10\.213\.5\.0/30"):
        leases.allocate(small, "b", reserved=[ip4.parse("10.213.5.1")])


def test_collect_removes_leases_of_vanished_boxes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "alive").mkdir(parents=True)
    leases = Leases(str(tmp_path), str(root))
    leases.allocate(SUBNET, "alive")
    leases.allocate(SUBNET, "gone")
    assert leases.collect(Lease.box_exists) == 1
    assert [x.box for x in leases.list()] == ["alive"]


def test_bridge_store_migrates_a_roots_old_leases_and_goes_when_unused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    old = Leases(str(root / ".network" / "tb0"))  # a lease from before roots shared
    old.claim(ip4.parse("10.213.5.7"), "old-box", "old-host")
    (root / ".network" / "tb0" / "table").write_text("")
    store = BridgeStore("tb0", str(tmp_path / "run"))
    with store.locked() as shared:
        shared.migrate(str(root))
        (lease,) = shared.leases(str(root)).list()
        assert (lease.box, lease.hostname, lease.root) == ("old-box", "old-host", str(root))
        mark = shared.read_mark()
        assert mark is not None and mark.boot != boot_id()  # unknown boot: checked on next use
    assert not (root / ".network" / "tb0" / "leases").exists()
    assert not (root / ".network" / "tb0" / "table").exists()
    assert oct((tmp_path / "run" / "tb0").stat().st_mode & 0o777) == "0o700"
    with store.locked() as shared:
        shared.leases(str(root)).release(lease.address, "old-box")
        shared.write_mark("10.213.5.0/24", True)
        mark = shared.read_mark()
        assert mark is not None and (mark.boot, mark.subnet, mark.nat) == (
            boot_id(),
            "10.213.5.0/24",
            True,
        )
        shared.drop_mark()
    assert not (tmp_path / "run" / "tb0").exists()  # nothing left to share: gone


def test_foreign_and_empty_files_are_not_leases(tmp_path: Path) -> None:
    leases = Leases(str(tmp_path))
    (tmp_path / "leases").mkdir()
    (tmp_path / "leases" / "README").write_text("x")
    (tmp_path / "leases" / "10.213.5.2").write_text("")  # being written
    assert leases.list() == []
    # ... but an empty lease still holds its address (O_EXCL).
    assert ip4.fmt(leases.allocate(SUBNET, "a", reserved=[GATEWAY])) == "10.213.5.3"


def _take(args: tuple[str, int]) -> str:
    net_dir, i = args
    return ip4.fmt(Leases(net_dir).allocate(SUBNET, f"box-{i}", reserved=[GATEWAY]))


def test_twenty_processes_get_twenty_addresses(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(20) as pool:
        got = pool.map(_take, [(str(tmp_path), i) for i in range(20)])
    assert len(set(got)) == 20
    assert len(os.listdir(tmp_path / "leases")) == 20
    owners = {x.box for x in Leases(str(tmp_path)).list()}
    assert owners == {f"box-{i}" for i in range(20)}


def test_netstore_roundtrip(tmp_path: Path) -> None:
    store = NetStore(str(tmp_path))
    assert store.read("tb0") is None and store.all() == []
    store.write(NetState("default", "tb0", "tuibox", "10.213.5.0/24", "10.213.5.1", True))
    s = store.read("tb0")
    assert s is not None and s.subnet == "10.213.5.0/24" and s.nat and not s.created_bridge
    found = store.find("default")
    assert found is not None and found.bridge == "tb0"
    assert store.find("tb0") == s
    store.remove("tb0")
    assert store.all() == []
