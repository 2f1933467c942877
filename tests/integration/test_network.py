"""Networking on the real kernel: bridges, veths, leases, NAT, published ports, hosts files.

Traffic goes only to loopback and to boxes these tests create (and their gateway, the test's
own bridge). Each test gets its own bridge name and subnet (TUIBOX_BRIDGE / TUIBOX_SUBNET for
the default network), never a user's tuibox0, and checks that nothing is left: veths, leases,
nft tables, bridges tuibox made, ip_forward.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, tb_at, unique

pytestmark = pytest.mark.root

FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
MARK = Path("/run/tuibox.ip_forward")  # kept by tuibox while it holds ip_forward on
SHARED = Path("/run/tuibox-net")  # per-bridge state shared by every state root


# ---- host facts ---------------------------------------------------------------------------


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}


def ruleset() -> str:
    return subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, check=True
    ).stdout


def host_nets() -> list[tuple[int, int]]:
    """(network, prefix) of every IPv4 route and address on the host."""
    from tuibox.runtime.network.ip4 import Cidr

    out = []
    for cmd in (["ip", "-o", "-4", "route"], ["ip", "-o", "-4", "addr"]):
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for word in text.split():
            if "/" in word or word.count(".") == 3:
                try:
                    c = Cidr.parse(word if "/" in word else word + "/32")
                except ValueError:
                    continue
                out.append((c.network, c.prefix))
    return out


def free_subnet() -> str:
    from tuibox.runtime.network.ip4 import Cidr

    taken = [Cidr(n, p) for n, p in host_nets()]
    for _ in range(200):
        cand = Cidr.parse(f"10.213.{random.randint(100, 249)}.0/24")
        if not any(t.prefix and t.overlaps(cand) for t in taken):
            return str(cand)
    pytest.skip("no free 10.213.x.0/24 subnet on this host")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def boxes_json(tb: TB) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for b in json.loads(tb("list", "--format", "json").stdout)}


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# ---- fixtures -----------------------------------------------------------------------------


class Net:
    def __init__(self, bridge: str, subnet: str) -> None:
        self.bridge = bridge
        self.subnet = subnet
        self.prefix = subnet.rsplit(".", 1)[0]  # "10.213.123"
        self.gateway = self.prefix + ".1"
        self.table = f"tuibox-{bridge}"
        self.shared = SHARED / bridge
        self.leases = self.shared / "leases"


@pytest.fixture
def net(tb: TB, monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    """The default network on a bridge and subnet of this test's own."""
    n = Net("tbt" + uuid.uuid4().hex[:8], free_subnet())
    monkeypatch.setenv("TUIBOX_BRIDGE", n.bridge)
    monkeypatch.setenv("TUIBOX_SUBNET", n.subnet)
    forward = FORWARD.read_text().strip()
    try:
        yield n
    finally:
        for step in (tb.cleanup, lambda: tb("network", "rm", "default", check=False)):
            try:
                step()
            except Exception as e:  # the host still gets its state back below
                print(f"clean-up step failed: {e}")
        leaked_bridge = n.bridge in links()
        leaked_table = n.table in ruleset()
        leaked_store = n.shared.exists()
        # Whatever happened, the host gets its state back (all of it this test's own).
        if leaked_bridge:
            subprocess.run(["ip", "link", "del", n.bridge], capture_output=True)
        if leaked_table:
            subprocess.run(["nft", "delete", "table", "ip", n.table], capture_output=True)
        if leaked_store:
            shutil.rmtree(n.shared, ignore_errors=True)
        assert not leaked_bridge, f"bridge {n.bridge} left behind"
        assert not leaked_table, f"nft table {n.table} left behind"
        assert not leaked_store, f"{n.shared} left behind"
        assert_forwarding_given_back(forward)


def assert_forwarding_given_back(before: str) -> None:
    """ip_forward is host-wide: another test session may hold it on with its own tables. With
    no tuibox table left, tuibox must neither claim it nor have left it on."""
    if "table ip tuibox-" in ruleset():
        return
    assert not MARK.exists(), f"{MARK} left with no tuibox table"
    if before == "0":
        assert FORWARD.read_text().strip() == "0", "ip_forward not restored"


@pytest.fixture
def own_bridge() -> Iterator[Callable[[str, str], str]]:
    """Bridges the test makes itself (as an admin would), deleted at the end."""
    made: list[str] = []

    def make(name: str, cidr: str) -> str:
        ip("link", "add", name, "type", "bridge")
        made.append(name)
        ip("addr", "add", cidr, "dev", name)
        ip("link", "set", name, "up")
        return name

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


def host_veth(tb: TB, box: str) -> str:
    from tuibox.runtime.network.veth import host_name

    return host_name(str(tb.root), box, 0)


def assert_no_trace(tb: TB, net: Net, names: list[str]) -> None:
    have = links()
    for name in names:
        assert host_veth(tb, name) not in have, f"veth of {name} left"
        assert not (tb.root / name).exists()
    assert not net.leases.exists() or not os.listdir(net.leases), os.listdir(net.leases)
    assert net.table not in ruleset()


# ---- the default network ------------------------------------------------------------------


def test_two_boxes_ping_each_other_and_the_gateway(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    a, b = unique("pa"), unique("pb")
    tb("run", "-d", "--bundle", bundle, "--network", "default", a, "sleep", "1000")
    tb("run", "-d", "--bundle", bundle, "--net", "default", b, "sleep", "1000")
    info = boxes_json(tb)
    addr_a, addr_b = info[a]["address"], info[b]["address"]
    assert addr_a.startswith(net.prefix + ".") and addr_b.startswith(net.prefix + ".")
    assert addr_a != addr_b and net.gateway not in (addr_a, addr_b)
    assert host_veth(tb, a) in links()
    # NAT is set up while the network has boxes (and so is forwarding).
    assert f"ip saddr {net.subnet}" in ruleset() and FORWARD.read_text().strip() == "1"
    c = unique("pc")
    out = tb(
        "run", "--bundle", bundle, "--network", "default", c, "sh", "-c",
        f"ping -c1 -W2 {addr_a} && ping -c1 -W2 {addr_b} && ping -c1 -W2 {net.gateway} "
        f"&& ping -c1 -W2 {a} && cat /etc/hosts",
    ).stdout  # fmt: skip
    assert out.count("1 packets received") == 4, out
    hosts = out[out.index("127.0.0.1") :]
    assert f"{addr_a}\t{a}" in hosts and f"{addr_b}\t{b}" in hosts
    # The hosts file of a running box followed c in, and out again (bind-mounted, in place).
    entries = tb("exec", a, "cat", "/etc/hosts", check=False)
    if entries.returncode == 0:
        assert f"{addr_b}\t{b}" in entries.stdout and c not in entries.stdout
    hosts_a = (tb.root / a / "hosts").read_text()
    assert f"{addr_b}\t{b}" in hosts_a and c not in hosts_a
    tb("destroy", "--force", a, b)
    assert_no_trace(tb, net, [a, b, c])
    assert net.bridge in links()  # the bridge stays until `network rm`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fetch(port: int) -> bytes:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                body: bytes = r.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_published_port_from_the_host_on_loopback(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    web = unique("web")
    p1, p2 = _free_port(), _free_port()
    serve = "mkdir -p /www && echo hello-from-box > /www/index.html && exec httpd -f -p 80 -h /www"
    tb(
        "run", "-d", "--bundle", bundle, "--network", "default",
        "-p", f"127.0.0.1:{p1}:80", "-p", f"{p2}:80/tcp", web, "sh", "-c", serve,
    )  # fmt: skip
    assert _fetch(p1) == b"hello-from-box\n"
    assert _fetch(p2) == b"hello-from-box\n"
    assert tb("port", web).stdout.splitlines() == [
        f"80/tcp -> 127.0.0.1:{p1}",
        f"80/tcp -> 0.0.0.0:{p2}",
    ]
    assert boxes_json(tb)[web]["ports"] == [f"127.0.0.1:{p1}:80/tcp", f"{p2}:80/tcp"]
    # A second box cannot take the same host port.
    err = tb.fails("run", "--bundle", bundle, "--network", "default", "-p", f"{p2}:81",
                   unique("dup"), "true")  # fmt: skip
    assert "already published" in err
    tb("destroy", "--force", web)
    assert_no_trace(tb, net, [web])
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{p1}/", timeout=1)


def test_twenty_concurrent_creates_get_distinct_addresses(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    names = [unique(f"c{i}") for i in range(20)]
    procs = [
        subprocess.Popen(
            tb.argv("run", "-d", "--bundle", bundle, "--network", "default", n, "sleep", "1000"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in names
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    info = boxes_json(tb)
    addrs = [info[n]["address"] for n in names]
    assert len(set(addrs)) == 20 and all(a.startswith(net.prefix + ".") for a in addrs)
    leases = sorted(os.listdir(net.leases))
    assert sorted(addrs) == leases
    tb("destroy", "--force", *names, timeout=120)
    assert_no_trace(tb, net, names)


def test_network_ls_and_rm(tb: TB, net: Net, make_bundle: Callable[..., Path]) -> None:
    bundle = str(make_bundle())
    name = unique("ls")
    tb("run", "-d", "--bundle", bundle, "--network", "default", name, "sleep", "1000")
    (entry,) = json.loads(tb("network", "ls", "--format", "json").stdout)
    assert (entry["name"], entry["bridge"], entry["subnet"]) == ("default", net.bridge, net.subnet)
    assert entry["created_bridge"] and entry["boxes"] == [name]
    assert "still has boxes" in tb.fails("network", "rm", "default")
    tb("destroy", "--force", name)
    tb("network", "rm", "default")
    assert net.bridge not in links()
    assert json.loads(tb("network", "ls", "--format", "json").stdout) == []
    assert "does not exist" in tb.fails("network", "rm", "default")


def test_network_rm_keeps_a_bridge_tuibox_did_not_create(
    tb: TB, net: Net, make_bundle: Callable[..., Path], own_bridge: Callable[[str, str], str]
) -> None:
    own_bridge(net.bridge, f"{net.gateway}/24")
    tb("run", "--bundle", str(make_bundle()), "--network", "default", unique("x"), "true")
    (entry,) = json.loads(tb("network", "ls", "--format", "json").stdout)
    assert not entry["created_bridge"]
    proc = tb("network", "rm", "default")
    assert "left in place" in proc.stderr
    assert net.bridge in links()
    subprocess.run(["ip", "link", "del", net.bridge], check=True)


def test_named_network(tb: TB, net: Net, make_bundle: Callable[..., Path]) -> None:
    other = Net("tbn" + uuid.uuid4().hex[:8], free_subnet())
    try:
        tb("network", "create", "tnet", "--subnet", other.subnet, "--bridge", other.bridge,
           "--no-nat")  # fmt: skip
        script = f"ip -o -4 addr show eth0; ping -c1 -W2 {other.gateway}"
        out = tb("run", "--bundle", str(make_bundle()), "--network", "tnet", unique("n"),
                 "sh", "-c", script).stdout  # fmt: skip
        assert f"inet {other.prefix}.2/24" in out and "1 packets received" in out
        assert other.table not in ruleset()  # no NAT, no port: no table
        tb("network", "rm", "tnet")
        assert other.bridge not in links()
    finally:
        if other.bridge in links():
            subprocess.run(["ip", "link", "del", other.bridge], capture_output=True)


def test_subnet_clash_with_a_host_route_is_refused(
    tb: TB, net: Net, make_bundle: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = [(n, p) for n, p in host_nets() if 8 <= p <= 30]
    if not routes:
        pytest.skip("no host route to clash with")
    from tuibox.runtime.network.ip4 import Cidr

    n, p = routes[0]
    monkeypatch.setenv("TUIBOX_SUBNET", str(Cidr(n, p)))
    name = unique("clash")
    err = tb.fails("run", "--bundle", str(make_bundle()), "--network", "default", name, "true")
    assert "overlaps the host route" in err or "holds the host address" in err
    assert net.bridge not in links()
    assert_no_trace(tb, net, [name])


# ---- netconf.json -------------------------------------------------------------------------


def _netconf(tmp: Path, data: dict[str, Any]) -> str:
    path = tmp / f"netconf-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(data))
    return str(path)


def _bridged(bridge: str, prefix: str, **iface: Any) -> dict[str, Any]:
    return {
        "loopback_name": "lo",
        "model": {"type": "bridge", "bridge_name": bridge},
        "interfaces": [
            {
                "type": "veth",
                "name": "auto",
                "peer_name": "eth2",
                "ip": "0.0.0.0/0",
                "peer_ip": f"{prefix}.5/24",
                "routes": [{"subnet": "0.0.0.0/0", "gateway": f"{prefix}.1"}],
                **iface,
            }
        ],
        "dns": {
            "nameservers": [f"{prefix}.1", "2001:db8::53"],
            "domain": "tuibox.test",
            "search": ["tuibox.test", "example.test"],
        },
    }


def test_resolv_conf_and_hosts_match_the_netconf(
    tb: TB,
    net: Net,
    make_bundle: Callable[..., Path],
    own_bridge: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    own_bridge(net.bridge, f"{net.gateway}/24")
    conf = _netconf(tmp_path, _bridged(net.bridge, net.prefix))
    name = unique("nc")
    out = tb(
        "run", "--bundle", str(make_bundle()), "--netconf", conf, "--hostname", "nc-host", name,
        "sh", "-c", "cat /etc/resolv.conf; echo =====; cat /etc/hosts; echo =====; "
        f"ip -o -4 addr show eth2; ip route; ping -c1 -W2 {net.gateway}",
    ).stdout  # fmt: skip
    resolv, hosts, rest = out.split("=====\n")
    assert resolv == (
        f"nameserver {net.gateway}\nnameserver 2001:db8::53\n"
        "domain tuibox.test\nsearch tuibox.test example.test\n"
    )
    assert hosts == (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{net.prefix}.5\tnc-host {name}\n"
    )
    assert f"inet {net.prefix}.5/24" in rest
    assert f"default via {net.gateway} dev eth2" in rest
    assert "1 packets received" in rest
    assert net.bridge in links()  # never deleted: tuibox did not make it
    assert not (tb.root / ".network" / net.bridge).exists()
    assert_no_trace(tb, net, [name])


def test_seed_netconf_against_a_docker0_the_test_creates(
    tb: TB, make_bundle: Callable[..., Path], own_bridge: Callable[[str, str], str], tmp_path: Path
) -> None:
    have = links()
    if "docker0" in have:
        pytest.skip("this host has a docker0: the test only uses one it creates itself")
    if "eth1" in have:
        pytest.skip("this host has an eth1 (the seed's host end name)")
    from tuibox.runtime.network.ip4 import Cidr

    seed_net = Cidr.parse("172.17.0.0/28")
    if any(p and Cidr(n, p).overlaps(seed_net) for n, p in host_nets()):
        pytest.skip("172.17.0.0/28 is in use on this host")
    own_bridge("docker0", "172.17.0.1/28")
    seed = {
        "loopback_name": "lo",
        "model": {"type": "bridge", "bridge_name": "docker0"},
        "interfaces": [
            {
                "type": "veth",
                "name": "eth1",
                "peer_name": "eth2",
                "ip": "0.0.0.0/0",
                "peer_ip": "172.17.0.6/28",
                "routes": [{"subnet": "0.0.0.0/0", "gateway": "172.17.0.1"}],
            }
        ],
        "dns": {"nameservers": ["8.8.8.8"], "domain": "lambda1", "search": ["lambda1"]},
    }
    workdir = tmp_path / "seed"
    workdir.mkdir()
    (workdir / "netconf.json").write_text(json.dumps(seed))  # found as ./netconf.json
    name = unique("seed")
    out = tb(
        "run", "--bundle", str(make_bundle()), name, "sh", "-c",
        "ip -o -4 addr show eth2; ip route; cat /etc/resolv.conf; ping -c1 -W2 172.17.0.1",
        cwd=workdir,
    ).stdout  # fmt: skip
    assert "inet 172.17.0.6/28" in out and "default via 172.17.0.1 dev eth2" in out
    assert "nameserver 8.8.8.8" in out and "1 packets received" in out
    assert "eth1" not in links() and "docker0" in links()
    # --network none wins over ./netconf.json.
    out = tb("run", "--bundle", str(make_bundle()), "--network", "none", unique("none"),
             "ip", "-o", "link", cwd=workdir).stdout  # fmt: skip
    assert "eth2" not in out


def test_missing_bridge_is_a_clear_error(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    bridge = "tbno" + uuid.uuid4().hex[:6]
    conf = _netconf(tmp_path, _bridged(bridge, "10.213.99"))
    name = unique("nob")
    err = tb.fails("run", "--bundle", str(make_bundle()), "--netconf", conf, name, "true")
    assert f"bridge {bridge!r} does not exist" in err
    assert tb.names() == [] and not (tb.root / ".network" / bridge).exists()


BAD_INPUT: dict[str, tuple[dict[str, Any], str]] = {
    "invalid cidr": ({"peer_ip": "10.213.99.300/24"}, "invalid CIDR"),
    "gateway outside subnet": (
        {"routes": [{"subnet": "0.0.0.0/0", "gateway": "10.99.0.1"}]},
        "outside the interface's subnet",
    ),
    "host end name too long": ({"name": "averyverylongname"}, "longer than 15"),
    "unknown interface type": ({"type": "macvlan"}, "unknown interface type"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_netconf_leaves_nothing(
    tb: TB,
    net: Net,
    make_bundle: Callable[..., Path],
    own_bridge: Callable[[str, str], str],
    tmp_path: Path,
    case: str,
) -> None:
    own_bridge(net.bridge, f"{net.gateway}/24")
    change, expected = BAD_INPUT[case]
    conf = _netconf(tmp_path, _bridged(net.bridge, net.prefix, **change))
    name = unique("bad")
    assert expected in tb.fails(
        "run", "--bundle", str(make_bundle()), "--netconf", conf, name, "true"
    )
    assert tb.names() == [] and not (tb.root / ".network").exists()
    assert_no_trace(tb, net, [name])


def test_bad_model_and_duplicate_address_leave_nothing(
    tb: TB,
    net: Net,
    make_bundle: Callable[..., Path],
    own_bridge: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    own_bridge(net.bridge, f"{net.gateway}/24")
    bundle = str(make_bundle())
    data = _bridged(net.bridge, net.prefix)
    data["model"]["type"] = "overlay"
    assert "unknown model" in tb.fails("run", "--bundle", bundle, "--netconf",
                                       _netconf(tmp_path, data), unique("m"), "true")  # fmt: skip
    data = _bridged(net.bridge, net.prefix)
    data["interfaces"].append({**data["interfaces"][0], "peer_name": "eth3"})
    assert "duplicate static address" in tb.fails(
        "run", "--bundle", bundle, "--netconf", _netconf(tmp_path, data), unique("d"), "true"
    )
    # The same address as a running box: refused at create, rolled back.
    conf = _netconf(tmp_path, _bridged(net.bridge, net.prefix))
    first, second = unique("first"), unique("second")
    tb("run", "-d", "--bundle", bundle, "--netconf", conf, first, "sleep", "1000")
    err = tb.fails("run", "--bundle", bundle, "--netconf", conf, second, "true")
    assert f"address {net.prefix}.5 is already in use by box {first!r}" in err
    assert tb.names() == [first]
    assert os.listdir(net.leases) == [f"{net.prefix}.5"]
    assert host_veth(tb, second) not in links()
    tb("destroy", "--force", first)
    assert_no_trace(tb, net, [first, second])


def test_failure_while_wiring_rolls_back(
    tb: TB, net: Net, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    """The host end's name is taken on the host: the veth cannot be made after the init
    exists. Everything done before (lease, nft table, ip_forward, hosts) is undone, and
    the interface that was there is left alone."""
    taken = "tbx" + uuid.uuid4().hex[:8]
    ip("link", "add", taken, "type", "bridge")  # any interface will do
    try:
        bundle = str(make_bundle())
        keep = unique("keep")
        tb("run", "-d", "--bundle", bundle, "--network", "default", keep, "sleep", "1000")
        data = {
            "model": {"type": "bridge", "bridge_name": net.bridge},
            "interfaces": [{"type": "veth", "name": taken, "peer_ip": "auto",
                            "routes": [{"subnet": "0.0.0.0/0", "gateway": net.gateway}]}],
        }  # fmt: skip
        name = unique("wire")
        err = tb.fails("run", "--bundle", bundle, "--netconf", _netconf(tmp_path, data),
                       name, "true")  # fmt: skip
        assert f"host interface {taken!r} already exists" in err
        assert taken in links() and tb.names() == [keep]
        leases = os.listdir(net.leases)
        assert len(leases) == 1
        assert name not in (tb.root / keep / "hosts").read_text()
        tb("destroy", "--force", keep)
        assert_no_trace(tb, net, [keep, name])
    finally:
        subprocess.run(["ip", "link", "del", taken], capture_output=True)


def test_publish_needs_a_network(tb: TB, make_bundle: Callable[..., Path]) -> None:
    err = tb.fails("run", "--bundle", str(make_bundle()), "--network", "none", "-p", "8080:80",
                   unique("p"), "true")  # fmt: skip
    assert "--publish needs a network" in err
    assert tb.names() == []


def test_network_needs_a_network_namespace(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = make_bundle(linux={"namespaces": [{"type": "pid"}, {"type": "mount"}]})
    err = tb.fails("run", "--bundle", str(bundle), "--network", "default", unique("h"), "true")
    assert "own network namespace" in err
    assert tb.names() == [] and net.bridge not in links()


def test_the_cli_process_itself_never_imports_pyroute2(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    """pyroute2 is imported by the forked netlink worker, in parallel with the rest of
    create; the CLI process only forks it (docs/NETWORKING.md, Cost)."""
    code = (
        "import sys\n"
        "sys.argv = ['tuibox'] + sys.argv[1:]\n"
        "from tuibox.cli import main\n"
        "rc = main()\n"
        "print('RC', rc, 'LOADED', sorted(m for m in sys.modules if m.startswith('pyroute2')))\n"
    )
    argv = [sys.executable, "-c", code, "--root", str(tb.root), "run", "--bundle",
            str(make_bundle()), "--network", "default", unique("lean"), "true"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    assert "RC 0 LOADED []" in out, out


def test_the_table_goes_with_the_last_box_whichever_made_it(
    tb: TB,
    net: Net,
    make_bundle: Callable[..., Path],
    own_bridge: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    own_bridge(net.bridge, f"{net.gateway}/24")
    bundle = str(make_bundle())
    with_port = _netconf(tmp_path, _bridged(net.bridge, net.prefix))
    without = _netconf(tmp_path, _bridged(net.bridge, net.prefix, peer_ip="auto"))
    a, b = unique("tport"), unique("tplain")
    tb("run", "-d", "--bundle", bundle, "--netconf", with_port, "-p", f"{_free_port()}:80",
       a, "sleep", "1000")  # fmt: skip
    tb("run", "-d", "--bundle", bundle, "--netconf", without, b, "sleep", "1000")
    assert net.table in ruleset()
    assert "ip daddr != " not in ruleset().split(net.table)[1]  # a netconf: no masquerade
    tb("destroy", "--force", a)
    assert net.table in ruleset()
    tb("destroy", "--force", b)
    assert_no_trace(tb, net, [a, b])


# ---- state shared between roots, flushes and reloads, teardown failures ---------------------

SERVE = "mkdir -p /www && echo hello-from-box > /www/index.html && exec httpd -f -p 80 -h /www"


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_two_state_roots_share_one_bridge(
    tb: TB, net: Net, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    """Leases belong to the bridge: two roots get distinct addresses, and the first root's
    last box leaving keeps the table (and the second root's published port) alive."""
    bundle = str(make_bundle())
    port = _free_port()
    a, web = unique("r1"), unique("r2web")
    with tb_at(tmp_path / "state2", tmp_path / "data2", tmp_path) as tb2:
        tb("run", "-d", "--bundle", bundle, "--network", "default", a, "sleep", "1000")
        tb2("run", "-d", "--bundle", bundle, "--network", "default",
            "-p", f"127.0.0.1:{port}:80", web, "sh", "-c", SERVE)  # fmt: skip
        addr_a, addr_w = boxes_json(tb)[a]["address"], boxes_json(tb2)[web]["address"]
        assert addr_a != addr_w
        owners = {f.name: f.read_text().splitlines()[1] for f in net.leases.iterdir()}
        assert owners == {addr_a: f"root {tb.root}", addr_w: f"root {tb2.root}"}
        assert not (tb.root / ".network" / net.bridge / "leases").exists()
        # Names are a root's own: each /etc/hosts lists only its root's boxes.
        assert web not in (tb.root / a / "hosts").read_text()
        assert _fetch(port) == b"hello-from-box\n"
        (entry,) = json.loads(tb("network", "ls", "--format", "json").stdout)
        assert entry["boxes"] == [a]
        tb("destroy", "--force", a)  # root 1's last box: not the bridge's last
        assert net.table in ruleset()
        assert _fetch(port) == b"hello-from-box\n"
        assert [f.name for f in net.leases.iterdir()] == [addr_w]
        # Root 1 cannot remove the network while root 2 has a box on its bridge.
        err = tb.fails("network", "rm", "default")
        assert f"still has boxes: {web} (state root {tb2.root})" in err
        tb2("destroy", "--force", web)
        assert net.table not in ruleset() and not net.shared.exists()
        tb2("network", "rm", "default")
    assert_no_trace(tb, net, [a, web])


def test_rules_come_back_after_a_flush_and_with_network_reload(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    """The table mark is not trusted: a table deleted behind tuibox's back (only this test's
    own) is made again by the next box that needs it, with the ports of the boxes already
    there; `network reload` does the same for the boxes that exist."""
    bundle = str(make_bundle())
    p1, p2 = _free_port(), _free_port()
    one, two = unique("fl1"), unique("fl2")
    tb("run", "-d", "--bundle", bundle, "--network", "default", "-p", f"127.0.0.1:{p1}:80",
       one, "sh", "-c", SERVE)  # fmt: skip
    assert _fetch(p1) == b"hello-from-box\n"
    subprocess.run(["nft", "delete", "table", "ip", net.table], check=True)
    assert _refused(p1)
    tb("run", "-d", "--bundle", bundle, "--network", "default", "-p", f"{p2}:80",
       two, "sh", "-c", SERVE)  # fmt: skip
    assert _fetch(p2) == b"hello-from-box\n"
    assert _fetch(p1) == b"hello-from-box\n"  # restored with the table, from one's lease
    assert f"ip saddr {net.subnet}" in ruleset()  # and the NAT rule
    # A flush again; this time `network reload` brings both back.
    subprocess.run(["nft", "delete", "table", "ip", net.table], check=True)
    assert _refused(p1) and _refused(p2)
    out = tb("network", "reload").stdout
    assert f"default: table {net.table}, 2 published ports" in out
    assert _fetch(p1) == b"hello-from-box\n" and _fetch(p2) == b"hello-from-box\n"
    # Reloading a table that is there changes nothing a box can see.
    tb("network", "reload", "default")
    assert _fetch(p1) == b"hello-from-box\n"
    assert "does not exist" in tb.fails("network", "reload", "nosuchnet")
    # A mark from another boot is not trusted either: the next box re-makes the table.
    mark = net.shared / "table"
    mark.write_text(mark.read_text().replace("boot=", "boot=x"))
    tb("run", "--bundle", bundle, "--network", "default", unique("fl3"), "true")
    assert "boot=x" not in mark.read_text()
    assert _fetch(p1) == b"hello-from-box\n"
    tb("destroy", "--force", one, two)
    assert_no_trace(tb, net, [one, two])


LEAVE = """
import json, os, resource, sys
from tuibox.runtime.errors import ResourceTeardownError
from tuibox.runtime.network import nat, ports, stage  # loaded before the limit bites
from tuibox.runtime.state import StateRoot

root, name, free = sys.argv[1], sys.argv[2], int(sys.argv[3])
record = StateRoot(root).read(name)
nat.Nft.get()
if free >= 0:
    # Exactly `free` descriptors left: what a destroy under a low RLIMIT_NOFILE meets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 256), hard))
    held = []
    while True:
        try:
            held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            break
    for _ in range(free):
        os.close(held.pop())
try:
    stage.leave(root, record)
    failures = []
except ResourceTeardownError as e:
    failures = [[f.resource, f.reason, str(f)] for f in e.failures]
print(json.dumps(failures))
"""


def test_network_teardown_failures_are_named_and_a_retry_cleans_up(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    port = _free_port()
    name = unique("fd")
    tb("run", "-d", "--bundle", bundle, "--network", "default", "-p", f"127.0.0.1:{port}:80",
       name, "sh", "-c", SERVE)  # fmt: skip
    addr = boxes_json(tb)[name]["address"]
    tb("kill", name, "KILL")
    wait_for(lambda: tb.state(name)["status"] == "stopped")

    def leave(free: int) -> list[list[str]]:
        argv = [sys.executable, "-c", LEAVE, str(tb.root), name, str(free)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out: list[list[str]] = json.loads(proc.stdout)
        return out

    # One descriptor: the bridge's lock is taken, reading the lease is not.
    failures = leave(1)
    resources = [f[0] for f in failures]
    assert f"lease {addr} on {net.bridge}" in resources, failures
    assert all(reason == "too many open files" for _, reason, _ in failures), failures
    assert (net.leases / addr).exists() and net.table in ruleset()  # kept for the retry
    # The retry, with descriptors to spare, finishes the job.
    assert leave(-1) == []
    assert not net.shared.exists() and net.table not in ruleset()
    assert leave(-1) == []  # and a third time is harmless
    tb("destroy", "--force", name)
    assert_no_trace(tb, net, [name])


def test_leave_by_name_frees_only_that_roots_box(
    tb: TB, net: Net, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    """Without a record (a corrupt state.json, gc), a box's network is found from the leases
    that name it; the same name in another root is another box and keeps everything."""
    bundle = str(make_bundle())
    p1, p2 = _free_port(), _free_port()
    name = unique("same")
    code = (
        "import sys\n"
        "from tuibox.runtime.network import stage\n"
        "stage.leave_by_name(sys.argv[1], sys.argv[2])\n"
    )
    with tb_at(tmp_path / "state2", tmp_path / "data2", tmp_path) as tb2:
        for t, port in ((tb, p1), (tb2, p2)):
            t("run", "-d", "--bundle", bundle, "--network", "default",
              "-p", f"127.0.0.1:{port}:80", name, "sh", "-c", SERVE)  # fmt: skip
        addr1 = boxes_json(tb)[name]["address"]
        tb("kill", name, "KILL")
        wait_for(lambda: tb.state(name)["status"] == "stopped")
        subprocess.run([sys.executable, "-c", code, str(tb.root), name], check=True)
        assert not (net.leases / addr1).exists() and len(os.listdir(net.leases)) == 1
        assert _refused(p1)
        assert _fetch(p2) == b"hello-from-box\n"  # root 2's box of that name is untouched
        assert host_veth(tb, name) not in links()
        tb("destroy", "--force", name)  # the record's own teardown finds nothing left
        assert _fetch(p2) == b"hello-from-box\n"
        tb2("destroy", "--force", name)
        subprocess.run([sys.executable, "-c", code, str(tb2.root), name], check=True)
    assert_no_trace(tb, net, [name])


def test_a_leaked_lease_is_no_peer_and_network_rm_collects_it(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    keep = unique("keep")
    tb("run", "-d", "--bundle", bundle, "--network", "default", keep, "sleep", "1000")
    ghost = f"{net.prefix}.200"
    (net.leases / ghost).write_text(f"ghost ghost\nroot {tb.root}\n")  # a crashed create's
    name = unique("new")
    hosts = tb("run", "--bundle", bundle, "--network", "default", name, "cat", "/etc/hosts")
    assert "ghost" not in hosts.stdout and keep in hosts.stdout
    assert "ghost" not in (tb.root / keep / "hosts").read_text()
    tb("destroy", "--force", keep)
    assert (net.leases / ghost).exists()  # not a destroy's to free...
    assert net.table not in ruleset()  # ...but it keeps no table alive
    tb("network", "rm", "default")
    assert not net.shared.exists() and net.table not in ruleset()
    assert_no_trace(tb, net, [keep, name])


def test_leases_kept_under_the_root_by_an_older_tuibox_are_taken_over(
    tb: TB, net: Net, make_bundle: Callable[..., Path]
) -> None:
    bundle = str(make_bundle())
    port = _free_port()
    old, new = unique("old"), unique("new")
    tb("run", "-d", "--bundle", bundle, "--network", "default", "-p", f"127.0.0.1:{port}:80",
       old, "sh", "-c", SERVE)  # fmt: skip
    addr = boxes_json(tb)[old]["address"]
    # The layout before leases were shared: <root>/.network/<bridge>/{leases/ADDR,table}.
    legacy = tb.root / ".network" / net.bridge
    (legacy / "leases").mkdir()
    (legacy / "leases" / addr).write_text(f"{old} {old}\n")
    (legacy / "table").write_text("")
    (net.leases / addr).unlink()
    (net.shared / "table").unlink()
    tb("run", "-d", "--bundle", bundle, "--network", "default", new, "sleep", "1000")
    assert boxes_json(tb)[new]["address"] != addr
    assert not (legacy / "leases").exists() and not (legacy / "table").exists()
    assert (net.leases / addr).read_text() == (
        f"{old} {old}\nroot {tb.root}\nport 127.0.0.1:{port}:80/tcp\n"
    )
    assert _fetch(port) == b"hello-from-box\n"  # its port survived the table being re-made
    tb("destroy", "--force", old, new)
    assert_no_trace(tb, net, [old, new])
