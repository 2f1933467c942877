"""The create form as a podman-tui user reads it: examples that cannot pass for values, a focus
seen at a glance, errors that name the field, wrap at 80 columns and go once fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import refresh
from fake_backend import FakeBackend
from test_create import error_of, open_form, set_value
from textual.color import Color
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.confirm import ConfirmScreen
from tuibox.screens.create import CreateBoxScreen

SIZE = (100, 30)


def looks(widget: Widget) -> tuple[Color, list[str]]:
    """The mean background of a widget's cells (reverse counted as such) and its text."""
    width, height = widget.size
    strips = widget.render_lines(Region(0, 0, width, height))
    total = [0, 0, 0]
    cells = 0
    for strip in strips:
        for seg in strip:
            style = seg.style
            if style is None or not seg.text:
                continue
            color = style.color if style.reverse else style.bgcolor
            if color is None:
                continue
            r, g, b = color.get_truecolor()
            n = len(seg.text)
            total = [total[0] + r * n, total[1] + g * n, total[2] + b * n]
            cells += n
    cells = max(cells, 1)
    return Color(*(c // cells for c in total)), [s.text for s in strips]


def distance(a: Color, b: Color) -> float:
    return float(((a.r - b.r) ** 2 + (a.g - b.g) ** 2 + (a.b - b.b) ** 2) ** 0.5)


async def assert_focus_visible(pilot: Any, widgets: list[Widget]) -> None:
    for widget in widgets:
        target = widget.query_one("SelectCurrent") if isinstance(widget, Select) else widget
        pilot.app.set_focus(None)
        await pilot.pause()
        before, _ = looks(target)
        widget.focus()
        await pilot.pause()
        after, _ = looks(target)
        # Textual's own 5% tint moves the colour by about 3; a person needs far more.
        assert distance(before, after) > 40, (widget, before, after)


async def test_examples_are_not_values(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        for field in ("memory", "cpus", "pids", "ports", "env", "rootfs"):
            box = form.query_one(f"#{field}", Input)
            assert box.value == "" and box.placeholder.startswith("e.g. "), field
        assert form.query_one("#hostname", Input).placeholder.startswith("default: ")
        note = form.query_one("#limits-note", Label)
        assert "empty: no limit" in str(note.render())
        await pilot.click("#submit")
        await app.workers.wait_for_complete()
        run = next(c for c in fake.calls if c[0] == "run")
        assert not {"--memory", "--cpus", "--pids-limit", "-p", "-e"} & set(run)
        assert fake.boxes["box-1"].limits.memory is None


async def test_focus_is_visible_on_every_field_and_button(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        form = await open_form(pilot, app)
        widgets: list[Widget] = [
            *form.query(Input),
            *form.query(Select),
            *form.query(Switch),
            *form.query(Button),
        ]
        assert len(widgets) == 14  # 9 inputs, the image, 2 switches, 2 buttons
        await assert_focus_visible(pilot, widgets)
        # The label of the focused field lights up as well (one at a time).
        form.query_one("#cpus", Input).focus()
        await pilot.pause()
        lit = [str(label.render()) for label in form.query(".field-label.-focused")]
        assert lit == ["CPUs"]
        await pilot.press("escape")
        await pilot.press("d")  # the destroy question's buttons
        assert isinstance(app.screen, ConfirmScreen)
        await assert_focus_visible(pilot, list(app.screen.query(Button)))


async def test_an_inline_error_goes_once_the_field_is_fixed(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "name", "-bad")
        await pilot.press("enter")
        await pilot.pause()
        assert "invalid box name" in error_of(form, "name")
        set_value(form, "name", "good")
        await pilot.pause()
        assert error_of(form, "name") == ""
        # Still wrong after a change: the message follows the new value.
        set_value(form, "memory", "abc")
        await pilot.press("enter")
        await pilot.pause()
        assert "'abc'" in error_of(form, "memory")
        set_value(form, "memory", "1k")
        await pilot.pause()
        assert error_of(form, "memory") == "Memory: '1k': the minimum is 6m"
        set_value(form, "memory", "256m")
        await pilot.pause()
        assert error_of(form, "memory") == ""
        # Ports need the network: turning it on fixes the ports field.
        set_value(form, "ports", "8080:80")
        await pilot.press("enter")
        await pilot.pause()
        assert "needs the network" in error_of(form, "ports")
        form.query_one("#network", Switch).value = True
        await pilot.pause()
        assert error_of(form, "ports") == ""


async def test_errors_name_the_field_not_the_flag(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        for field, value, message in (
            ("memory", "abc", "Memory: 'abc' is not a size (e.g. 256m, 1g)"),
            ("cpus", "lots", "CPUs: 'lots' must be a number of CPUs such as 0.5"),
            ("pids", "x", "Pids: 'x' must be an integer (e.g. 100)"),
            ("env", "NOEQUALS", "Env: 'NOEQUALS' is not KEY=value"),
        ):
            set_value(form, field, value)
            await pilot.press("enter")
            await pilot.pause()
            assert error_of(form, field) == message
            assert "--" not in error_of(form, field)
            set_value(form, field, "")
        assert not [c for c in fake.calls if c[0] == "run"]
    # A runtime message naming a flag is put in the form's words as well.
    from tuibox.screens.create import form_message

    assert form_message("--memory '1k': the minimum is 6m") == "Memory: '1k': the minimum is 6m"
    assert form_message("--pids-limit 'x': must be an integer").startswith("Pids: 'x'")
    assert form_message("env: 'A' is not KEY=value") == "Env: 'A' is not KEY=value"


async def test_the_bad_name_message_wraps_at_80_columns(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await refresh(pilot)
        form = await open_form(pilot, app)
        assert isinstance(form, CreateBoxScreen)
        set_value(form, "name", "-bad/name")
        await pilot.press("enter")
        await pilot.pause()
        label = form.query_one("#name-error", Label)
        message = error_of(form, "name")
        assert len(message) > 60  # longer than the room beside the labels
        assert label.region.right <= form.query_one("#create-dialog").region.right
        _, lines = looks(label)
        assert len([line for line in lines if line.strip()]) >= 2
        assert " ".join(" ".join(lines).split()) == message
        # The buttons are still on screen.
        assert form.query_one("#submit", Button).region.bottom <= 24
