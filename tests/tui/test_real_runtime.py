"""The TUI against the real runtime (root): the issues' end-to-end checks, through the screens."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.create import CreateBoxScreen
from tuibox.screens.processes import ProcessesScreen
from tuibox.service import CliBackend, InProcessBackend
from tuibox.widgets.table_sync import cursor_key
from tuibox.widgets.terminal_tabs import TerminalTab, TerminalTabs

pytestmark = pytest.mark.root


def status_of(app: TuiboxApp, name: str) -> str | None:
    box = app.box(name)
    return box.status if box else None


@pytest.mark.parametrize("source", ["image", "rootfs"])
async def test_create_watch_and_destroy_a_box(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path, source: str
) -> None:
    app = real_app
    name = f"tui-{uuid.uuid4().hex[:6]}"
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateBoxScreen))
        form = app.screen
        form.query_one("#name", Input).value = name
        if source == "rootfs":
            form.query_one("#rootfs", Input).value = str(busybox_rootfs)
        else:  # the form's default: the built-in busybox image
            form.query_one("#memory", Input).value = "64m"
        form.query_one("#command", Input).value = "sleep 1000"
        form.query_one("#terminal", Switch).value = False
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoxesScreen), timeout=30)
        await wait_until(pilot, lambda: status_of(app, name) == "running", timeout=15)
        box = app.box(name)
        assert box is not None and box.pid > 0
        if source == "image":
            assert box.image == "busybox" and box.limits.memory == 64 * 1024 * 1024
        screen = app.screen
        assert isinstance(screen, BoxesScreen)
        await wait_until(pilot, lambda: cursor_key(screen.query_one("#boxes", DataTable)) == name)
        # The CLI sees what the TUI made.
        assert name in tb("list", "-q").stdout.split()

        # ps, stats, pause and resume have landed: they must work, not be greyed out.
        assert not {"ps", "stats", "pause", "resume"} & set(app.unavailable), app.unavailable
        await wait_until(pilot, lambda: name in app.history.latest)  # one stats call
        assert app.stats_error is None

        await pilot.press("t")
        ps = app.screen
        assert isinstance(ps, ProcessesScreen)
        await wait_until(pilot, lambda: bool(ps.processes) or ps.error is not None)
        assert ps.error is None, ps.error
        assert any("sleep" in p.command for p in ps.processes)
        await pilot.press("escape")

        await pilot.press("p")
        await wait_until(pilot, lambda: status_of(app, name) == "paused")
        await pilot.press("u")
        await wait_until(pilot, lambda: status_of(app, name) == "running")

        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert name in app.screen.question
        await pilot.press("y")
        await wait_until(pilot, lambda: app.box(name) is None, timeout=30)
    assert not (Path(tb.root) / name).exists()
    assert f"/{name}" not in Path("/proc/self/mountinfo").read_text()


# ---- terminal panes on real boxes


def pane_lines(tab: TerminalTab) -> list[str]:
    assert tab.terminal is not None
    return [line.rstrip() for line in tab.terminal.screen_text().split("\n")]


async def type_line(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*["space" if ch == " " else ch for ch in text], "enter")


async def open_pane_on(pilot: Pilot[Any], app: TuiboxApp, name: str, key: str) -> TerminalTab:
    await wait_until(pilot, lambda: status_of(app, name) == "running", timeout=15)
    screen = app.screen
    assert isinstance(screen, BoxesScreen)
    screen.go_to_box(name)
    await wait_until(pilot, lambda: cursor_key(screen.query_one("#boxes", DataTable)) == name)
    # Keys act once the probe has said which verbs this runtime has.
    await wait_until(pilot, lambda: _probed(app))
    assert screen.check_action(key, ()), screen.action_reason(key)
    tabs = screen.query_one(TerminalTabs)
    await pilot.press("e" if key == "shell" else "a")
    await wait_until(pilot, lambda: tabs.current is not None and tabs.current.running)
    tab = tabs.current
    assert tab is not None
    # busybox ash's prompt as root in /
    await wait_until(pilot, lambda: any(x.endswith("/ #") for x in pane_lines(tab)), timeout=15)
    return tab


async def answer(pilot: Pilot[Any], tab: TerminalTab, command: str, tag: str) -> list[str]:
    """Run `command` in the pane; the words it printed after `tag` (tagged, so an earlier
    answer or the typed command line itself is never read as the answer)."""
    await type_line(pilot, f"echo {tag}: $({command})")
    await wait_until(pilot, lambda: any(x.startswith(f"{tag}: ") for x in pane_lines(tab)))
    line = next(x for x in pane_lines(tab) if x.startswith(f"{tag}: "))
    return line.split()[1:]


async def test_shell_pane_in_a_running_box(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path
) -> None:
    app = real_app
    name = f"tui-{uuid.uuid4().hex[:6]}"
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await open_pane_on(pilot, app, name, "shell")
        assert tab.terminal is not None and app.focused is tab.terminal
        await type_line(pilot, "echo hel''lo")
        await wait_until(pilot, lambda: "hello" in pane_lines(tab))
        # The box's shell: its pid namespace, its hostname.
        assert await answer(pilot, tab, "hostname", "host") == [name]
        pane = tab.terminal
        size = await answer(pilot, tab, "stty size", "size")
        assert size == [str(pane.size.height), str(pane.size.width)]
        await pilot.resize_terminal(100, 50)
        await wait_until(pilot, lambda: pane.size.width == 100)
        size = await answer(pilot, tab, "stty size", "resized")
        assert size == [str(pane.size.height), "100"]

        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is app.screen.query_one("#boxes", DataTable)
        assert tab.running
        pid = pane.pid
        await pilot.press("w")
        await wait_until(pilot, lambda: app.screen.query_one(TerminalTabs).count == 0)
        await wait_until(pilot, lambda: pid is None or not Path(f"/proc/{pid}").exists())
        # The exec'd shell went with its pane; the box did not.
        await wait_until(pilot, lambda: [p["command"] for p in ps(tb, name)] == ["sleep 1000"])
        assert status_of(app, name) == "running"


def ps(tb: Any, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(tb("ps", "--format", "json", name).stdout)
    return out


async def test_attach_pane_keeps_the_console_when_the_app_quits(
    real_backend: InProcessBackend, tb: Any, busybox_rootfs: Path
) -> None:
    name = f"tui-{uuid.uuid4().hex[:6]}"
    tb("run", "-d", "-t", "--rootfs", str(busybox_rootfs), name, "/bin/sh")
    app = TuiboxApp(backend=real_backend, refresh_interval=0.5, privileged=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: status_of(app, name) == "running", timeout=15)
        await wait_until(pilot, lambda: "attach" not in app.unavailable and _probed(app))
        tab = await open_pane_on(pilot, app, name, "attach")
        assert app.screen.query_one(TerminalTabs).get_tab(tab.id or "").label.plain == (
            f"attach: {name}"
        )
        await type_line(pilot, "export X=42")
        assert await answer(pilot, tab, "echo $X", "before") == ["42"]
    # The whole app is gone; the box and its shell are not.
    assert tb.state(name)["status"] == "running"
    again = TuiboxApp(backend=InProcessBackend(str(tb.root), str(tb.data_root)), privileged=True)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: _probed(again))
        tab = await open_pane_on(pilot, again, name, "attach")
        assert await answer(pilot, tab, "echo $X", "after") == ["42"]


def _probed(app: TuiboxApp) -> bool:
    return all(w.is_finished for w in app.workers if w.group == "probe")


async def test_in_process_queries_match_the_cli(
    real_backend: InProcessBackend, tb: Any, busybox_rootfs: Path
) -> None:
    busy, idle = (f"tui-{uuid.uuid4().hex[:6]}" for _ in range(2))
    tb("run", "-d", "--rootfs", str(busybox_rootfs), busy, "sh", "-c", "while :; do :; done")
    tb("run", "-d", "--rootfs", str(busybox_rootfs), idle, "sleep", "1000")
    cli = CliBackend(str(tb.root), str(tb.data_root))
    # The very rows `tuibox list --format json` gives (the CLI's own record -> JSON).
    assert await real_backend.list_boxes() == await cli.list_boxes()
    first = {s.id: s for s in await real_backend.stats()}
    assert set(first) == {busy, idle}
    assert first[busy].cpu_percent == 0.0  # nothing to compare with yet: no sleeping for it
    await asyncio.sleep(0.5)
    second = {s.id: s for s in await real_backend.stats()}
    assert second[busy].cpu_percent > 30, second[busy]
    assert second[idle].cpu_percent < 5 and second[idle].pids == 1
    assert second[idle].memory_usage > 0
    procs = await real_backend.processes(idle)
    assert [(p.box_pid, p.command) for p in procs] == [(1, "sleep 1000")]
    assert procs == await cli.processes(idle)


async def test_full_screen_programs_in_a_box_pane(
    real_app: TuiboxApp, tb: Any, busybox_rootfs: Path
) -> None:
    """vi and top from busybox, inside a real box, drawn in the pane and quit again."""
    app = real_app
    name = f"tui-{uuid.uuid4().hex[:6]}"
    tb("run", "-d", "--rootfs", str(busybox_rootfs), name, "sleep", "1000")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await open_pane_on(pilot, app, name, "shell")
        await type_line(pilot, "vi /tmp/note")
        # vi fills the screen with `~` for the lines past the end of the file.
        await wait_until(pilot, lambda: sum(x == "~" for x in pane_lines(tab)) >= 10)
        await pilot.press("i", "h", "e", "y")
        await wait_until(pilot, lambda: "hey" in pane_lines(tab)[0])
        # vi reads ESC followed at once by another byte as an escape sequence, as any
        # terminal program does: leave it the pause a person would.
        await pilot.press("escape")
        await pilot.pause(0.5)
        await pilot.press("colon", "w", "q", "enter")
        await wait_until(pilot, lambda: not any(x == "~" for x in pane_lines(tab)))
        assert await answer(pilot, tab, "cat /tmp/note", "note") == ["hey"]

        await type_line(pilot, "top")
        # top's header and its process table, with the box's own `sleep` in it.
        await wait_until(pilot, lambda: any(x.startswith("Mem:") for x in pane_lines(tab)))
        await wait_until(pilot, lambda: any("sleep 1000" in x for x in pane_lines(tab)))
        await pilot.press("q")
        # busybox top leaves its last frame on the screen; the shell answering shows it quit.
        assert await answer(pilot, tab, "echo back", "after") == ["back"]
