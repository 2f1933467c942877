"""The direction of dependencies, checked on the source (ast, every import, top-level or not).

    screens/, widgets/, app  ->  service  ->  runtime/
    cli/                     ->  runtime/

The runtime is a library without a screen; the CLI parses and prints; the UI reaches the
runtime only through the service. `__import__("tuibox.x...")` with a literal is an import too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "tuibox"
UI = ("textual", "tuibox.app", "tuibox.screens", "tuibox.widgets", "tuibox.tui_main")

# (layer, the files in it, the modules it must not import)
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("runtime", "runtime/**/*.py", ("tuibox.cli", "tuibox.service", *UI)),
    ("cli", "cli/**/*.py", ("tuibox.service", *UI)),
    ("service", "service.py", ("tuibox.cli", *UI)),
    ("screens", "screens/**/*.py", ("tuibox.runtime", "tuibox.cli")),
    ("widgets", "widgets/**/*.py", ("tuibox.runtime", "tuibox.cli")),
    ("app", "app.py", ("tuibox.runtime", "tuibox.cli")),
]

# Known exceptions: (file relative to tuibox/, imported module) -> why it is allowed.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # `tuibox` with no verb opens the TUI: the CLI's entry point is the one place that starts
    # it, through a function-level import only taken on that path.
    ("cli/__init__.py", "tuibox.tui_main"): "the no-verb entry point starts the TUI",
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str = "") -> set[str]:
    """Every module `path` (the module named `module`) imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    module = module or _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from tuibox import service` imports tuibox.service
            found.update(f"{target}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and arg.values:
                head = arg.values[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    found.add(head.value.rstrip("."))
    return found


def _forbidden(name: str, banned: tuple[str, ...]) -> str | None:
    for b in banned:
        if name == b or name.startswith(b + "."):
            return b
    return None


def violations(layer_glob: str, banned: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for path in sorted(PKG.glob(layer_glob)):
        rel = str(path.relative_to(PKG))
        for name in sorted(imports_of(path)):
            allowed = any(r == rel and _forbidden(name, (n,)) for r, n in EXCEPTIONS)
            if _forbidden(name, banned) and not allowed:
                out.append((rel, name))
    return out


@pytest.mark.parametrize(("layer", "files", "banned"), RULES, ids=[r[0] for r in RULES])
def test_layer(layer: str, files: str, banned: tuple[str, ...]) -> None:
    assert list(PKG.glob(files)), f"no files for layer {layer}"
    assert violations(files, banned) == []


def test_exceptions_are_still_needed() -> None:
    # A stale exception hides the next real violation of the same import.
    for (rel, name), _why in EXCEPTIONS.items():
        assert name in imports_of(PKG / rel), (rel, name)


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    # The parser itself: function-level, relative and __import__ forms are all seen.
    sample = tmp_path / "probe.py"
    sample.write_text(
        "def f():\n"
        "    from ..cli import args\n"
        "    import textual.app\n"
        "    __import__(f'tuibox.service.{x}')\n"
    )
    got = imports_of(sample, "tuibox.runtime.probe")
    assert {"tuibox.cli", "tuibox.cli.args", "textual.app", "tuibox.service"} <= got
