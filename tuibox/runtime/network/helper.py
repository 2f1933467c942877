"""The netlink worker: a child forked from the CLI as soon as a network is asked for.

Importing the pyroute2 pieces costs 25-60 ms of CPU here, most of it in modules pyroute2
needs (logging with re, socket with enum, typing). Done inline it would be the largest part
of a box's network cost. So the CLI forks this worker early (it is single-threaded, so
forking is safe, ~1 ms): the worker imports rtnl while the CLI loads the spec, leases the
address, makes the nft table, writes the box's files, forks the init and puts it in its
cgroup. The network stage then sends it the bridge to make sure of (at `prepare`) and the
init's pid and the interfaces (at `attach`); the worker creates the veth pairs, configures
the box side and answers with what it created, or with an error after deleting what it had
created. One worker per create; it exits after its answer, or when the parent closes the
pipe (an abandoned create, or a CLI that failed before creating anything).

Messages are sync.Channel JSON lines:
    parent -> worker   {"type": "ensure", "root", "bridge", "subnet", "gateway", ...}   optional
                       {"type": "attach", "pid": N, "bridge", "loopback", "interfaces": [...]}
    worker -> parent   {"type": "done", "created": [...]} | {"type": "error", "msg": ...}

TUIBOX_NET_WORKER=0 does the same work inline at attach (bench/network_bench.py --inline).
"""

from __future__ import annotations

import os

from tuibox.runtime.errors import NetworkError
from tuibox.runtime.process.sync import Channel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from tuibox.runtime.network.rtnl import Rtnl


class Helper:
    def __init__(self, pid: int, chan: Channel | None) -> None:
        self.pid = pid
        self.chan = chan

    @classmethod
    def start(cls) -> Helper:
        """Fork the worker; it starts importing at once."""
        if os.environ.get("TUIBOX_NET_WORKER") == "0":
            return InlineHelper()
        parent, child = Channel.pair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker
            for fd in parent.fds():
                os.close(fd)
            _worker(child)
        for fd in child.fds():
            os.close(fd)
        return cls(pid, parent)

    def ensure(self, job: dict[str, Any]) -> None:
        """Have the worker make sure of a tuibox network's bridge (answered at attach)."""
        if self.chan is None:
            raise NetworkError("network worker is gone")
        self.chan.send("ensure", **job)

    def attach(self, job: dict[str, Any]) -> list[str]:
        """Have the worker wire the box; the host ends it created."""
        chan = self.chan
        if chan is None:
            raise NetworkError("network worker is gone")
        try:
            chan.send("attach", **job)
            reply = chan.recv()
        except OSError:
            reply = None  # EPIPE: it died
        finally:
            self.finish()
        if reply is None:
            raise NetworkError("network worker died")
        if reply.get("type") == "error":
            raise NetworkError(str(reply.get("msg") or "network setup failed"))
        return [str(n) for n in reply.get("created", ())]

    def finish(self) -> None:
        """Close the pipe (an idle worker then exits) and reap the worker."""
        if self.chan is None:
            return
        for fd in self.chan.fds():
            os.close(fd)
        self.chan = None
        while True:
            try:
                os.waitpid(self.pid, 0)
                return
            except InterruptedError:
                continue
            except ChildProcessError:
                return


class InlineHelper(Helper):
    """The worker's job done in this process, when `attach` comes."""

    def __init__(self) -> None:
        super().__init__(0, None)
        self.bridge_job: dict[str, Any] | None = None

    def ensure(self, job: dict[str, Any]) -> None:
        self.bridge_job = job

    def attach(self, job: dict[str, Any]) -> list[str]:
        from tuibox.runtime.network import rtnl

        created: list[str] = []
        try:
            master = _ensure_bridge(self.bridge_job) if self.bridge_job is not None else None
            with rtnl.Rtnl() as host:
                wire(host, job, master, created)
        except Exception as e:
            _undo_created(created)
            raise NetworkError(_message(e)) from None
        return created


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return str(e.strerror)
    return str(e) or type(e).__name__


def _worker(chan: Channel) -> NoReturn:  # pragma: no cover - runs in the forked worker
    code = 1
    try:
        from tuibox.runtime.network import rtnl

        master: int | None = None
        failure: str | None = None
        while True:
            job = chan.recv()
            if job is None:
                code = 0  # nothing to do after all
                break
            if job["type"] == "ensure":
                try:
                    master = _ensure_bridge(job)
                except Exception as e:
                    failure = _message(e)  # told when the attach comes
                continue
            if failure is not None:
                chan.send("error", msg=failure)
                break
            created: list[str] = []
            try:
                with rtnl.Rtnl() as host:
                    wire(host, job, master, created)
                chan.send("done", created=created)
                code = 0
            except Exception as e:
                _undo_created(created)
                chan.send("error", msg=_message(e))
            break
    except BaseException:
        pass
    os._exit(code)


def _ensure_bridge(job: dict[str, Any]) -> int:
    """The bridge's index, after making sure it exists with its gateway. Creation happens
    under the network's lock (two creates racing for one new bridge)."""
    from tuibox.runtime.network import bridge as br
    from tuibox.runtime.network import ip4, rtnl
    from tuibox.runtime.network.bridgestore import BridgeStore
    from tuibox.runtime.network.ip4 import Cidr
    from tuibox.runtime.network.netstore import NetState, NetStore

    name = str(job["bridge"])
    subnet = Cidr.parse(job["subnet"])
    gateway = ip4.parse(job["gateway"])
    with rtnl.Rtnl() as nl:
        link = nl.link(name)
        if (
            link is not None
            and link.kind == "bridge"
            and any(a.ip == gateway for _, a in nl.addresses(link.index))
        ):
            return link.index  # the usual case: no lock needed
        store = NetStore(job["root"])
        with BridgeStore(name).locked():
            link, created = br.ensure_bridge(nl, name, subnet, gateway, job["hint"])
            if created:
                state = store.read(name) or NetState(
                    job["name"], name, "tuibox", str(subnet), job["gateway"], job["nat"]
                )
                state.created_bridge = True
                store.write(state)
        return link.index


def wire(host: Rtnl, job: dict[str, Any], master: int | None, created: list[str]) -> None:
    """Create the pairs into the box's netns and configure the box side."""
    from tuibox.runtime.network import ip4, rtnl, veth
    from tuibox.runtime.network.ip4 import Cidr
    from tuibox.runtime.network.netconf import Route

    fd = rtnl.open_netns(int(job["pid"]))
    try:
        if job.get("bridge") is not None and master is None:
            link = host.link(job["bridge"])
            if link is None:
                raise NetworkError(f"bridge {job['bridge']!r} does not exist")
            master = link.index
        for iface in job["interfaces"]:
            veth.create(host, iface["host"], iface["box"], fd, master)
            created.append(iface["host"])
            if iface.get("host_address"):
                veth.address_host_end(host, iface["host"], Cidr.parse(iface["host_address"]))
        with rtnl.Rtnl(fd) as box:
            veth.loopback_up(box, job["loopback"])
            for iface in job["interfaces"]:
                routes = tuple(
                    Route(Cidr.parse(s), ip4.parse(g) if g else None) for s, g in iface["routes"]
                )
                veth.configure_box(box, iface["box"], Cidr.parse(iface["address"]), routes)
    finally:
        os.close(fd)


def _undo_created(created: list[str]) -> None:
    from tuibox.runtime.network import rtnl

    try:
        with rtnl.Rtnl() as nl:
            for name in created:
                nl.delete_link(name)
    except Exception:
        pass
