"""Default hardening as a Stage: the capability sets of the box's processes.

The spec's `process.capabilities` when given, else docker's default set (`defaults.
CAPABILITIES`) for bounding, effective, permitted and inheritable, ambient empty. Checked in
the parent before the fork, so asking for a capability this host lacks (CAP_SYS_RESOURCE
here) is one clear error naming it. The init applies them through its hooks: bounding drop
and keep-caps before the uid changes, capset after. maskedPaths, readonlyPaths and
noNewPrivileges are init steps already; the device allowlist is the cgroup stage's.

It also checks, before the fork, what only the host can tell (`check_host`): an AppArmor or
SELinux label on a host without that LSM, a sysctl whose namespace, given by path, is the
host's own. Both are refused with one line naming the field (fail closed).

The record keeps what `exec` needs to confine a new process the same way (`extra["process"]`).
"""

from __future__ import annotations

import os

from tuibox.runtime import defaults
from tuibox.runtime.errors import SpecError
from tuibox.runtime.linux import capabilities as caps
from tuibox.runtime.stages.base import SetupContext, Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.spec_model import Process, Spec


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


def check_host(spec: Spec) -> None:
    """SpecError for a security field this host cannot honour for this spec."""
    p = spec.process
    if p.apparmor_profile or p.selinux_label or spec.linux.mount_label:
        from tuibox.runtime.linux import lsm

        problem = lsm.host_problem(p.apparmor_profile, p.selinux_label, spec.linux.mount_label)
        if problem is not None:
            raise SpecError(f"config.json: {problem[0]}: {problem[1]}")
    if spec.linux.sysctl:
        from tuibox.runtime.spec import sysctl_namespace

        for key in spec.linux.sysctl:
            kind = sysctl_namespace(key)
            ns = spec.namespace(kind) if kind is not None else None
            if ns is not None and ns.path and _is_own_namespace(ns.path, kind or ""):
                # runc's isHostNetNS, for every kind: joining our own namespace by path is
                # not a private one, and the write would change the host.
                raise SpecError(
                    f"config.json: linux.sysctl.{key}: the {kind} namespace {ns.path} is the "
                    "host's own; setting it would change the host"
                )


def _is_own_namespace(path: str, kind: str) -> bool:
    from tuibox.runtime.linux.syscalls import NAMESPACE_PROC_NAMES

    try:
        theirs = os.stat(path)
        ours = os.stat(f"/proc/self/ns/{NAMESPACE_PROC_NAMES[kind]}")
    except OSError:
        return False  # the init's setns reports a bad path in its own words
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


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
        # exec'd processes get these too, as runc's
        "oom_score_adj": process.oom_score_adj,
        "apparmor_profile": process.apparmor_profile,
        "selinux_label": process.selinux_label,
    }


def _wanted(req: CreateRequest) -> bool:
    return True


def _prepare(ctx: SetupContext) -> None:
    process = ctx.request.spec.process
    sets = check(process)
    check_host(ctx.request.spec)

    def before_user(plan: InitPlan) -> None:
        caps.drop_bounding(sets)

    def before_exec(plan: InitPlan) -> None:
        caps.apply_sets(sets)

    ctx.plan.before_user.append(before_user)
    ctx.plan.before_exec.append(before_exec)
    ctx.record.extra["process"] = process_record(process, sets)


STAGE = Stage("confine", _wanted, _prepare)
