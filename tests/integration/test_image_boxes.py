"""Boxes made from images, through the CLI as a user runs it: `run --image`, `image ...`.

Every test has its own --root and --data-root under tmp_path (the `tb` fixture), so the data
root starts empty and the default image is built by the test itself. Box names are unique:
cgroups are named after the box, and other state roots on this host may use short names.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TB, mountinfo, unique
from tuibox.runtime.images.busybox import build_busybox_rootfs

pytestmark = pytest.mark.root


def images(tb: TB) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(tb("image", "ls", "--format", "json").stdout)
    return out


def store_entries(tb: TB) -> list[str]:
    """What the image store holds: image dirs and temp dirs (the lock file aside)."""
    d = tb.data_root / "images"
    return sorted(p.name for p in d.iterdir() if p.name != ".lock") if d.is_dir() else []


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """path -> (mode, uid, size, sha256 or link target) for every entry under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = ""
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_size, what)
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- the default image ------------------------------------------------------------------------


def test_fresh_data_root_builds_busybox_and_runs(tb: TB) -> None:
    assert not tb.data_root.exists()
    name = unique("t1")
    proc = tb("run", "--image", "busybox", name, "sh", "-c", "echo ok")
    assert proc.stdout == "ok\n", proc.stderr
    assert [i["name"] for i in images(tb)] == ["busybox"]
    assert set(images(tb)[0]) == {
        "name",
        "size",
        "created",
        "source",
        "layers",
        "shared_size",
        "unique_size",
    }
    assert (tb.data_root / "images/busybox/rootfs/bin/busybox").is_file()
    assert tb.names() == []  # a foreground run removes its box, upper layer included


def test_image_defaults_and_command_words(tb: TB) -> None:
    name = unique("def")
    out = tb("run", "--image", "busybox", name, "sh", "-c", "pwd; id -u; echo $HOME; echo $PATH")
    assert out.stdout.split() == ["/", "0", "/root", "/usr/sbin:/usr/bin:/sbin:/bin"]
    # No words: the image's Cmd (/bin/sh), which reads its script from stdin.
    proc = tb("run", "--image", "busybox", unique("cmd"), input="echo from-stdin\n")
    assert proc.stdout == "from-stdin\n"
    # Flags still apply over the image's defaults.
    flags = ["-w", "/tmp", "-e", "X=1"]
    out = tb("run", "--image", "busybox", *flags, unique("fl"), "sh", "-c", "pwd; echo $X")
    assert out.stdout.split() == ["/tmp", "1"]


def test_run_image_start_up_stays_lean(tb: TB) -> None:
    """`run --image` imports no json, pathlib, re, rich or importers (ARCHITECTURE.md)."""
    tb("run", "--image", "busybox", unique("warm"), "true")  # build the image first
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tuibox.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = ('json', 'pathlib', 're', 'rich', 'textual', 'pyroute2', 'tarfile',\n"
        "         'subprocess', 'shutil', 'dataclasses', 'typing', 'contextlib')\n"
        "print('RC', rc, 'LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    argv = [sys.executable, "-IS", "-c", code, *tb.argv("run", "--image", "busybox")[3:]]
    proc = subprocess.run([*argv, unique("lean"), "true"], capture_output=True, text=True)
    assert "RC 0 LOADED []" in proc.stdout, proc.stdout + proc.stderr


# -- copy-on-write ----------------------------------------------------------------------------


def test_two_boxes_from_one_image_do_not_see_each_other(tb: TB) -> None:
    tb("run", "--image", "busybox", unique("warm"), "true")
    image_root = tb.data_root / "images/busybox/rootfs"
    before = snapshot(image_root)
    a, b = unique("a"), unique("b")
    # A keeps running, with its writes in its upper layer.
    script = "echo A > /a; echo changed >> /etc/passwd; rm /etc/group; exec sleep 1000"
    tb("run", "-d", "--image", "busybox", a, "sh", "-c", script)
    upper_a = tb.layer(a) / "upper"
    wait_for(lambda: (upper_a / "a").exists() and (upper_a / "etc/group").exists())
    # B, meanwhile: sees the image as it is, writes its own file, is kept after it exits.
    out = tb(
        "run",
        "--keep",
        "--image",
        "busybox",
        b,
        "sh",
        "-c",
        "echo B > /b; ls /a 2>&1; grep -c changed /etc/passwd; cat /etc/group | head -1",
    ).stdout
    assert "No such file" in out and "\n0\n" in out and "root:x:0:" in out, out
    assert not (upper_a / "b").exists()
    assert (tb.layer(b) / "upper/b").read_text() == "B\n"
    assert not (tb.layer(b) / "upper/a").exists()
    # A's changes are its own: the file, the appended line, the deletion as a whiteout.
    assert (upper_a / "a").read_text() == "A\n"
    assert (upper_a / "etc/passwd").read_text().endswith("changed\n")
    st = os.lstat(upper_a / "etc/group")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    # ...and the image is untouched, byte for byte.
    assert snapshot(image_root) == before
    # Both boxes name their image; the box's root is an overlay over it.
    listed = {r["id"]: r for r in json.loads(tb("list", "--format", "json").stdout)}
    assert listed[a]["image"] == listed[b]["image"] == "busybox"
    pid = tb.state(a)["pid"]
    with open(f"/proc/{pid}/mountinfo") as f:
        root_line = next(ln for ln in f if ln.split()[4] == "/")
    assert " overlay " in root_line and f"lowerdir={image_root}" in root_line


def test_destroy_removes_upper_and_leaves_no_mounts(tb: TB) -> None:
    tb("run", "--image", "busybox", unique("warm"), "true")
    before = mountinfo()
    name = unique("cow")
    tb("run", "-d", "--image", "busybox", name, "sh", "-c", "echo x > /x; exec sleep 1000")
    box_dir = tb.root / name
    layer = tb.layer(name)
    wait_for(lambda: (layer / "upper/x").exists())
    # The overlay lives in the box's mount namespace only.
    during = mountinfo()
    assert str(box_dir) not in during
    assert [ln for ln in during.splitlines() if ln not in before] == []
    tb("destroy", "--force", name)
    assert not box_dir.exists() and not layer.exists()
    assert tb.names() == []
    assert mountinfo() == before
    assert (tb.data_root / "images/busybox/rootfs/bin/busybox").is_file()


# -- OCI images -------------------------------------------------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], base: Path | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if base is not None:
            for child in sorted(base.iterdir()):
                tar.add(child, arcname=child.name)
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
    return info, data


PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n"


def make_oci_layout(root: Path, tmp: Path, config: dict[str, Any]) -> None:
    """Two layers: a busybox rootfs with two extra files; then a whiteout of one of them, a
    new version of the other, and a user of its own."""
    base = tmp / f"{root.name}-layer1"
    build_busybox_rootfs(base, symlinks=True)
    l1 = _tar([_file("etc/motd", b"one\n"), _file("etc/gone", b"x\n")], base)
    l2 = _tar(
        [
            _file("etc/.wh.gone", b""),
            _file("etc/motd", b"two\n"),
            _file("etc/passwd", PASSWD),
            _file("etc/group", GROUP),
        ]
    )
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in (l1, l2)]
    full = dict(config, rootfs={"type": "layers", "diff_ids": diff_ids})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(full).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [
            blob(l1, "application/vnd.oci.image.layer.v1.tar"),
            blob(l2, "application/vnd.oci.image.layer.v1.tar"),
        ],
    }
    desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    index = {"schemaVersion": 2, "manifests": [desc]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


OCI_CONFIG: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "GREETING=hi"],
        "Cmd": [
            "sh",
            "-c",
            "cat /etc/motd; ls /etc/gone 2>/dev/null || echo gone; "
            "echo $GREETING $HOME; pwd; id -u; id -g; id -G",
        ],
        "WorkingDir": "/srv",
        "User": "app",
    },
}


def test_oci_layout_imports_and_its_config_drives_run(tb: TB, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_oci_layout(layout, tmp_path, OCI_CONFIG)
    proc = tb("image", "import", str(layout), "oci")
    assert proc.stdout == "oci\n"
    assert proc.stderr.startswith("imported oci: "), proc.stderr  # no tty: one plain line
    rootfs = tb.data_root / "images/oci/rootfs"
    assert (rootfs / "etc/motd").read_text() == "two\n"
    assert not (rootfs / "etc/gone").exists() and not (rootfs / "etc/.wh.gone").exists()
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    inspect = json.loads(tb("image", "inspect", "oci").stdout)
    assert inspect["cmd"] == OCI_CONFIG["config"]["Cmd"] and inspect["user"] == "app"
    assert inspect["boxes"] == []
    # The image's Cmd, Env, WorkingDir and User (a name, resolved in the image's passwd).
    out = tb("run", "--image", "oci", unique("oci")).stdout.splitlines()
    assert out == ["two", "gone", "hi /home/app", "/srv", "1000", "1000", "1000 50"], out
    # Words after the name replace Cmd.
    assert tb("run", "--image", "oci", unique("oci"), "echo", "words").stdout == "words\n"


def test_entrypoint_keeps_command_words_as_arguments(tb: TB, tmp_path: Path) -> None:
    config = json.loads(json.dumps(OCI_CONFIG))
    config["config"].update(
        Entrypoint=["/bin/echo", "entry"], Cmd=["default"], User="1000:staff", WorkingDir=""
    )
    make_oci_layout(tmp_path / "layout", tmp_path, config)
    tb("image", "import", str(tmp_path / "layout"), "ep")
    assert tb("run", "--image", "ep", unique("ep")).stdout == "entry default\n"
    assert tb("run", "--image", "ep", unique("ep"), "given", "words").stdout == (
        "entry given words\n"
    )
    config["config"].update(Entrypoint=[], Cmd=["sh", "-c", "id -u; id -g"])
    make_oci_layout(tmp_path / "layout2", tmp_path, config)
    tb("image", "import", str(tmp_path / "layout2"), "grp")
    assert tb("run", "--image", "grp", unique("grp")).stdout.split() == ["1000", "50"]


def test_tarball_import_of_an_exported_rootfs(tb: TB, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    build_busybox_rootfs(tree)
    (tree / "etc/motd").write_text("exported\n")
    archive = tmp_path / "export.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for child in sorted(tree.iterdir()):
            tar.add(child, arcname=child.name)
    tb("image", "import", str(archive), "exported")
    assert [i["source"] for i in images(tb)] == [str(archive)]
    # No image config: the default command and environment.
    assert tb("run", "--image", "exported", unique("ex"), "cat", "/etc/motd").stdout == (
        "exported\n"
    )


# -- removal ----------------------------------------------------------------------------------


def test_image_rm_refused_while_used_unless_forced(tb: TB, busybox_rootfs: Path) -> None:
    tb("image", "import", str(busybox_rootfs), "mine")
    running, kept = unique("run"), unique("kept")
    tb("run", "-d", "--image", "mine", running, "sleep", "1000")
    line = tb.fails("image", "rm", "mine")
    assert f"image 'mine' is in use by {running}" in line
    assert "mine" in store_entries(tb)
    tb("destroy", "--force", running)
    # A stopped box that was kept still uses it (its upper layer sits over the image).
    tb("run", "--keep", "--image", "mine", kept, "true")
    assert json.loads(tb("image", "inspect", "mine").stdout)["boxes"] == [kept]
    assert f"in use by {kept}" in tb.fails("image", "rm", "mine")
    tb("destroy", kept)
    assert tb("image", "rm", "mine").stdout == "mine\n"
    assert store_entries(tb) == []
    # --force removes it from under a box, and says so.
    tb("image", "import", str(busybox_rootfs), "mine")
    tb("run", "-d", "--image", "mine", running, "sleep", "1000")
    proc = tb("image", "rm", "--force", "mine")
    assert f"removed while boxes use it: {running}" in proc.stderr
    assert store_entries(tb) == []
    tb("destroy", "--force", running)
    assert tb.names() == []


def test_same_image_name_in_another_data_root_does_not_block(tb: TB, busybox_rootfs: Path) -> None:
    other = TB(tb.root, tb.data_root.parent / "other-data")
    other("image", "import", str(busybox_rootfs), "img")
    tb("image", "import", str(busybox_rootfs), "img")
    name = unique("o")
    other("run", "-d", "--image", "img", name, "sleep", "1000")
    assert "in use" in other.fails("image", "rm", "img")
    tb("image", "rm", "img")  # same name, same state root, other data root
    other("destroy", "-f", name)


# -- bad input --------------------------------------------------------------------------------


def _evil_tarball(path: Path) -> Path:
    info = tarfile.TarInfo("../escape")
    info.size = 2
    with tarfile.open(path, "w") as tar:
        tar.addfile(info, io.BytesIO(b"x\n"))
    return path


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("unknown image", "image 'nope' does not exist"),
        ("bad image name", "invalid image name"),
        ("bad import name", "invalid image name"),
        ("missing file", "no such file or directory"),
        ("crafted tarball", "../escape"),
        ("rootfs and image", "either --rootfs or --image"),
        ("existing name", "already exists"),
        ("not an archive", "tarfile.tar"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    tb: TB, tmp_path: Path, case: str, expect: str
) -> None:
    before = mountinfo()
    box = unique("bad")
    if case == "unknown image":
        line = tb.fails("run", "--image", "nope", box, "true")
    elif case == "bad image name":
        line = tb.fails("run", "--image", "../busybox", box, "true")
    elif case == "bad import name":
        line = tb.fails("image", "import", str(tmp_path), "Bad/Name")
    elif case == "missing file":
        line = tb.fails("image", "import", str(tmp_path / "missing.tar"), "x")
    elif case == "crafted tarball":
        line = tb.fails("image", "import", str(_evil_tarball(tmp_path / "evil.tar")), "evil")
        assert not (tb.data_root / "images/escape").exists()
        assert not (tb.data_root / "escape").exists()
    elif case == "rootfs and image":
        line = tb.fails("run", "--image", "busybox", "--rootfs", str(tmp_path), box, "true")
    elif case == "existing name":
        empty = tmp_path / "empty"
        empty.mkdir()
        tb("image", "import", str(empty), "dup")
        line = tb.fails("image", "import", str(empty), "dup")
        tb("image", "rm", "dup")
    else:
        (tmp_path / "tarfile.tar").write_bytes(b"this is not a tarball at all" * 100)
        line = tb.fails("image", "import", str(tmp_path / "tarfile.tar"), "junk")
    assert expect in line, line
    assert store_entries(tb) == []
    assert tb.names() == []
    assert mountinfo() == before


# -- bootstrap (a fake debootstrap: the real one needs a mirror) ------------------------------

FAKE_DEBOOTSTRAP = """#!/bin/sh
# --variant=V SUITE TARGET [MIRROR]: as debootstrap does, mount /proc in the target
set -e
target="$3"
mkdir -p "$target/proc" "$target/etc" "$target/bin"
mount -t proc proc "$target/proc"
echo "$2 $4" > "$target/etc/suite"
[ "$2" != broken ] || exit 3
"""


def _bootstrap(
    tb: TB, tmp_path: Path, *args: str, fake: bool = True
) -> subprocess.CompletedProcess[str]:
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    if fake:
        (bindir / "debootstrap").write_text(FAKE_DEBOOTSTRAP)
        (bindir / "debootstrap").chmod(0o755)
    path = f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(
        tb.argv("image", "bootstrap", *args),
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=path),
        timeout=60,
    )


def test_bootstrap_through_debootstrap_keeps_its_mounts_private(tb: TB, tmp_path: Path) -> None:
    before = mountinfo()
    proc = _bootstrap(tb, tmp_path, "debian", "deb", "--suite", "trixie", "--mirror", "http://m")
    assert proc.returncode == 0 and proc.stdout == "deb\n", proc.stderr
    assert (tb.data_root / "images/deb/rootfs/etc/suite").read_text() == "trixie http://m\n"
    info = json.loads(tb("image", "inspect", "deb").stdout)
    assert info["source"] == "debootstrap:trixie" and info["cmd"] == ["/bin/bash"]
    proc = _bootstrap(tb, tmp_path, "debian", "bad", "--suite", "broken")
    assert proc.returncode != 0
    assert "tuibox: error: debootstrap broken failed with exit status 3" in proc.stderr
    assert store_entries(tb) == ["deb"]
    assert mountinfo() == before  # its /proc mounts died with its mount namespace
    tb("image", "rm", "deb")


def test_bootstrap_without_debootstrap_says_so(tb: TB, tmp_path: Path) -> None:
    proc = _bootstrap(tb, tmp_path, "debian", "deb", fake=False)
    if proc.returncode == 0:  # pragma: no cover - the host has a real debootstrap
        pytest.skip("debootstrap is installed here")
    assert proc.stderr.strip().splitlines() == [
        "tuibox: error: debootstrap is not installed: apt-get install debootstrap, or import "
        "a root filesystem tarball with 'tuibox image import'"
    ]
    assert "unknown distribution" in _bootstrap(tb, tmp_path, "arch", "a").stderr
    assert store_entries(tb) == []
