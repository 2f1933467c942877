"""What a stage is: a piece of creation owned by another module (cgroups, network, console).

A stage module defines one `STAGE = Stage(...)` and registers nothing: the ordered table in
`stages/order.py` names every stage module and when it is loaded. This module imports
nothing at run time, so a stage module importing it cannot close a cycle.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.runtime.box import Runtime
    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.state import BoxRecord
    from tuibox.runtime.undo import Undo


class SetupContext:
    """Passed to stages: what they may read and where they register undo steps."""

    def __init__(
        self,
        runtime: Runtime,
        request: CreateRequest,
        record: BoxRecord,
        box_dir: str,
        plan: InitPlan,
        undo: Undo,
    ) -> None:
        self.runtime = runtime
        self.request = request
        self.record = record
        self.box_dir = box_dir
        self.plan = plan
        self.undo = undo
        self.pid = 0


class Stage:
    """The stage protocol: `prepare` runs before the fork, `attach` once the init's namespaces
    exist (ctx.pid is its host pid), `teardown(runtime, record, box_dir)` on destroy. A stage
    is consulted only when `wanted(request)` says so (teardown: when the record shows the
    stage was used)."""

    def __init__(
        self,
        name: str,
        wanted: Callable[[CreateRequest], bool],
        prepare: Callable[[SetupContext], None] | None = None,
        attach: Callable[[SetupContext], None] | None = None,
        teardown: Callable[[Runtime, BoxRecord, str], None] | None = None,
    ) -> None:
        self.name = name
        self.wanted = wanted
        self.prepare = prepare
        self.attach = attach
        self.teardown = teardown
