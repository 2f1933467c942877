"""The create form and "create from config.json": inline validation, then create and select."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import refresh, text_of
from fake_backend import FakeBackend
from textual.widgets import Input, Label, Select, Switch

from tuibox.app import TuiboxApp
from tuibox.screens.boxes import BoxesScreen, suggest_name
from tuibox.screens.bundle import BundleScreen
from tuibox.screens.create import CreateBoxScreen, field_for
from tuibox.widgets.table_sync import cursor_key

SIZE = (140, 45)


async def open_form(pilot: object, app: TuiboxApp) -> CreateBoxScreen:
    await refresh(pilot)  # type: ignore[arg-type]
    await pilot.press("c")  # type: ignore[attr-defined]
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    assert isinstance(app.screen, CreateBoxScreen)
    return app.screen


def set_value(screen: CreateBoxScreen | BundleScreen, field: str, value: str) -> None:
    screen.query_one(f"#{field}", Input).value = value


def error_of(screen: CreateBoxScreen | BundleScreen, field: str) -> str:
    label = screen.query_one(f"#{field}-error", Label)
    return "" if label.has_class("hidden") else text_of(label).strip()


def test_suggested_names_are_free() -> None:
    assert suggest_name(set()) == "box-1"
    assert suggest_name({"box-1", "box-2", "box-4"}) == "box-3"


def test_runtime_messages_map_to_fields() -> None:
    assert field_for("invalid box name 'a/b': use letters, digits") == "name"
    assert field_for("invalid hostname 'x y'") == "hostname"
    assert field_for("invalid --memory 'lots': use a size like 256m") == "memory"
    assert field_for("run: unknown option --pids-limit") == "pids"
    assert field_for("exec /bin/nope: not found") == "command"


async def test_form_defaults(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        assert form.query_one("#name", Input).value == "box-1"
        assert form.query_one("#command", Input).value == "/bin/sh"
        assert form.query_one("#image", Select).value == "busybox"
        assert form.query_one("#terminal", Switch).value is True
        assert form.query_one("#network", Switch).value is False
        # image ls filled the picker, busybox first.
        select = form.query_one("#image", Select)
        assert [v for _, v in select._options if isinstance(v, str)] == ["busybox", "alpine"]


async def test_defaults_without_a_console_keeper(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    # Without `attach` nothing would hold a terminal box's console: /bin/sh would exit at
    # once, so the form proposes a box that stays up, and says why.
    fake.unavailable["attach"] = "this runtime has no 'attach' command yet"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        assert form.query_one("#command", Input).value == "sleep infinity"
        assert form.query_one("#terminal", Switch).value is False
        assert "no console keeper" in error_of(form, "command")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        box = fake.boxes["box-1"]
        assert box.command == ("sleep", "infinity") and not box.terminal


async def test_a_bare_shell_without_a_terminal_is_pointed_out(
    make_app: Callable[..., TuiboxApp],
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        assert error_of(form, "command") == ""  # the defaults: a shell on a console
        form.query_one("#terminal", Switch).value = False
        await pilot.pause()
        assert "exits at once" in error_of(form, "command")
        set_value(form, "command", "sleep 1000")
        await pilot.pause()
        assert error_of(form, "command") == ""


async def test_invalid_name_shows_the_runtime_rule_inline(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "name", "-bad/name")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CreateBoxScreen)  # the form stays open
        assert "invalid box name '-bad/name'" in error_of(form, "name")
        assert not [c for c in fake.calls if c[0] == "run"]


async def test_taken_name_is_refused(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "name", "web")
        await pilot.press("enter")
        await pilot.pause()
        assert error_of(form, "name") == "box name 'web' is already in use"


async def test_runtime_error_appears_under_its_field(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "rootfs", "relative/dir")  # only the runtime checks this one
        await pilot.click("#submit")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CreateBoxScreen)
        assert error_of(form, "rootfs") == "rootfs relative/dir: not an absolute path"
        assert text_of(form.query_one("#form-error")).strip() == ""  # not said twice
        assert form.query_one("#rootfs", Input).has_focus
        assert ("run" in {c[0] for c in fake.calls}) and "box-1" not in fake.boxes


async def test_ports_need_the_network(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "ports", "8080:80")
        await pilot.press("enter")
        await pilot.pause()
        assert "needs the network" in error_of(form, "ports")


async def test_bad_quotes_in_command(make_app: Callable[..., TuiboxApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "command", "sh -c 'echo")
        await pilot.press("enter")
        await pilot.pause()
        assert "quotation" in error_of(form, "command")


async def test_enter_creates_starts_and_selects(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "name", "zeta")
        set_value(form, "command", "sleep 1000")
        set_value(form, "env", "A=1 'B=two words'")
        set_value(form, "memory", "64m")
        form.query_one("#network", Switch).value = True
        set_value(form, "ports", "8080:80, 8443:443")
        form.query_one("#image", Select).value = "alpine"
        form.query_one("#name", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await refresh(pilot)
        assert isinstance(app.screen, BoxesScreen)
        run = next(c for c in fake.calls if c[0] == "run")
        assert list(run[1:]) == [
            "run", "-d", "--image", "alpine", "-t", "--network", "default",
            "-p", "8080:80", "-p", "8443:443", "--memory", "64m",
            "-e", "A=1", "-e", "B=two words", "--", "zeta", "sleep", "1000",
        ]  # fmt: skip
        assert fake.boxes["zeta"].status == "running"
        assert cursor_key(app.screen.table) == "zeta"  # the new box is selected


async def test_rootfs_path_replaces_the_image(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        set_value(form, "rootfs", "relative/rootfs")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert error_of(form, "rootfs") == "rootfs relative/rootfs: not an absolute path"
        set_value(form, "rootfs", "/srv/rootfs")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        run = [c for c in fake.calls if c[0] == "run"][-1]
        assert "--rootfs" in run and "--image" not in run


async def test_image_list_unavailable_keeps_the_default(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend
) -> None:
    fake.unavailable["image"] = "unknown command 'image' (see 'tuibox --help')"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        assert form.query_one("#image", Select).value == "busybox"
        assert "unknown command 'image'" in error_of(form, "image")


async def test_escape_cancels(make_app: Callable[..., TuiboxApp], fake: FakeBackend) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, app)
        await pilot.press("escape")
        assert isinstance(app.screen, BoxesScreen)
        assert not [c for c in fake.calls if c[0] == "run"]


async def test_bundle_form(
    make_app: Callable[..., TuiboxApp], fake: FakeBackend, tmp_path: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await refresh(pilot)
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BundleScreen)
        set_value(form, "bundle", str(tmp_path))
        await pilot.press("enter")
        await pilot.pause()
        assert error_of(form, "bundle") == f"bundle {tmp_path}: no config.json in it"
        (tmp_path / "config.json").write_text(json.dumps({"ociVersion": "1.0.2"}))
        set_value(form, "name", "from-bundle")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await refresh(pilot)
        assert ("create", "from-bundle", str(tmp_path)) in fake.calls
        assert ("start", "from-bundle") in fake.calls
        assert fake.boxes["from-bundle"].status == "running"
        assert cursor_key(app.screen.table) == "from-bundle"  # type: ignore[attr-defined]
