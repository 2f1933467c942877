"""The log view's keys as less / k9s users expect: Escape closes the search first, then the
view; arrival times, wrapping and a tail (the last N lines), each shown in the footer."""

from __future__ import annotations

from collections.abc import Callable

from conftest import refresh, text_of
from fake_backend import FakeBackend
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen
from tuibox.screens.logs import LogsScreen
from tuibox.widgets.logview import NO_STAMP, LogView

SIZE = (100, 30)
LOG = b"".join(
    f"line {i} {'ERROR disk full' if i % 10 == 3 else 'ok'}\n".encode() for i in range(60)
)


async def open_logs(pilot: object, app: TuiboxApp) -> tuple[LogsScreen, LogView]:
    await refresh(pilot)  # type: ignore[arg-type]
    app.push_screen(LogsScreen("web", poll=0.05))
    await pilot.pause(0.2)  # type: ignore[attr-defined]
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    return screen, screen.query_one(LogView)


def row_text(view: LogView, y: int) -> str:
    return view.render_line(y).text


async def test_escape_closes_the_search_not_the_view(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.logs["web"] = LOG
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await open_logs(pilot, app)
        search = screen.query_one("#search", Input)
        # Escape while typing: the search is cancelled, the view stays.
        await pilot.press("slash", *"err", "escape")
        assert app.screen is screen
        assert not search.display and view.query_text == ""
        # A search done (Enter): the field goes, the highlight stays; Escape clears it.
        await pilot.press("slash", *"error", "enter")
        assert not search.display and view.query_text == "error"
        await pilot.press("m")
        assert view.visible_count() == 6
        await pilot.press("escape")
        assert app.screen is screen
        assert view.query_text == "" and view.visible_count() == 60
        # Nothing left to close: Escape leaves the view.
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)


async def test_times_wrap_and_tail(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    fake.logs["web"] = LOG
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen, view = await open_logs(pilot, app)
        footer_keys = {
            b.binding.description for b in screen.active_bindings.values() if b.binding.show
        }
        assert {"Times", "Wrap", "Tail"} <= footer_keys
        # With a search on (its three keys appear), every key of the view still fits at 100
        # columns, left of the palette key.
        await pilot.press("slash", *"error", "enter")
        await pilot.pause()
        keys = list(screen.query_one(Footer).query(FooterKey))
        palette = next(k for k in keys if k.has_class("-command-palette"))
        ours = {k.description: k.region for k in keys if not k.has_class("-command-palette")}
        for name in ("Back", "Search", "Next", "Prev", "Filter", "Follow", "Times", "Wrap", "Tail"):
            assert ours[name].right <= palette.region.x, name
        await pilot.press("escape")

        # Tail: the last 5 lines, and new ones still come.
        await pilot.press("T", "5", "enter")
        assert view.visible_count() == 5
        assert row_text(view, 0).startswith("line 55 ok")
        assert "last 5 of 60 lines" in text_of(screen.query_one("#logs-status"))
        fake.logs["web"] += b"fresh line\n" + b"x" * 250 + b"\n"
        await pilot.pause(0.3)
        assert view.visible_count() == 7

        # Times: lines already in the file have none (the log keeps none), new ones do.
        await pilot.press("t")
        assert row_text(view, 0).startswith(NO_STAMP + "line 55")
        stamp = row_text(view, 5)[:9]
        assert stamp != NO_STAMP and stamp[2] == ":" and stamp[5] == ":"
        assert row_text(view, 5)[9:].startswith("fresh line")

        # Wrap: the 250-character line takes several rows, nothing scrolls sideways.
        await pilot.press("t")
        width = view.scrollable_content_region.width
        assert view.row_count() == 7
        await pilot.press("w")
        assert view.row_count() == 6 + -(-250 // width)
        assert view.virtual_size.width == width
        assert row_text(view, 6) == "x" * width
        await pilot.press("w")
        assert view.row_count() == 7

        # An empty tail shows everything again.
        await pilot.press("T", "enter")
        assert view.visible_count() == 62
