"""scripts/setup.sh puts `tuibox` on PATH (the README's `sudo tuibox`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"
MARK = "# `tuibox` (and `sudo tuibox`"


def link_step() -> str:
    """The script's last step alone: the rest installs packages and a venv."""
    text = SETUP.read_text()
    assert MARK in text
    return text[text.index(MARK) :]


def run_step(repo: Path, bindir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TUIBOX_BINDIR=str(bindir))
    script = f'repo="{repo}"\n' + link_step()
    return subprocess.run(["sh", "-eu", "-c", script], env=env, capture_output=True, text=True)


def test_setup_links_tuibox_into_the_bin_dir(tmp_path: Path) -> None:
    repo, bindir = tmp_path / "repo", tmp_path / "bin"
    launcher = repo / ".venv" / "bin" / "tuibox"
    launcher.parent.mkdir(parents=True)
    launcher.write_text('#!/bin/sh\necho launched "$@"\n')
    launcher.chmod(0o755)
    for _ in range(2):  # idempotent
        assert run_step(repo, bindir).returncode == 0
    link = bindir / "tuibox"
    assert os.readlink(link) == str(launcher)
    path = f"{bindir}:{os.environ.get('PATH', '')}"
    out = subprocess.run(["tuibox", "x"], env={"PATH": path}, capture_output=True, text=True)
    assert out.stdout == "launched x\n"


def test_setup_leaves_a_foreign_tuibox_alone(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "tuibox").write_text("someone else's\n")
    done = run_step(tmp_path / "repo", bindir)
    assert done.returncode == 0 and "not a link" in done.stderr
    assert (bindir / "tuibox").read_text() == "someone else's\n"
