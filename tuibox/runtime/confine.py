"""Default hardening as a Stage: the capability sets of the box's processes.

The spec's `process.capabilities` when given, else docker's default set (`defaults.
CAPABILITIES`) for bounding, effective, permitted and inheritable, ambient empty. Checked in
the parent before the fork, so asking for a capability this host lacks (CAP_SYS_RESOURCE
here) is one clear error naming it. The init applies them through its hooks: bounding drop
and keep-caps before the uid changes, capset after. maskedPaths, readonlyPaths and
noNewPrivileges are init steps already; the device allowlist is the cgroup stage's.

The record keeps what `exec` needs to confine a new process the same way (`extra["process"]`).
"""

from __future__ import annotations

from tuibox.runtime import defaults
from tuibox.runtime.box import SetupContext, Stage, register_stage
from tuibox.runtime.errors import SpecError
from tuibox.runtime.linux import capabilities as caps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.box import CreateRequest
    from tuibox.runtime.init import InitPlan
    from tuibox.runtime.spec_model import Process


def check(process: Process, where: str = "config.json: process.capabilities") -> caps.CapSets:
    """The sets a process gets; SpecError for unknown, unavailable or inconsistent ones."""
    sets = caps.resolve(process.capabilities, defaults.CAPABILITIES)
    missing = caps.unavailable(sets)
    if missing:
        raise SpecError(
            f"{where}: not available on this host (tuibox itself lacks them): " + ", ".join(missing)
        )
    problem = caps.inconsistent(sets)
    if problem:
        raise SpecError(f"{where}: {problem}")
    return sets


def process_record(process: Process, sets: caps.CapSets) -> dict[str, Any]:
    """What exec needs to start a process confined like the box's own."""
    user = process.user
    return {
        "env": list(process.env),
        "cwd": process.cwd,
        "uid": user.uid,
        "gid": user.gid,
        "additional_gids": list(user.additional_gids),
        "umask": user.umask,
        "no_new_privileges": process.no_new_privileges,
        "capabilities": sets.to_json(),
        "rlimits": [[r.type, r.resource, r.soft, r.hard] for r in process.rlimits],
    }


def _wanted(req: CreateRequest) -> bool:
    return True


def _prepare(ctx: SetupContext) -> None:
    process = ctx.request.spec.process
    sets = check(process)

    def before_user(plan: InitPlan) -> None:
        caps.drop_bounding(sets)

    def before_exec(plan: InitPlan) -> None:
        caps.apply_sets(sets)

    ctx.plan.before_user.append(before_user)
    ctx.plan.before_exec.append(before_exec)
    ctx.record.extra["process"] = process_record(process, sets)


STAGE = Stage("confine", _wanted, _prepare)
register_stage(STAGE)
