"""Fixtures for the root integration tests: a busybox rootfs with a syscall probe in it.

`probe_rootfs` is a COPY of the shared busybox rootfs (never changed in place) with
/bin/probe, tests/probe/probe.c built static: `probe keyctl bpf` prints `keyctl: EPERM`...
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROBE_SOURCE = Path(__file__).resolve().parents[1] / "probe" / "probe.c"


@pytest.fixture(scope="session")
def probe_rootfs(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build tests/probe/probe.c (apt-get install gcc libc6-dev)")
    dest = tmp_path_factory.mktemp("probe") / "rootfs"
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    out = dest / "bin" / "probe"
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(out), str(PROBE_SOURCE)],
        check=True,
        capture_output=True,
    )
    return dest
