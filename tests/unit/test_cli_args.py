from __future__ import annotations

import pytest

from tuibox.cli.args import Arg, Command, HelpRequested, Opt, UsageError, parse

RUN = Command(
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


def test_options_then_name_then_untouched_command() -> None:
    got = parse(RUN, ["-d", "--bundle=/b", "-e", "A=1", "-eB=2", "box", "sh", "-c", "echo -d --x"])
    assert got["detach"] is True and got["bundle"] == "/b"
    assert got["env"] == ["A=1", "B=2"]
    assert got["name"] == "box"
    assert got["command"] == ["sh", "-c", "echo -d --x"]


def test_clustered_short_flags_and_attached_value() -> None:
    got = parse(RUN, ["-it", "-p8080:80", "-p", "1:2", "n"])
    assert got["tty"] and got["interactive"] and got["ports"] == ["8080:80", "1:2"]
    assert got["command"] == []


def test_double_dash_allows_a_name_that_looks_like_an_option() -> None:
    assert parse(RUN, ["--", "-x"])["name"] == "-x"


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
    cmd = Command("start", "", (), (Arg("name"),))
    with pytest.raises(UsageError, match="unexpected argument 'b'"):
        parse(cmd, ["a", "b"])
