"""The creation stages, in the one order they run: the table below is the whole story.

Each row is (name, module that defines `STAGE`, whether a request needs that module). A
module is imported only when a request needs it (or, on destroy, when the record says the
stage was used), so `tuibox run` without a network never imports pyroute2's side. `prepare`
and `attach` run in table order; `teardown` in reverse. See stages/base.py for the protocol.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.stages.base import Stage


def _always(req: CreateRequest) -> bool:
    return True


def _asked(name: str) -> Callable[[CreateRequest], bool]:
    # `create` puts an entry in req.options for every optional stage the request needs.
    return lambda req: name in req.options


ORDER: tuple[tuple[str, str, Callable[[CreateRequest], bool]], ...] = (
    # A user namespace first, so later stages see its mappings (runtime/userns.py).
    ("userns", "tuibox.runtime.userns", _asked("userns")),
    # Every box: capabilities (default hardening) and a cgroup (limits, stats, freezer).
    ("confine", "tuibox.runtime.confine", _always),
    ("cgroups", "tuibox.runtime.cgroups.stage", _always),
    # Only boxes that ask for one (options["network"]); see docs/NETWORKING.md.
    ("network", "tuibox.runtime.network.stage", _asked("network")),
    # Boxes with process.terminal: the pty and its keeper (runtime/console.py, keeper.py).
    ("console", "tuibox.runtime.console", _asked("console")),
    # Boxes with linux.seccomp: compile the filter before the fork (runtime/seccomp/).
    ("seccomp", "tuibox.runtime.seccomp.stage", _asked("seccomp")),
)


# The stages whose STAGE has no teardown: a destroy need not import them (confine brings
# ctypes and the spec model, seccomp libseccomp's bindings, console the pty code).
# tests/unit/test_stages.py checks this set against the modules themselves.
NO_TEARDOWN = frozenset({"confine", "console", "seccomp"})


def _load(module: str) -> Stage:
    stage: Stage = __import__(module, fromlist=["STAGE"]).STAGE
    return stage


def for_request(req: CreateRequest) -> list[Stage]:
    """The stages a request needs, in order (their modules imported now)."""
    out = []
    for _name, module, needed in ORDER:
        if needed(req):
            stage = _load(module)
            if stage.wanted(req):
                out.append(stage)
    return out


def by_names(names: list[str]) -> list[Stage]:
    """The stages a record says were used, in order (for teardown, walk it reversed)."""
    return [_load(module) for name, module, _needed in ORDER if name in names]


def with_teardown(names: list[str]) -> list[Stage]:
    """`by_names` without the stages that have nothing to tear down (not even imported)."""
    return [
        _load(module)
        for name, module, _needed in ORDER
        if name in names and name not in NO_TEARDOWN
    ]
