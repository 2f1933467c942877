"""`tuibox serve`'s checks before it serves (tuibox/cli/serve.py), and where textual-serve may
be imported: only by that verb."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tuibox.cli.args import UsageError, parse
from tuibox.cli.serve import ServeOptions, check_options, is_loopback, tui_command
from tuibox.runtime.errors import SpecError

PKG = Path(__file__).resolve().parents[2] / "tuibox"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.2", False), ("example.org", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_defaults_and_refusals() -> None:
    assert check_options(parse(ServeOptions, [])) == ("127.0.0.1", 8000)
    assert check_options(parse(ServeOptions, ["--port", "9001", "--host", "::1"])) == ("::1", 9001)
    with pytest.raises(SpecError, match="--allow-remote"):
        check_options(parse(ServeOptions, ["--host", "0.0.0.0"]))
    remote = parse(ServeOptions, ["--host", "0.0.0.0", "--allow-remote"])
    assert check_options(remote) == ("0.0.0.0", 8000)
    for bad in ("0", "65536", "http", "-1"):
        with pytest.raises(UsageError, match="--port"):
            check_options(parse(ServeOptions, ["--port", bad]))


def test_the_served_tui_runs_on_our_roots() -> None:
    from tuibox.cli import Globals

    g = Globals()
    g.root, g.data_root = "/run/x y", "/var/lib/z"
    assert tui_command(g).endswith("-m tuibox --root '/run/x y' --data-root /var/lib/z")


def test_only_the_serve_verb_imports_textual_serve() -> None:
    importers = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("textual_serve", "aiohttp") for n in names):
                importers.append(path.relative_to(PKG).as_posix())
    assert set(importers) == {"cli/serve.py"}
