"""The TUI's debris line and its clean-up (issue 12: "the TUI shows a debris count and offers
it"): on the fake for what the user sees, and on the real runtime with real debris."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import refresh, text_of, wait_until
from fake_backend import FakeBackend

from tests.conftest import unique
from tests.integration.test_faults import cgroups, processes
from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.service import CliBackend, DebrisRow, GcResult, ServiceError
from tuibox.widgets.debris import DebrisLine, question, result_text


def line(app: TuiboxApp) -> DebrisLine:
    return app.screen.query_one("#debris", DebrisLine)


def footer_has_gc(app: TuiboxApp) -> bool:
    return any(a.binding.action == "gc" for a in app.screen.active_bindings.values())


async def test_no_debris_no_line_and_no_key(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await refresh(pilot)
        assert line(app).has_class("hidden")
        assert not footer_has_gc(app)
        assert app.screen.action_reason("gc") == "no debris found"  # type: ignore[attr-defined]
        await pilot.press("C")
        assert isinstance(app.screen, BoxesScreen)
        assert ("gc",) in fake.calls and ("gc", "--yes") not in fake.calls


async def test_debris_found_later_shows_when_a_box_leaves(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await refresh(pilot)
        looks = fake.calls.count(("gc",))
        await refresh(pilot)
        assert fake.calls.count(("gc",)) == looks  # not on every poll
        fake.debris_items = [DebrisRow("cgroup", "web", "/tuibox/web", "kill, remove")]
        del fake.boxes["web"]  # a box dir deleted by hand, say
        await refresh(pilot)
        await wait_until(pilot, lambda: not line(app).has_class("hidden"))
        assert "debris: 1 item left by boxes that no longer exist (cgroup)" in text_of(line(app))
        assert footer_has_gc(app)
        await pilot.press("C")
        assert isinstance(app.screen, ConfirmScreen)
        assert "cgroup web: kill, remove" in app.screen.question
        await pilot.press("n")  # cancelled: nothing removed
        assert ("gc", "--yes") not in fake.calls and fake.debris_items


def test_the_question_lists_a_screenful() -> None:
    items = [DebrisRow("layer", f"b{i}", f"/d/b{i}", "remove") for i in range(15)]
    text = question(items)
    assert "Clean up 15 items" in text and "layer b11: remove" in text
    assert "layer b12" not in text and "… and 3 more" in text
    # a reason from a damaged record is text, never markup
    assert "\\[x]" in question([DebrisRow("box", "a", "/r/a", "tear down ([x])")])


async def test_a_failed_clean_up_is_shown_and_the_debris_stays(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.debris_items = [DebrisRow("userns-lease", "x", "/r/.userns/x.lease", "remove")]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(line(app).items))
        fake.fail["gc"] = "permission denied: /r/.userns"
        await pilot.press("C", "y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        errors = [n for n in app._notifications if n.severity == "error"]
        assert [n.message for n in errors] == ["permission denied: /r/.userns"]
        assert "1 item" in text_of(line(app)) and footer_has_gc(app)


GC_CLI = r"""#!{python}
import json, sys
words = sys.argv[sys.argv.index("--data-root") + 2 :]
item = lambda kind, box, path: {{"kind": kind, "box": box, "path": path, "action": "remove"}}
items = [item("layer", "a", "/d/boxes/a"), item("layer", "b", "/d/boxes/b")]
if {broken!r}:
    sys.stderr.write("tuibox: error: cannot open state root /r: permission denied\n")
    sys.exit(125)
if "--yes" in words:
    print(json.dumps({{"removed": True, "items": items, "failures": ["layer /d/boxes/b: busy"]}}))
    sys.stderr.write("tuibox: error: layer /d/boxes/b: busy\n")
    sys.exit(125)
print(json.dumps({{"removed": False, "items": items, "failures": []}}))
"""


def gc_cli(tmp_path: Path, broken: bool) -> CliBackend:
    script = tmp_path / f"gc-python-{broken}"
    script.write_text(GC_CLI.format(python=sys.executable, broken=broken))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return CliBackend(str(tmp_path / "r"), str(tmp_path / "d"), python=str(script))


def test_cli_backend_gc_reports_a_partial_clean_up(tmp_path: Path) -> None:
    backend = gc_cli(tmp_path, broken=False)
    found = asyncio.run(backend.debris())
    assert [(d.kind, d.box) for d in found] == [("layer", "a"), ("layer", "b")]
    result = asyncio.run(backend.collect_debris())  # exit 125, but a report on stdout
    assert [d.box for d in result.items] == ["a", "b"]
    assert result.failures == ("layer /d/boxes/b: busy",)
    assert result_text(result) == "removed 1 item: layer a"
    broken = gc_cli(tmp_path, broken=True)
    with pytest.raises(ServiceError, match="cannot open state root /r: permission denied"):
        asyncio.run(broken.collect_debris())
    assert result_text(GcResult((), ())) == ""


@pytest.mark.root
async def test_clean_up_real_debris(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path, tmp_path: Path
) -> None:
    app = real_app
    try:
        # A running box whose dir was deleted: its processes and cgroups are left.
        gone = unique("gone")
        # the shell's $0 names this test's dir: `processes` finds it by that
        program = ["sh", "-c", "sleep 1000", str(tmp_path)]
        tb("run", "-d", "--rootfs", str(busybox_rootfs), gone, *program)
        subprocess.run(["rm", "-rf", str(tb.root / gone)], check=True)
        # A create killed after its intent and cgroups: a box dir that is only debris.
        dead = unique("dead")
        env = {**os.environ, "TUIBOX_FAULT": "cgroups"}
        argv = tb.argv("run", "-d", "--rootfs", str(busybox_rootfs), dead, *program)
        proc = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert len(processes(str(tmp_path))) == 1 and cgroups(tb.root)

        async with app.run_test(size=(140, 45)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen))
            # the deleted box's cgroup and its log dir on the data root; the killed create
            await wait_until(pilot, lambda: len(line(app).items) == 3, timeout=15)
            assert (
                "debris: 3 items left by boxes that no longer exist (box, cgroup, layer)"
                in text_of(line(app))
            )
            await wait_until(pilot, lambda: footer_has_gc(app))
            await pilot.press("C")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            asked = app.screen.question  # type: ignore[attr-defined]
            assert f"cgroup {gone}: kill, remove" in asked
            assert f"box {dead}: tear down (its create or destroy was killed)" in asked
            await pilot.press("y")
            await wait_until(pilot, lambda: line(app).has_class("hidden"), timeout=30)
            toasts = [n.message for n in app._notifications]
            assert any(
                m.startswith("removed 3 items: ") and gone in m and dead in m for m in toasts
            ), toasts
            assert not footer_has_gc(app)
            assert app.box(dead) is None

        assert processes(str(tmp_path)) == set()
        assert cgroups(tb.root) == set()
        assert tb.names() == []
        assert tb("gc").stdout == "no debris\n"
    finally:  # what the clean-up did not remove (the test failed before it) goes anyway
        tb("gc", "--yes", check=False)
