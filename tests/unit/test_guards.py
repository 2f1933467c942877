"""The one guard table: which status allows which verb, and how a refusal reads."""

from __future__ import annotations

import ast
import os
import stat

import pytest

from tuibox.runtime import guards
from tuibox.runtime.errors import InvalidState
from tuibox.runtime.linux.paths import find_program

STATUSES = set(guards.STATUSES)


def test_every_guard_names_known_statuses() -> None:
    for verb, allowed in guards.GUARDS.items():
        assert allowed <= STATUSES, verb
        assert allowed, verb


def test_check_names_both_states() -> None:
    guards.check("start", "b", "created")
    with pytest.raises(InvalidState) as e:
        guards.check("start", "b", "running")
    assert str(e.value) == "cannot start box 'b': it is running, it must be created or stopped"
    for verb in guards.GUARDS:
        refused = STATUSES - guards.GUARDS[verb]
        for status in refused:
            with pytest.raises(InvalidState):
                guards.check(verb, "b", status)


def test_box_reexports_the_same_table() -> None:
    from tuibox.runtime import box

    assert box.GUARDS is guards.GUARDS


def test_no_verb_refuses_a_status_by_itself() -> None:
    # Every InvalidState comes from guards.check: no second table, no inline status list.
    runtime = os.path.dirname(guards.__file__)
    users = []
    for dirpath, _dirs, files in os.walk(runtime):
        for f in files:
            if not f.endswith(".py") or f in ("guards.py", "errors.py"):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "InvalidState":
                    users.append(f"{path}:{node.lineno}")
    assert users == []


def test_find_program(tmp_path: object) -> None:
    d = str(tmp_path)
    exe = os.path.join(d, "prog")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(exe, 0o755)
    plain = os.path.join(d, "plain")
    with open(plain, "w") as f:
        f.write("")
    os.chmod(plain, stat.S_IRUSR)
    assert find_program("prog", f"/nonexistent:{d}") == exe
    assert find_program(exe, "") == exe
    with pytest.raises(OSError) as e:
        find_program("missing", d)
    assert str(e.value).endswith("missing: no such file or directory")
    with pytest.raises(OSError) as e:
        find_program("plain", d)
    assert "permission denied" in str(e.value)
