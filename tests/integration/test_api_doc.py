"""docs/API.md's examples, run as they are written: each ```python block in a fresh Python,
as root, on this test's own state root, image store, bridge, subnet and port, its stdout
compared with the ```text block that follows it. The blocks run in order (the web box of one
is exec'd into by the next), and nothing may be left behind (boxes, mounts, the bridge, its
nft table: the `tb` and `net` fixtures check)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TB
from tests.integration.test_network import Net, _free_port, net  # noqa: F401 - the fixture

pytestmark = pytest.mark.root

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def examples() -> list[tuple[str, str]]:
    """(code, expected output) for every python block, in order."""
    blocks = BLOCK.findall(DOC.read_text())
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        assert i + 1 < len(blocks) and blocks[i + 1][0] == "text", (
            f"docs/API.md: python block {len(out) + 1} has no ```text block after it"
        )
        out.append((body, blocks[i + 1][1]))
    return out


def test_the_doc_has_the_examples_the_issue_asks_for() -> None:
    code = "\n".join(c for c, _ in examples())
    assert len(examples()) >= 5
    for needle in ('from_image(\n    "hello", "busybox"', 'memory="64m"', 'network="default"',
                   "publish=", "rt.exec(", "stats_stream(", "rt.attach("):  # fmt: skip
        assert needle in code, needle
    for line in code.splitlines():  # only the public API
        if line.startswith("from tuibox"):
            assert line.startswith("from tuibox.runtime import "), line


def test_api_doc_examples_run(tb: TB, net: Net) -> None:  # noqa: F811 - the fixture
    env = {
        **os.environ,
        "TUIBOX_ROOT": str(tb.root),
        "TUIBOX_DATA": str(tb.data_root),
        "API_PORT": str(_free_port()),
        "PYTHONPATH": str(DOC.parents[1]),
    }
    for n, (code, expected) in enumerate(examples(), 1):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        where = f"docs/API.md example {n}:\n{code}\nstderr: {proc.stderr}"
        assert proc.returncode == 0, where
        assert proc.stdout == expected, where
    assert tb.names() == []
