"""The lean stand-ins against what they stand in for: args (its documented grammar), Plain
(a frozen dataclass's value semantics), Undo (contextlib.ExitStack's unwinding)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tuibox.cli.args import (
    Arg,
    Command,
    HelpRequested,
    Opt,
    Options,
    UnknownOption,
    UsageError,
    parse,
)
from tuibox.runtime.plain import Plain
from tuibox.runtime.undo import Undo

# ---- args: the grammar its docstring documents ------------------------------------------

EXEC = Command(
    "exec",
    "run a command in a box",
    (
        Opt(("-i", "--interactive"), "interactive"),
        Opt(("-t", "--tty"), "tty"),
        Opt(("-d", "--detach"), "detach"),
        Opt(("-e", "--env"), "env", "K=V", multiple=True),
        Opt(("-w", "--workdir"), "workdir", "DIR"),
        Opt(("-u", "--user"), "user", "UID", default="0"),
    ),
    (Arg("name"), Arg("command", rest=True)),
)


class ExecOpts(Options):
    COMMAND = EXEC
    __slots__ = ("command", "detach", "env", "interactive", "name", "tty", "user", "workdir")


class StateOpts(Options):
    COMMAND = Command("state", "h", (), (Arg("name"),))
    __slots__ = ("name",)


def as_dict(o: Options) -> dict[str, Any]:
    return {n: getattr(o, n) for n in type(o).__slots__}


def p(*words: str) -> dict[str, Any]:
    return as_dict(parse(ExecOpts, list(words)))


def test_defaults() -> None:
    got = p("box", "sh")
    assert got == {
        "interactive": False,
        "tty": False,
        "detach": False,
        "env": [],
        "workdir": None,
        "user": "0",
        "name": "box",
        "command": ["sh"],
    }


@pytest.mark.parametrize(
    "words",
    [
        ("-w", "/srv", "box", "sh"),
        ("-w/srv", "box", "sh"),
        ("--workdir", "/srv", "box", "sh"),
        ("--workdir=/srv", "box", "sh"),
        ("box", "-w", "/srv", "sh"),  # options may follow the name, before the command
    ],
)
def test_every_spelling_of_a_value(words: tuple[str, ...]) -> None:
    got = p(*words)
    assert got["workdir"] == "/srv" and got["name"] == "box" and got["command"] == ["sh"]


def test_values_keep_what_follows_the_first_equals_and_may_look_like_options() -> None:
    assert p("--env=A=B=C", "b", "x")["env"] == ["A=B=C"]
    assert p("--workdir=", "b", "x")["workdir"] == ""
    assert p("-e", "-x", "b", "x")["env"] == ["-x"]
    assert p("-w", "--", "b", "x")["workdir"] == "--"


def test_clustered_flags_end_at_a_value_option() -> None:
    got = p("-itd", "b", "x")
    assert got["interactive"] and got["tty"] and got["detach"]
    got = p("-itwDIR", "b", "x")
    assert got["interactive"] and got["tty"] and got["workdir"] == "DIR"
    got = p("-ite", "K=V", "b", "x")
    assert got["env"] == ["K=V"]


def test_repeated_options() -> None:
    assert p("-e", "A=1", "--env", "B=2", "-eC=3", "--env=D=4", "b", "x")["env"] == [
        "A=1",
        "B=2",
        "C=3",
        "D=4",
    ]
    # A single-valued option given twice: the last wins, as in argparse.
    assert p("-w", "/a", "-w", "/b", "b", "x")["workdir"] == "/b"
    assert p("-t", "-t", "b", "x")["tty"] is True


def test_double_dash_ends_options_and_the_command_is_never_parsed() -> None:
    assert p("--", "-box", "sh")["name"] == "-box"
    got = p("b", "sh", "-c", "echo --env=x -it", "--", "-w")
    assert got["command"] == ["sh", "-c", "echo --env=x -it", "--", "-w"]
    assert got["env"] == [] and got["workdir"] is None
    assert p("-", "x")["name"] == "-"  # a lone dash is a word, not an option


def _error(*words: str) -> UsageError:
    with pytest.raises(UsageError) as e:
        p(*words)
    text = str(e.value)
    assert "\n" not in text and text.startswith("exec: ")
    return e.value


def test_unknown_options_are_one_line_errors_with_their_kind() -> None:
    for words, name in [
        (("--nope", "b", "x"), "--nope"),
        (("-z", "b"), "-z"),
        (("-iz", "b"), "-z"),
    ]:
        err = _error(*words)
        assert isinstance(err, UnknownOption) and err.kind == "unknown-option"
        assert str(err) == f"exec: unknown option {name}"
    assert str(_error("--nope=1", "b")) == "exec: unknown option --nope"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("b", "x", "-w"), None),  # after the command: part of it, no error
        (("-w",), "exec: option -w needs a value (DIR)"),
        (("--workdir",), "exec: option --workdir needs a value (DIR)"),
        (("-it", "-e"), "exec: option -e needs a value (K=V)"),
        (("--tty=yes", "b", "x"), "exec: option --tty takes no value"),
        ((), "exec: missing NAME (see 'tuibox exec --help')"),
    ],
)
def test_missing_and_extra_values(words: tuple[str, ...], message: str | None) -> None:
    if message is None:
        assert p(*words)["command"] == ["x", "-w"]
        return
    err = _error(*words)
    assert str(err) == message and err.kind == "usage"


def test_a_rest_may_be_empty_the_verb_decides() -> None:
    # `required` is not enforced on a rest argument: each verb checks its own (exec: "missing
    # COMMAND", wait/pause/...: "missing NAME"), with its own wording.
    assert p("b")["command"] == []


def test_unexpected_argument_without_a_rest() -> None:
    with pytest.raises(UsageError, match=r"^state: unexpected argument 'extra'$"):
        parse(StateOpts, ["b", "extra"])
    assert parse(StateOpts, ["--", "b"]).name == "b"


def test_help_wins_wherever_it_comes_before_the_command() -> None:
    for words in (("-h",), ("--help",), ("-e", "A=1", "--help", "b")):
        with pytest.raises(HelpRequested) as h:
            p(*words)
        assert h.value.text.startswith("tuibox exec [OPTIONS] NAME COMMAND...")
    assert p("b", "ls", "--help")["command"] == ["ls", "--help"]


# ---- Plain: a frozen dataclass's value semantics, without dataclass's import-time cost ---


class Point(Plain):
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: list[int]) -> None:
        self.x = x
        self.y = y


class Point3(Point):
    __slots__ = ("z",)

    def __init__(self, x: int, y: list[int], z: int) -> None:
        super().__init__(x, y)
        self.z = z


@dataclasses.dataclass(frozen=True, eq=True)
class DPoint3:
    x: int
    y: list[int]
    z: int


def test_plain_behaves_like_a_dataclass() -> None:
    a, b = Point3(1, [2], 3), Point3(1, [2], 3)
    da = DPoint3(1, [2], 3)
    assert a == b and a != Point3(1, [2], 4)
    assert repr(a) == repr(da).replace("DPoint3", "Point3")
    assert a.as_dict() == dataclasses.asdict(da)
    assert Point3._fields() == tuple(f.name for f in dataclasses.fields(da))
    moved = a.replace(z=9)
    assert moved == Point3(1, [2], 9) and a.z == 3 and type(moved) is Point3
    assert dataclasses.replace(da, z=9) == DPoint3(1, [2], 9)
    assert moved.y is a.y  # shallow, like dataclasses.replace
    # Unhashable (mutable, eq defined), like a non-frozen dataclass with eq.
    with pytest.raises(TypeError):
        hash(a)
    # Another type, even with the same fields, is never equal (NotImplemented both ways).
    assert a != Point(1, [2]) and Point(1, [2]) != a and a != da
    with pytest.raises(TypeError, match="Point3 has no field 'w'"):
        a.replace(w=1)
    with pytest.raises(AttributeError):
        a.w = 1  # type: ignore[attr-defined]  # slots: no stray attributes


# ---- Undo: ExitStack's unwinding, on failure only ----------------------------------------


def _record(log: list[str], tag: str, fail: BaseException | None = None) -> Callable[[], None]:
    def step() -> None:
        log.append(tag)
        if fail is not None:
            raise fail

    return step


def _both(steps: list[tuple[str, BaseException | None]]) -> tuple[list[str], list[str]]:
    """Run `steps` as undo callbacks, unwound by an error, through Undo and ExitStack."""
    ours: list[str] = []
    theirs: list[str] = []
    with contextlib.suppress(BaseException), Undo() as undo:
        for tag, fail in steps:
            undo.callback(_record(ours, tag, fail))
        raise RuntimeError("create failed")
    with contextlib.suppress(BaseException), contextlib.ExitStack() as stack:
        for tag, fail in steps:
            stack.callback(_record(theirs, tag, fail))
        raise RuntimeError("create failed")
    return ours, theirs


def test_undo_is_lifo_like_exitstack() -> None:
    ours, theirs = _both([("a", None), ("b", None), ("c", None)])
    assert ours == theirs == ["c", "b", "a"]


def test_a_failing_step_does_not_stop_the_others() -> None:
    ours, theirs = _both([("a", None), ("b", OSError("busy")), ("c", None)])
    assert ours == theirs == ["c", "b", "a"]


def test_undo_keeps_the_original_error() -> None:
    # ExitStack would raise the step's OSError (chained); Undo keeps the create's own error,
    # which is the one the user must see: a failed rollback step is not the cause.
    undo = Undo()
    undo.callback(_record([], "x", OSError("busy")))
    with pytest.raises(RuntimeError, match="create failed"), undo:
        raise RuntimeError("create failed")


def test_args_are_passed_and_success_keeps_everything() -> None:
    log: list[Any] = []
    with Undo() as undo:
        undo.callback(log.append, "rolled back")
    assert log == []  # unlike ExitStack, success runs nothing: the box stays
    undo = Undo()
    undo.callback(log.append, 1)
    undo.discard()
    with contextlib.suppress(RuntimeError), undo:
        raise RuntimeError
    assert log == []
    undo.callback(log.append, 2)
    undo.run()
    undo.run()  # steps run once
    assert log == [2]


def test_an_interrupt_in_a_step_still_runs_the_older_steps() -> None:
    ours, theirs = _both([("a", None), ("b", KeyboardInterrupt()), ("c", None)])
    assert theirs == ["c", "b", "a"]
    assert ours == theirs
