"""Starting a stopped box again, and `tuibox boot`.

A box's create saves how its request was built (`request.json` in its dir, 0600: the env may
hold secrets; a bundle's config.json is copied beside it). `start` of a stopped box:

1. under the box's lock: refuse an engine's box (its caller owns the lifecycle, as runc's
   "cannot start a container that has stopped"), rebuild the request from request.json (a
   bad or vanished input is one line; nothing was touched), wait for the old monitor to
   have drained the log, release what the last run held (its cgroups, network lease,
   ports and veth, console socket: the stages' own teardown), keep the writable layer, the
   log, the dir and a `--userns auto` id range (the layer's files are owned by it), then
   claim the box (`creating` with `recreate`: a start killed from here on leaves a
   stopped box, not debris);
2. `Runtime.create(req, again=record)`: every stage again, in the same dir; the network asks
   for the address the box had and says so when it got another; a failure undoes what it
   made and puts the stopped record back;
3. `start` lets the new init run.

Loaded only for that (and by `tuibox boot`), never on `run`'s start-up path.
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime import state as st
from tuibox.runtime.errors import TeardownError, TuiboxError
from tuibox.runtime.guards import check
from tuibox.runtime.linux import proc
from tuibox.runtime.request import CreateRequest
from tuibox.runtime.stages.order import by_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.box import Runtime

RECIPE = "request.json"
# Kept across runs: the id range the writable layer's files are owned by.
KEPT_STAGES = ("userns",)


def read_recipe(box_dir: str, name: str) -> dict[str, Any]:
    try:
        with open(os.path.join(box_dir, RECIPE), "rb") as f:
            data = fastjson.loads(f.read())
    except FileNotFoundError:
        raise TuiboxError(
            f"box {name!r} cannot be started again: it has no recorded request (made by an "
            "older tuibox, or by hand through the API); destroy it and create it anew"
        ) from None
    except (OSError, ValueError) as e:
        raise TuiboxError(f"box {name!r}: {RECIPE} is unreadable ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
        raise TuiboxError(f"box {name!r}: {RECIPE} is not a recorded request")
    return data


def request_from(
    recipe: dict[str, Any], name: str, box_dir: str, root: str, address: object = None
) -> CreateRequest:
    """The request the box was created with, built again by the same builder (validated:
    a missing image, bundle or netconf is one line, before anything changes)."""
    options = dict(recipe["options"])
    options["detach"] = True
    kind = recipe.get("kind")
    if kind == "bundle":
        config = os.path.join(box_dir, str(recipe.get("config") or "config.json"))
        req = CreateRequest.from_bundle(name, recipe.get("bundle"), config=config, **options)
    elif kind == "rootfs":
        command = options.pop("command", None)
        req = CreateRequest.from_rootfs(name, str(recipe["rootfs"]), command, **options)
    elif kind == "image":
        req = CreateRequest.from_image(
            name,
            str(recipe["image"]),
            list(recipe.get("command") or ()),
            data_root=recipe.get("data_root"),
            root=root,
            **options,
        )
    else:
        raise TuiboxError(f"box {name!r}: {RECIPE}: unknown kind {kind!r}")
    cgroups_path = recipe.get("cgroups_path")
    if isinstance(cgroups_path, str):  # the CLI's --systemd-cgroup translation
        req.spec = req.spec.replace(linux=req.spec.linux.replace(cgroups_path=cgroups_path))
    net = req.options.get("network")
    if isinstance(net, dict) and isinstance(address, str) and address:
        net["prefer"] = address  # network/stage.py: the same address when it is free
    return req


def _finish_worker(req: CreateRequest | None) -> None:
    net = req.options.get("network") if req is not None else None
    if isinstance(net, dict) and net.get("worker") is not None:
        net["worker"].finish()


def _monitor_busy(record: st.BoxRecord, wait: float) -> bool:
    """Whether the last run's monitor still writes the exit or drains the log (waiting up
    to `wait` seconds for it to leave): the new run's must not write beside it. One that
    sleeps out a restart backoff is not busy: it leaves once the record names another
    monitor. Waited for without the box's lock, which that monitor takes to decide."""
    known = record.extra.get("monitor")
    if not (isinstance(known, list) and len(known) == 2):
        return False
    policy = record.extra.get("restart")
    if isinstance(policy, dict) and policy.get("waiting") == known:
        return False
    return not proc.wait_gone(known[0], known[1], wait)


def _release_last_run(rt: Runtime, record: st.BoxRecord, box_dir: str) -> None:
    failures = []
    for stage in reversed(by_names(record.extra.get("stages", []))):
        if stage.teardown is None or stage.name in KEPT_STAGES:
            continue
        try:
            stage.teardown(rt, record, box_dir)
        except Exception as e:  # every stage gets its turn; each failure is one line
            lines = getattr(e, "failures", None) or [str(e)]
            failures += [f"{stage.name}: {line}" for line in lines]
    if failures:
        raise TeardownError(record.id, failures)
    for name in ("exit", "exec.fifo", "console.sock"):
        try:
            os.unlink(os.path.join(box_dir, name))
        except FileNotFoundError:
            pass


def _copy(record: st.BoxRecord) -> st.BoxRecord:
    return st.BoxRecord.from_json(fastjson.loads(fastjson.dumps(record.to_json())))


def start_again(rt: Runtime, name: str, restarted: bool = False) -> st.BoxRecord:
    """Start the stopped box `name` again (see the module docstring). `restarted`: asked by
    the box's monitor for its restart policy, which counts it; a user's start (or `boot`)
    clears a user's stop and starts the count afresh.

    With `restarted`, a box a user stopped or started meanwhile is left as it is (an
    error, which the monitor takes as "nothing to do" once it reads the record).

    An engine's box (extra["engine"], set by box.py for runc's create: docs/OCI_CLI.md) is
    refused: its engine owns its lifecycle."""
    rt.warnings = []
    d = rt.root.box_dir(name)
    first = rt.get(name)
    req: CreateRequest | None = None
    if first.status == "stopped" and not first.extra.get("engine"):
        # Before the lock: with a network the builder forks the netlink worker, which must
        # not inherit the box's lock (it would hold it through the create below).
        recipe = read_recipe(d, name)
        req = request_from(recipe, name, d, rt.root.path, first.extra.get("address"))
    try:
        _monitor_busy(first, 5.0)
        with rt.root.locked(name):
            record = rt.get(name)
            policy = record.extra.get("restart")
            check("start-again", name, record.status)  # (or started by someone meanwhile)
            if record.extra.get("engine"):
                # runc: "cannot start a container that has stopped"; its caller makes anew.
                check("start-engine", name, record.status)
            if req is None:  # it was not stopped a moment ago
                raise TuiboxError(f"box {name!r} changed while starting it; try again")
            if restarted and (not isinstance(policy, dict) or policy.get("user_stopped")):
                raise TuiboxError(f"box {name!r} was stopped by a user: its policy leaves it")
            if _monitor_busy(record, 0.0):
                raise TuiboxError(f"box {name!r}: its last run's monitor is still busy; try again")
            _release_last_run(rt, record, d)
            kept = [s for s in record.extra.get("stages", []) if s in KEPT_STAGES]
            record.extra["stages"] = kept  # what is still held, for destroy
            record.status = "stopped"
            record.pid = 0
            if isinstance(policy, dict):
                policy["waiting"] = None
                policy["error"] = None
                if not restarted:
                    policy.update(user_stopped=False, count=0, delay_ms=0)
            again = _copy(record)
            # Claimed: a second start (a user's, a monitor's) now sees it being created.
            me = os.getpid()
            record.status = "creating"
            record.extra["creator"] = [me, proc.start_time(me)]
            record.extra["recreate"] = True
            rt.root.write(record)
    except BaseException:
        _finish_worker(req)
        raise
    try:
        try:
            rt.create(req, again=again)
        except BaseException:
            # create puts the stopped record back itself once it has begun; a check that
            # failed before that (its root.path gone) must not leave our claim behind.
            _unclaim(rt, again, record.extra["creator"])
            raise
        out = rt.start(name)
    except TuiboxError as e:
        if restarted:
            _note_error(rt, name, str(e))
        raise
    rt.warnings = list(req.warnings)
    return out


def _unclaim(rt: Runtime, again: st.BoxRecord, creator: list[int | None]) -> None:
    try:
        with rt.root.locked(again.id):
            now = rt.root.read(again.id)
            if now.status == "creating" and now.extra.get("creator") == creator:
                rt.root.write(again)
    except (TuiboxError, OSError):
        pass  # the record stays a claim whose creator is gone: read as stopped


def _note_error(rt: Runtime, name: str, message: str) -> None:
    try:
        with rt.root.locked(name):
            record = rt.root.read(name)
            policy = record.extra.get("restart")
            if isinstance(policy, dict):
                policy["error"] = message.split("\n")[0]
                rt.root.write(record)
    except (TuiboxError, OSError):
        pass  # destroyed meanwhile


def boot(rt: Runtime) -> list[tuple[str, str | None]]:
    """`tuibox boot`: start every stopped box whose policy says so at boot (always;
    unless-stopped unless a user stopped it). (name, None) for each started, (name, why)
    for each that could not be."""
    from tuibox.runtime.restart_policy import starts_at_boot

    out: list[tuple[str, str | None]] = []
    for record in rt.list():
        if record.status != "stopped" or not starts_at_boot(record.extra.get("restart")):
            continue
        try:
            start_again(rt, record.id)
            out.append((record.id, None))
        except TuiboxError as e:
            out.append((record.id, str(e)))
    return out
