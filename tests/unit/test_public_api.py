"""`tuibox.runtime` as a library: an explicit, lazy public API."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import tuibox.runtime as api
from tuibox.runtime import errors


def _fresh(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_importing_the_package_imports_nothing_else() -> None:
    loaded = _fresh(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import tuibox.runtime\n"
        "print(sorted(set(sys.modules) - before - {'__future__'}))"
    )
    assert loaded == "['tuibox', 'tuibox.runtime']"


def test_names_load_on_first_use_only() -> None:
    loaded = _fresh(
        "import sys\n"
        "from tuibox.runtime import TuiboxError\n"
        "print(sorted(m for m in sys.modules if m.startswith('tuibox.runtime.')"
        " or m == 'ctypes'))"
    )
    assert loaded == "['tuibox.runtime.errors']"


def test_runtime_without_a_screen() -> None:
    loaded = _fresh(
        "import sys\n"
        "from tuibox.runtime import BoxRequest, ExecRequest, Runtime, load_spec\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'pyroute2')"
        " or m.startswith(('tuibox.cli', 'tuibox.screens', 'tuibox.widgets', 'tuibox.service'))))"
    )
    assert loaded == "[]"


def test_every_exported_name_resolves() -> None:
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.BoxRequest is api.CreateRequest
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError):
        _ = api.NoSuchThing  # type: ignore[attr-defined]


def test_the_docstring_shows_every_error() -> None:
    doc = api.__doc__ or ""
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.TuiboxError):
            assert name in api.__all__, name
            assert f"+-- {name} " in doc or name == "TuiboxError", name


def test_runtime_takes_both_roots(tmp_path: object) -> None:
    rt = api.Runtime(root=f"{tmp_path}/state", data_root=f"{tmp_path}/data")
    assert rt.list() == []
    assert rt.images.data_root == f"{tmp_path}/data"


def test_a_threaded_caller_of_a_forking_verb_gets_a_clear_error(tmp_path: object) -> None:
    from tuibox.runtime.spec import parse_spec, starter_spec

    rt = api.Runtime(root=f"{tmp_path}/state")
    req = api.BoxRequest("b", parse_spec(starter_spec(["true"]), f"{tmp_path}"))
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        for verb, call in (
            ("create", lambda: rt.create(req)),
            ("run", lambda: rt.run(req)),
            ("exec", lambda: rt.exec("b", api.ExecRequest(args=("true",)))),
        ):
            with pytest.raises(api.TuiboxError) as e:
                call()
            assert str(e.value).startswith(f"{verb}: forks, so it must be called from a single")
    finally:
        stop.set()
        worker.join()
    assert rt.root.names() == []  # refused before anything touched the disk


def test_the_thread_check_does_not_import_threading() -> None:
    loaded = _fresh(
        "import sys\n"
        "from tuibox.runtime.guards import refuse_threads\n"
        "refuse_threads('create')\n"
        "print('threading' in sys.modules)"
    )
    assert loaded == "False"
