"""The runtime's import graph, read from the source (ast): no cycle among module-level imports.

Imports inside functions (the lazy ones that keep `tuibox run` lean) are collected
separately and allowed to point anywhere; module-level ones, the implicit imports of parent
packages, and the stage table's modules (loaded on every create) must form a DAG, so the
order modules are imported in never changes what they do.
"""

from __future__ import annotations

import ast
import os

from tuibox.runtime.stages import order

RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(order.__file__)))
PKG = "tuibox.runtime"


def _parse(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def _modules() -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(RUNTIME):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, RUNTIME)[:-3].replace(os.sep, ".")
                name = PKG if rel == "__init__" else f"{PKG}.{rel.removesuffix('.__init__')}"
                out[name] = path
    return out


MODULES = _modules()


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool) -> set[str]:
    names: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            names.update(_parents(alias.name))
        return names
    if node.level:
        base = module if is_pkg else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            base = base.rsplit(".", 1)[0]
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    names.update(_parents(source))
    for alias in node.names:
        names.add(f"{source}.{alias.name}")  # a submodule, if it is one (filtered below)
    return names


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports(module: str) -> tuple[set[str], set[str]]:
    """(module-level, function-level) imports of runtime modules; TYPE_CHECKING ones skipped."""
    path = MODULES[module]
    is_pkg = path.endswith("__init__.py")
    tree = _parse(path)
    top: set[str] = set()
    lazy: set[str] = set()

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    walk(sub, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (lazy if in_function else top).update(_targets(child, module, is_pkg))
                continue
            funcs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            walk(child, in_function or isinstance(child, funcs))

    walk(tree, False)
    own = set(_parents(module))
    return {m for m in top if m in MODULES} - own, {m for m in lazy if m in MODULES} - own


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_parser_sees_both_kinds() -> None:
    top, lazy = imports(f"{PKG}.box")
    assert f"{PKG}.state" in top
    assert f"{PKG}.cgroups" in lazy  # _kill_box imports it inside the function
    assert f"{PKG}.spec_model" not in top  # only under TYPE_CHECKING


def test_no_cycle_among_module_level_imports() -> None:
    graph = {m: imports(m)[0] for m in MODULES}
    # The stage table imports its modules on every create: count those edges as eager.
    graph[order.__name__] |= {module for _name, module, _needed in order.ORDER}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


# seccomp/profile.py checks linux.seccomp, a config.json field, with spec.py's own validators.
PRIVATE_OK = {"tuibox.runtime.seccomp.profile": "tuibox.runtime.spec"}


def test_no_module_imports_another_ones_private_names() -> None:
    bad = []
    for module, path in MODULES.items():
        tree = _parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PKG):
                if PRIVATE_OK.get(module) == node.module:
                    continue
                bad += [f"{module}: {node.module}.{a.name}" for a in node.names if a.name[0] == "_"]
    assert bad == []


def test_only_the_stage_table_names_modules() -> None:
    # No registry filled through module names: the stage table is the one place that has
    # any, besides the public API's lazy export table (tuibox/runtime/__init__.py).
    users = set()
    for module, path in MODULES.items():
        tree = _parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in MODULES:
                users.add(module)
    assert users == {order.__name__, PKG}
