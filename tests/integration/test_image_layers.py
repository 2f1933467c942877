"""Layered storage without a registry: an OCI layout imported layer by layer keeps each layer
once, in overlayfs's form (whiteouts as 0/0 character devices, opaque directories marked with
trusted.overlay.opaque), and a foreground run of an image box leaves no writable layer."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from tests.conftest import TB
from tests.integration.test_image_boxes import OCI_CONFIG, make_oci_layout
from tuibox.runtime.images.store import ImageStore

pytestmark = pytest.mark.root


def test_layers_are_stored_in_overlay_form_and_shared(tb: TB, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_oci_layout(layout, tmp_path, OCI_CONFIG)
    store = ImageStore(str(tb.data_root))
    one = store.import_layered(str(layout), "one")
    two = store.import_layered(str(layout), "two")
    assert one.layers == two.layers and len(one.layers) == 2
    layers = tb.data_root / "layers"
    assert sorted(p.name for p in layers.iterdir()) == sorted(d[7:] for d in one.layers)
    top = layers / one.layers[1][7:] / "diff"
    gone = os.lstat(top / "etc" / "gone")  # `.wh.gone` became what overlayfs reads
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert not (top / "etc" / ".wh.gone").exists()
    assert (layers / one.layers[0][7:] / "diff" / "etc" / "gone").read_text() == "x\n"
    assert oct(os.stat(layers).st_mode & 0o777) == "0o700"
    # The box sees the layers merged: the whiteout hides the base's file.
    script = "cat /etc/motd; ls /etc/gone 2>/dev/null || echo hidden"
    assert tb("run", "--image", "two", "m", "/bin/sh", "-c", script).stdout == "two\nhidden\n"
    # The config (Cmd, Env, WorkingDir, User "app" resolved in the top layer's passwd),
    # as for the same layout imported flat (test_image_boxes.py).
    out = tb("run", "--image", "two", "cfg").stdout.splitlines()
    assert out == ["two", "gone", "hi /home/app", "/srv", "1000", "1000", "1000 50"], out
    # A detached box of it stops and starts again on the same layers and writable layer.
    tb("run", "-d", "-u", "0", "--image", "two", "d", "/bin/sh", "-c", "echo x >> /runs; sleep 30")
    tb("stop", "-t", "1", "d")
    tb("start", "d")
    # The second run appends to what the first wrote (give its shell a moment to start).
    deadline = time.monotonic() + 10
    while (runs := tb("exec", "d", "/bin/busybox", "cat", "/runs").stdout) != "x\nx\n":
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    assert "in use by d" in tb.fails("image", "rm", "two")
    tb("destroy", "--force", "d")
    usage = store.usage()
    assert usage["one"] == usage["two"] and usage["one"][1] == 0 and usage["one"][0] > 0
    store.remove("one")
    assert len(list(layers.iterdir())) == 2  # two still uses both
    store.remove("two")
    assert list(layers.iterdir()) == [] and list((tb.data_root / "l").iterdir()) == []


def test_a_foreground_run_of_an_image_leaves_no_writable_layer(tb: TB) -> None:
    tb("run", "--image", "busybox", "fg", "true")
    assert list((tb.data_root / "boxes").iterdir()) == []
    assert "layer" not in tb("gc").stdout
