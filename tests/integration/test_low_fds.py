"""RLIMIT_NOFILE 8 and 16 (issue 12): `run`, `create` and `destroy` either succeed or fail with
one line and leave nothing behind; never a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, unique
from tests.integration.test_faults import cgroups, processes

pytestmark = pytest.mark.root


def limited(tb: TB, nofile: int, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *tb.argv(*args)]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def one_line_or_success(proc: subprocess.CompletedProcess[str]) -> bool:
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        return True
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tuibox: error:")]
    assert len(errors) == 1, proc.stderr
    return False


@pytest.mark.parametrize("nofile", [8, 16])
def test_low_fd_limit_fails_cleanly_or_succeeds(
    tb: TB, tmp_path: Path, make_bundle: Callable[..., Path], nofile: int
) -> None:
    bundle = str(make_bundle(["/bin/sh", "-c", "sleep 1000", str(tmp_path)]))
    before = cgroups(tb.root)
    for verb in ("run", "create"):
        name = unique("fd")
        extra = ["-d"] if verb == "run" else []
        if one_line_or_success(limited(tb, nofile, verb, *extra, "--bundle", bundle, name)):
            tb("destroy", "--force", name)
        assert tb.names() == [], (verb, nofile)
        assert cgroups(tb.root) == before
        assert processes(str(tmp_path)) == set()
    # destroy: made without a limit, destroyed under one; a failure keeps the box for a retry.
    name = unique("fd")
    tb("run", "-d", "--bundle", bundle, name)
    if not one_line_or_success(limited(tb, nofile, "destroy", "--force", name)):
        tb("destroy", "--force", name)
    assert tb.names() == []
    assert cgroups(tb.root) == before
    assert processes(str(tmp_path)) == set()
