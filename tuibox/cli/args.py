"""A small declarative argument parser with typed results.

argparse costs ~13 ms to import here (it pulls in re and enum), half of runc's whole `run`;
the CLI's start-up is part of the product, so verbs declare their options as data and this
module parses them: long and short options, `--opt=value`, clustered short flags (`-it`),
repeated options, and a trailing command that is never parsed (`run NAME sh -c ...`).

Each command is the COMMAND of an `Options` subclass, and `parse` fills an instance of that
class: verbs read `opts.memory`, and mypy knows its type.
"""

from __future__ import annotations

from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ClassVar, TypeVar

    OptionsT = TypeVar("OptionsT", bound="Options")
    G = TypeVar("G")


class UsageError(Exception):
    """Bad command-line words; the message is one line for the user."""

    kind = "usage"


class UnknownOption(UsageError):
    """An option the verb does not have (an older CLI, for the TUI: the option is unavailable)."""

    kind = "unknown-option"


class Opt:
    def __init__(
        self,
        names: tuple[str, ...],
        dest: str,
        value: str | None = None,
        multiple: bool = False,
        default: str | None = None,
        help: str = "",
    ) -> None:
        self.names = names  # ("-d", "--detach")
        self.dest = dest
        self.value = value  # metavar when the option takes a value
        self.multiple = multiple
        self.default = default
        self.help = help


class Arg:
    def __init__(
        self, dest: str, help: str = "", required: bool = True, rest: bool = False
    ) -> None:
        self.dest = dest
        self.help = help
        self.required = required
        self.rest = rest  # swallows every remaining word, options included


class Command:
    def __init__(
        self,
        name: str,
        help: str,
        opts: tuple[Opt, ...] = (),
        args: tuple[Arg, ...] = (),
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.help = help
        self.opts = opts
        self.args = args
        self.aliases = aliases

    def usage(self) -> str:
        parts = [f"tuibox {self.name}"]
        if self.opts:
            parts.append("[OPTIONS]")
        for a in self.args:
            label = a.dest.upper() + ("..." if a.rest else "")
            parts.append(label if a.required else f"[{label}]")
        lines = [" ".join(parts), "", self.help]
        if self.opts:
            lines.append("")
            lines.append("options:")
            for o in self.opts:
                head = ", ".join(o.names) + (f" {o.value}" if o.value else "")
                lines.append(f"  {head:<28} {o.help}")
        return "\n".join(lines)


class Options(Plain):
    """The parsed words of one command, one attribute per option and argument.

    A subclass sets COMMAND (its grammar) and lists in __slots__ the dest of each of its
    Opts and Args, annotated with the type `parse` gives it: a flag is `bool`; an option
    with a value `str | None` (`str` when it has a default); a repeated one `list[str]`; a
    required argument `str`, an optional one `str | None`, a trailing one `list[str]`.
    tests/unit/test_cli_args.py checks every command of the CLI against its class.
    Equality and repr come from `Plain` (no dataclasses on `run`'s start-up path)."""

    __slots__ = ()
    COMMAND: ClassVar[Command]


def parse(into: type[OptionsT], words: list[str]) -> OptionsT:
    """The words after the verb, as an instance of `into` (its COMMAND's grammar)."""
    cmd = into.COMMAND
    by_name: dict[str, Opt] = {}
    for o in cmd.opts:
        for n in o.names:
            by_name[n] = o
    out = into.__new__(into)
    for o in cmd.opts:
        if o.multiple:
            setattr(out, o.dest, [])
        else:
            setattr(out, o.dest, False if o.value is None else o.default)
    positionals: list[str] = []
    i = 0
    options_done = False
    rest_index = next((k for k, a in enumerate(cmd.args) if a.rest), None)

    def take(o: Opt, value: str | bool) -> None:
        if o.multiple:
            getattr(out, o.dest).append(value)
        else:
            setattr(out, o.dest, value)

    while i < len(words):
        w = words[i]
        i += 1
        if options_done or w == "-" or not w.startswith("-"):
            positionals.append(w)
            # Once the words before the trailing command are in, the rest is the command.
            if rest_index is not None and len(positionals) > rest_index:
                positionals.extend(words[i:])
                break
            continue
        if w == "--":
            options_done = True
            continue
        if w in ("-h", "--help"):
            raise HelpRequested(cmd.usage())
        if w.startswith("--"):
            name, eq, inline = w.partition("=")
            found = by_name.get(name)
            if found is None:
                raise UnknownOption(f"{cmd.name}: unknown option {name}")
            if found.value is None:
                if eq:
                    raise UsageError(f"{cmd.name}: option {name} takes no value")
                take(found, True)
            elif eq:
                take(found, inline)
            else:
                if i >= len(words):
                    raise UsageError(f"{cmd.name}: option {name} needs a value ({found.value})")
                take(found, words[i])
                i += 1
            continue
        # short options, possibly clustered: -it, -p80:80, -e K=V
        j = 1
        while j < len(w):
            name = "-" + w[j]
            found = by_name.get(name)
            if found is None:
                raise UnknownOption(f"{cmd.name}: unknown option {name}")
            if found.value is None:
                take(found, True)
                j += 1
                continue
            if j + 1 < len(w):
                take(found, w[j + 1 :])
            elif i < len(words):
                take(found, words[i])
                i += 1
            else:
                raise UsageError(f"{cmd.name}: option {name} needs a value ({found.value})")
            break
    k = 0
    for a in cmd.args:
        if a.rest:
            setattr(out, a.dest, positionals[k:])
            k = len(positionals)
        elif k < len(positionals):
            setattr(out, a.dest, positionals[k])
            k += 1
        elif a.required:
            raise UsageError(
                f"{cmd.name}: missing {a.dest.upper()} (see 'tuibox {cmd.name} --help')"
            )
        else:
            setattr(out, a.dest, None)
    if k < len(positionals):
        raise UsageError(f"{cmd.name}: unexpected argument {positionals[k]!r}")
    return out


def entry(into: type[OptionsT], act: Callable[[OptionsT, G], int]) -> Callable[[list[str], G], int]:
    """A verb's entry for a dispatch table: parse the words into `into`, then act."""

    def run(words: list[str], g: G) -> int:
        return act(parse(into, words), g)

    return run


class HelpRequested(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
