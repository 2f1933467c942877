"""Actions on boxes: greyed when the state forbids them, errors shown, palette (panes elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import refresh
from fake_backend import FakeBackend
from rich.text import Text
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.palette import ActionCommands
from tuibox.screens.signal import SignalScreen

SIZE = (140, 40)
ROW = {"batch": 0, "db": 1, "old": 2, "web": 3}  # sorted by name


async def goto(pilot: Any, name: str) -> BoxesScreen:
    screen = pilot.app.screen
    assert isinstance(screen, BoxesScreen)
    screen.query_one("#boxes", DataTable).move_cursor(row=ROW[name])
    await pilot.pause()
    return screen


def enabled(screen: BoxesScreen, action: str) -> bool:
    return bool(screen.check_action(action, ()))


def messages(app: TuiboxApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_check_action_follows_the_state(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        expected = {
            "batch": {"start", "stop", "kill", "destroy", "restart", "logs", "processes"},
            "db": {"stop", "kill", "resume", "destroy", "restart", "logs", "processes"},
            "old": {"start", "destroy", "restart", "logs"},
            "web": {"stop", "kill", "pause", "destroy", "restart", "shell", "logs", "processes"},
        }
        actions = ["start", "stop", "kill", "pause", "resume", "destroy", "restart", "shell",
                   "logs", "processes"]  # fmt: skip
        for name, allowed in expected.items():
            screen = await goto(pilot, name)
            got = {a for a in actions if enabled(screen, a)}
            assert got == allowed, name
        # Greyed (None), not hidden (False): the footer keeps showing the key.
        assert screen.check_action("start", ()) is None
        assert screen.action_reason("start") == "web is running; start needs created or stopped"


async def test_footer_greys_out_disabled_keys(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        active = app.screen.active_bindings
        assert active["s"].enabled is False and active["p"].enabled is True
        await goto(pilot, "db")
        active = app.screen.active_bindings
        assert active["p"].enabled is False and active["u"].enabled is True


async def test_disabled_key_does_nothing(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        fake.calls.clear()
        await pilot.press("s", "u")
        await app.workers.wait_for_complete()
        assert not [c for c in fake.calls if c[0] in ("start", "resume")]


async def test_pause_and_resume(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        await pilot.press("p")
        await refresh(pilot)
        assert fake.boxes["web"].status == "paused"
        assert enabled(screen, "resume") and not enabled(screen, "pause")
        await pilot.press("u")
        await refresh(pilot)
        assert fake.boxes["web"].status == "running"


async def test_runtime_error_is_a_notification(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "batch")
        fake.fail["start"] = "cannot start box 'batch': exec /bin/sh: no such file"
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "cannot start box 'batch': exec /bin/sh: no such file" in messages(app)
        assert isinstance(app.screen, BoxesScreen)  # still running, nothing crashed


async def test_restart_and_start_of_a_stopped_box(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        old_pid = fake.boxes["web"].pid
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # One `tuibox restart` (stop, then start again), not two verbs of which one may fail.
        assert ("restart", "web") in fake.calls
        web = fake.boxes["web"]
        assert (web.status, web.pid != old_pid) == ("running", True), web
        await goto(pilot, "old")  # stopped: `s` starts it again
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert ("start", "old") in fake.calls
        assert fake.boxes["old"].status == "running"
        assert not [m for m in messages(app) if "cannot" in m]


async def test_unavailable_verb_is_greyed_with_the_reason(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.unavailable["pause"] = "unknown command 'pause' (see 'tuibox --help')"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        assert not enabled(screen, "pause")
        assert screen.action_reason("pause") == "unknown command 'pause' (see 'tuibox --help')"


async def test_unavailable_found_on_use_greys_afterwards(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app(probe=False)
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        assert enabled(screen, "pause")
        fake.unavailable["pause"] = "unknown command 'pause' (see 'tuibox --help')"
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not enabled(screen, "pause")
        assert "unknown command 'pause' (see 'tuibox --help')" in messages(app)


async def test_destroy_asks_first_and_names_the_box(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "old")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Destroy box old?" in app.screen.question
        assert "--force" not in app.screen.question
        await pilot.press("enter")  # Enter is on Cancel: nothing happens
        assert isinstance(app.screen, BoxesScreen)
        assert "old" in fake.boxes
        await pilot.press("d")
        await pilot.click("#confirm")
        await app.workers.wait_for_complete()
        assert "old" not in fake.boxes
        assert ("destroy", "old") in fake.calls  # stopped: no --force needed


async def test_destroy_running_box_says_force(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "It is still running: killed first (--force)" in app.screen.question
        await pilot.press("escape")
        assert "web" in fake.boxes
        await pilot.press("d", "y")
        await app.workers.wait_for_complete()
        assert ("destroy", "--force", "web") in fake.calls


async def test_kill_picks_a_signal(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        await pilot.press("K")
        assert isinstance(app.screen, SignalScreen)
        await pilot.press("down", "enter")  # TERM -> KILL
        await app.workers.wait_for_complete()
        assert ("kill", "web", "KILL") in fake.calls


async def test_palette_offers_every_screen_action(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        screen = await goto(pilot, "web")
        provider = ActionCommands(screen)
        titles = {hit.text: hit.help async for hit in provider.discover()}
        for title in ("Create", "Start", "Stop", "Restart", "Pause", "Resume", "Kill",
                      "Destroy", "Shell", "Attach", "Shell (full terminal)", "Processes",
                      "Logs", "Filter", "Select", "Sort",
                      "From bundle", "Help", "Quit", "Select all", "Reverse sort"):  # fmt: skip
            assert title in titles, title
        assert "not now" in str(titles["Start"]) and "web is running" in str(titles["Start"])
        assert "Go to box db" in titles


async def test_palette_runs_an_action(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await goto(pilot, "web")
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"pause")
        await pilot.pause(0.3)
        results = app.screen.query_one(CommandList)
        prompts = [Text.from_markup(str(results.get_option_at_index(i).prompt)).plain
                   for i in range(results.option_count)]  # fmt: skip
        assert any("Pause" in p for p in prompts), prompts
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        assert ("pause", "web") in fake.calls
