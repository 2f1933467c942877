"""The runtime embedded in a Python program: no fd left behind per box."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import tb_at

pytestmark = pytest.mark.root

EMBEDDER = """
import os, sys
from tuibox.runtime import BoxRequest, Runtime, load_spec

root, bundle, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

def fds():
    return sorted(os.listdir("/proc/self/fd"))

rt = Runtime(root=root)
spec = load_spec(os.path.join(bundle, "config.json"), bundle)
before = fds()
for i in range(count):
    rt.create(BoxRequest(f"embed{i}", spec))
    if i % 2:
        rt.start(f"embed{i}")
        rt.wait(f"embed{i}", timeout=10)
    rt.destroy(f"embed{i}", force=True)
after = fds()
print(len(before), len(after), sorted(set(after) - set(before)))
"""


def test_an_embedder_leaks_no_fd_over_100_boxes(
    tmp_path: Path, make_bundle: Callable[..., Path]
) -> None:
    bundle = make_bundle(["/bin/true"])
    state = tmp_path / "state"
    with tb_at(state, tmp_path / "data", tmp_path):
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "TUIBOX_DATA": str(tmp_path / "data"),  # the boxes' logs go there
        }
        out = subprocess.run(
            [sys.executable, "-c", EMBEDDER, str(state), str(bundle), "100"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        before, after, extra = out.stdout.split(" ", 2)
        assert before == after, f"fds left open: {extra.strip()}"
        assert os.listdir(state) == [] or all(n.startswith(".") for n in os.listdir(state))
        # each box's log dir went with its destroy
        assert os.listdir(tmp_path / "data" / "boxes") == []
