"""The cgroup Stage: every box gets a cgroup (limits, stats, ps, freezer), made before the fork.

prepare (parent, before the fork): validate linux.resources, create the directories, write
the limits and the device allowlist, register the undo. attach (once the init's namespaces
exist): put the init in. teardown (destroy): kill what is left, remove the directories.
Importing this module registers the stage (box.py imports it when it creates or destroys).
"""

from __future__ import annotations

from tuibox.runtime.cgroups import for_record
from tuibox.runtime.cgroups.group import BoxCgroup
from tuibox.runtime.cgroups.hierarchy import box_path, detect
from tuibox.runtime.cgroups.resources import device_rules, limits, parse_resources
from tuibox.runtime.errors import CgroupError
from tuibox.runtime.linux import proc
from tuibox.runtime.process import warmer
from tuibox.runtime.stages.base import SetupContext, Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.state import BoxRecord


def _wanted(req: CreateRequest) -> bool:
    return True


def _prepare(ctx: SetupContext) -> None:
    spec = ctx.request.spec
    res = parse_resources(spec.linux.resources)
    path = box_path(spec.linux.cgroups_path, ctx.record.id, ctx.runtime.root.path)
    cg = BoxCgroup.create(detect(), path)
    ctx.undo.callback(cg.destroy)
    warnings = cg.apply(res, device_rules(res, spec.linux.devices))
    extra = ctx.record.extra
    extra["cgroup"] = path
    extra["cgroup_dirs"] = cg.to_record()
    extra["limits"] = limits(res)
    if warnings:
        extra["warnings"] = [*extra.get("warnings", []), *warnings]


def _attach(ctx: SetupContext) -> None:
    try:
        cg = BoxCgroup.from_record(ctx.record.extra)
        if cg is not None:
            cg.add(ctx.pid)
    except CgroupError:
        # The init works on while we attach; if it already failed and exited, its own
        # error (read next by box.py) is the one to report, not our "no such process".
        if proc.is_alive(ctx.pid, ctx.record.starttime):
            raise
    finally:
        # The box's migrations are done (or will never be): the CLI's warmer may go
        # (process/warmer.py), whatever happens, before a foreground box's program runs.
        warmer.stop()


def _teardown(runtime: Runtime, record: BoxRecord, box_dir: object) -> None:
    cg = for_record(record)
    if cg is not None:
        cg.destroy()


STAGE = Stage("cgroups", _wanted, _prepare, _attach, _teardown)
