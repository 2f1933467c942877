"""Errors carry a kind: the runtime's classes, the CLI's kind line, the service's decision."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuibox.runtime import errors
from tuibox.runtime.cgroups import fs
from tuibox.service import (
    CliBackend,
    InProcessBackend,
    ServiceError,
    ServiceUnavailable,
    error_from_cli,
)

TREE = str(Path(__file__).resolve().parents[2])


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def test_every_runtime_error_has_a_known_kind() -> None:
    for cls in [errors.TuiboxError, *_all_subclasses(errors.TuiboxError)]:
        assert cls.kind in errors.KINDS, cls
    assert errors.BoxNotFound("a").kind == "not-found"
    assert errors.InvalidState("a", "running", "start", "created").kind == "invalid-state"
    assert errors.CommandNotFound("exec", "x").kind == "init"


def test_a_missing_cgroup_file_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(errors.CgroupUnsupported) as e:
        fs.write(str(tmp_path / "memory.nothing"), "1")
    # Both: code catching CgroupError still does, and the kind says "this host cannot".
    assert isinstance(e.value, errors.CgroupError) and isinstance(e.value, errors.Unsupported)
    assert e.value.kind == "unsupported"


def _cli(tmp_path: Path, *words: str, kinds: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TUIBOX_ERROR_KINDS"}
    env["PYTHONPATH"] = TREE
    if kinds:
        env["TUIBOX_ERROR_KINDS"] = "1"
    argv = [sys.executable, "-m", "tuibox", "--root", str(tmp_path / "state"), *words]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("words", "kind", "cls", "code"),
    [
        (("start", "nope"), "not-found", "BoxNotFound", 125),
        (("start", "--bogus", "nope"), "unknown-option", "UnknownOption", 2),
        (("frobnicate",), "unknown-command", "Error", 2),
        (("start",), "usage", "UsageError", 2),
        (("create", "--bundle", "/nonexistent-bundle", "b"), "spec", "SpecError", 125),
    ],
)
def test_cli_kind_line(
    tmp_path: Path, words: tuple[str, ...], kind: str, cls: str, code: int
) -> None:
    plain = _cli(tmp_path, *words, kinds=False)
    assert plain.returncode == code
    # Users see exactly one line, unchanged, when nobody asked for kinds.
    assert len(plain.stderr.splitlines()) == 1 and plain.stderr.startswith("tuibox: error: ")
    asked = _cli(tmp_path, *words, kinds=True)
    assert asked.returncode == code
    human, machine = asked.stderr.splitlines()
    assert human == plain.stderr.rstrip("\n")
    assert json.loads(machine) == {"tuibox_error": {"kind": kind, "class": cls, "exit_code": code}}
    assert not (tmp_path / "state" / "b").exists()


def test_service_reads_the_kind_from_the_real_cli(tmp_path: Path) -> None:
    backend = CliBackend(str(tmp_path / "state"), str(tmp_path / "data"))
    with pytest.raises(ServiceError) as e:
        asyncio.run(backend.start("nope"))
    assert type(e.value) is ServiceError and e.value.kind == "not-found"
    assert e.value.message == "box 'nope' does not exist"
    with pytest.raises(ServiceUnavailable) as u:
        asyncio.run(backend.call("start", "--bogus", "nope"))
    assert u.value.kind == "unknown-option"


def test_the_kind_decides_not_the_text() -> None:
    line = '{"tuibox_error": {"kind": "%s", "class": "X", "exit_code": 125}}\n'
    text = "tuibox: error: memory.swap: not supported, not implemented, unknown option\n"
    assert type(error_from_cli("update", 125, text + line % "cgroup")) is ServiceError
    err = error_from_cli("pause", 125, "tuibox: error: no freezer\n" + line % "unsupported")
    assert isinstance(err, ServiceUnavailable) and err.message == "no freezer"
    # Garbage that looks like JSON is kept as text, not taken for a kind.
    assert error_from_cli("x", 1, "{not json\n").message == "{not json"


def test_in_process_backend_uses_the_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = InProcessBackend(str(tmp_path / "state"), str(tmp_path / "data"))

    def raiser(exc: Exception):  # type: ignore[no-untyped-def]
        def ps(name: str) -> None:
            raise exc

        return ps

    monkeypatch.setattr(backend.runtime, "ps", raiser(errors.CgroupUnsupported("no freezer")))
    with pytest.raises(ServiceUnavailable) as u:
        asyncio.run(backend.processes("a"))
    assert u.value.kind == "unsupported"
    monkeypatch.setattr(backend.runtime, "ps", raiser(errors.CgroupError("x not supported")))
    with pytest.raises(ServiceError) as e:
        asyncio.run(backend.processes("a"))
    assert type(e.value) is ServiceError and e.value.kind == "cgroup"
    monkeypatch.setattr(backend.runtime, "ps", raiser(PermissionError(13, "Permission denied")))
    with pytest.raises(ServiceError) as p:
        asyncio.run(backend.processes("a"))
    assert p.value.kind == "permission"
