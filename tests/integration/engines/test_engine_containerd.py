"""containerd 1.6 (`ctr run --rm --runc-binary`) with runc or tuibox: output and exit code."""

from __future__ import annotations

import pytest
from conftest import IMAGE, RUNC, RUNTIMES, Containerd, assert_nothing_left, engine_id

pytestmark = pytest.mark.root


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctr_run_rm(containerd: Containerd, tuibox_launcher: object, runtime: str) -> None:
    binary = RUNC if runtime == "runc" else str(tuibox_launcher)
    root = containerd.runc_root(runtime)
    for args, code, out in ((["echo", "hi"], 0, "hi\n"), (["sh", "-c", "exit 3"], 3, "")):
        cid = engine_id()
        p = containerd(
            "run",
            "--rm",
            "--runc-binary",
            binary,
            "--runc-root",
            str(root),
            IMAGE,
            cid,
            *args,
        )
        assert (p.returncode, p.stdout) == (code, out), p.stderr
        assert_nothing_left(cid, root)
