from __future__ import annotations

import importlib

import pytest

from tuibox.cli import VERBS
from tuibox.cli.args import Arg, Command, HelpRequested, Opt, Options, UsageError, parse


class RUN(Options):
    COMMAND = Command(
        "run",
        "help",
        (
            Opt(("-d", "--detach"), "detach"),
            Opt(("-t", "--tty"), "tty"),
            Opt(("-i",), "interactive"),
            Opt(("-e", "--env"), "env", "K=V", multiple=True),
            Opt(("-p",), "ports", "P", multiple=True),
            Opt(("--bundle", "-b"), "bundle", "DIR"),
        ),
        (Arg("name"), Arg("command", required=False, rest=True)),
    )
    __slots__ = ("bundle", "command", "detach", "env", "interactive", "name", "ports", "tty")
    detach: bool
    tty: bool
    interactive: bool
    env: list[str]
    ports: list[str]
    bundle: str | None
    name: str
    command: list[str]


def test_options_then_name_then_untouched_command() -> None:
    got = parse(RUN, ["-d", "--bundle=/b", "-e", "A=1", "-eB=2", "box", "sh", "-c", "echo -d --x"])
    assert got.detach is True and got.bundle == "/b"
    assert got.tty is False and got.interactive is False
    assert got.env == ["A=1", "B=2"] and got.ports == []
    assert got.name == "box"
    assert got.command == ["sh", "-c", "echo -d --x"]


def test_clustered_short_flags_and_attached_value() -> None:
    got = parse(RUN, ["-it", "-p8080:80", "-p", "1:2", "n"])
    assert got.tty and got.interactive and got.ports == ["8080:80", "1:2"]
    assert got.command == [] and got.bundle is None


def test_double_dash_allows_a_name_that_looks_like_an_option() -> None:
    assert parse(RUN, ["--", "-x"]).name == "-x"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--nope", "n"], "unknown option --nope"),
        (["-z", "n"], "unknown option -z"),
        (["--bundle"], "needs a value"),
        (["--detach=1", "n"], "takes no value"),
        ([], "missing NAME"),
    ],
)
def test_usage_errors_are_one_line(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(RUN, words)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_help_lists_every_option() -> None:
    with pytest.raises(HelpRequested) as e:
        parse(RUN, ["--help"])
    for name in ("--detach", "--env", "--bundle"):
        assert name in e.value.text


def test_extra_positional_is_refused() -> None:
    class Start(Options):
        COMMAND = Command("start", "", (), (Arg("name"),))
        __slots__ = ("name",)
        name: str

    with pytest.raises(UsageError, match="unexpected argument 'b'"):
        parse(Start, ["a", "b"])
    assert parse(Start, ["a"]) == parse(Start, ["a"]) != parse(Start, ["b"])


def _options_classes() -> list[type[Options]]:
    """Every options class of the CLI that declares a command."""
    for module in {module for module, _ in VERBS.values()}:
        importlib.import_module(f"tuibox.cli.{module}")
    found: list[type[Options]] = []
    todo = list(Options.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("tuibox.cli.") and "COMMAND" in vars(cls):
            found.append(cls)
    return found


def _expected_type(item: Opt | Arg) -> str:
    if isinstance(item, Arg):
        return "list[str]" if item.rest else "str" if item.required else "str | None"
    if item.multiple:
        return "list[str]"
    if item.value is None:
        return "bool"
    return "str" if item.default is not None else "str | None"


def test_every_command_matches_its_options_class() -> None:
    """Each Opt/Arg dest is a slot of the command's class, annotated with the type parse
    gives it, and the class has no other field: what mypy believes is what the CLI gets."""
    classes = _options_classes()
    assert len(classes) == 40  # 30 verbs (one for image, one for network), 10 actions
    for cls in classes:
        cmd = cls.COMMAND
        items: list[Opt | Arg] = [*cmd.opts, *cmd.args]
        slots = [n for k in cls.__mro__ for n in vars(k).get("__slots__", ())]
        annotations: dict[str, str] = {}
        for k in reversed(cls.__mro__):
            annotations.update(vars(k).get("__annotations__", {}))
        assert sorted(slots) == sorted(i.dest for i in items), cls.__name__
        for item in items:
            assert annotations.get(item.dest) == _expected_type(item), (cls.__name__, item.dest)


def test_defaults_fill_every_field() -> None:
    """Every class parses the bare minimum of words; no field is left unset."""
    for cls in _options_classes():
        words = [f"x{k}" for k, a in enumerate(cls.COMMAND.args) if a.required or a.rest]
        got = parse(cls, words)
        for item in [*cls.COMMAND.opts, *cls.COMMAND.args]:
            value = getattr(got, item.dest)
            if isinstance(item, Opt) and item.value is None and not item.multiple:
                assert value is False
            elif isinstance(item, Opt):
                assert value == ([] if item.multiple else item.default)
        assert repr(got).startswith(cls.__name__ + "(")
