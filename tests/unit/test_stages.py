"""The stage table: one explicit order, modules loaded only when a request needs them."""

from __future__ import annotations

import subprocess
import sys

from tuibox.runtime.request import CreateRequest
from tuibox.runtime.spec import parse_spec, starter_spec
from tuibox.runtime.stages import order as stages


def test_the_order_is_the_table() -> None:
    assert [name for name, _module, _needed in stages.ORDER] == [
        "userns",
        "confine",
        "cgroups",
        "network",
        "console",
        "seccomp",
    ]


def test_every_module_defines_its_stage_and_registers_nothing() -> None:
    for name, module, _needed in stages.ORDER:
        stage = stages.by_names([name])[0]
        assert stage.name == name, module


def test_no_teardown_names_exactly_the_stages_without_one() -> None:
    for name, module, _needed in stages.ORDER:
        stage = stages.by_names([name])[0]
        assert (name in stages.NO_TEARDOWN) == (stage.teardown is None), module
    every = [name for name, _module, _needed in stages.ORDER]
    assert [s.name for s in stages.with_teardown(every)] == [
        n for n in every if n not in stages.NO_TEARDOWN
    ]


def test_a_plain_request_loads_no_optional_stage() -> None:
    req = CreateRequest("b", parse_spec(starter_spec(["true"]), "/tmp"))
    assert [s.name for s in stages.for_request(req)] == ["confine", "cgroups"]
    req.options.update(console={}, userns={}, seccomp={})
    # The table's order, whatever the options' order; seccomp's own `wanted` sees no filter.
    names = [s.name for s in stages.for_request(req)]
    assert names == ["userns", "confine", "cgroups", "console"]


def test_teardown_order_does_not_depend_on_import_order() -> None:
    assert [s.name for s in stages.by_names(["seccomp", "cgroups", "userns"])] == [
        "userns",
        "cgroups",
        "seccomp",
    ]


def test_importing_box_imports_no_stage_module() -> None:
    code = (
        "import sys, tuibox.runtime.box\n"
        "bad = [m for m in sys.modules if m.endswith(('.confine', '.stage', '.console',"
        " '.userns')) and m.startswith('tuibox')]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
