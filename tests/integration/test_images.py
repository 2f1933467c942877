"""The image store and its importers on real files: each test has its own data root.

Archives are built here with tarfile so every member (owner, mode, mtime, link) is exact, and
hostile ones are built the way an attacker would: names and links tarfile's own `add` would
never produce.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tuibox.runtime.errors import ImageError, InvalidName
from tuibox.runtime.images.busybox import build_busybox_rootfs
from tuibox.runtime.images.store import ImageStore

pytestmark = pytest.mark.root

T0 = 1_600_000_000  # fixed mtimes, far from "now", so a reset one cannot pass by chance


# -- building archives ------------------------------------------------------------------------


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = T0,
    link: str = "",
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gz":
        return gzip.compress(data)
    if how == "xz":
        import lzma

        return lzma.compress(data)
    if how == "bz2":
        import bz2

        return bz2.compress(data)
    if how == "zst":
        return subprocess.run(
            ["zstd", "-q", "-c"], input=data, capture_output=True, check=True
        ).stdout
    return data


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tree(root: Path) -> set[str]:
    """Every path under root, as relative strings (lstat only)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "data")


def assert_store_clean(store: ImageStore) -> None:
    """No image and no temp dir: only the lock file may remain."""
    assert store.list() == []
    images = Path(store.images)
    left = sorted(p.name for p in images.iterdir()) if images.exists() else []
    assert left in ([], [".lock"]), left


# -- busybox ----------------------------------------------------------------------------------


def test_busybox_rootfs_layout_and_applets(tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    start = time.perf_counter()
    build_busybox_rootfs(dest)
    elapsed = time.perf_counter() - start
    # Inodes are the cost on this disk (~0.3 ms each): a hard-linked rootfs stays at a few
    # dozen, one symlink per applet would be ~300.
    inodes = {os.lstat(dest / p).st_ino for p in tree(dest)}
    assert len(inodes) < 40, len(inodes)
    assert elapsed < 0.5, f"building the busybox rootfs took {elapsed * 1000:.0f} ms"

    bb = dest / "bin" / "busybox"
    assert stat.S_ISREG(bb.lstat().st_mode) and stat.S_IMODE(bb.stat().st_mode) == 0o755
    assert bb.read_bytes() == Path("/bin/busybox").read_bytes()
    assert bb.stat().st_ino != os.stat("/bin/busybox").st_ino, "must be a copy, not the host's"
    listed = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True)
    applets = listed.stdout.split()
    assert "bin/sh" in applets and len(applets) > 100
    for applet in applets:
        assert os.path.samefile(dest / applet, bb), applet
    out = subprocess.run([dest / "bin/sh", "-c", "echo $((6 * 7))"], capture_output=True)
    assert out.stdout == b"42\n"

    modes = {p: stat.S_IMODE((dest / p).stat().st_mode) for p in ("root", "tmp")}
    assert modes == {"root": 0o700, "tmp": 0o1777}
    for d in ("proc", "sys", "dev", "etc", "var", "run", "home", "mnt"):
        assert (dest / d).is_dir(), d
    passwd = (dest / "etc/passwd").read_text().splitlines()
    assert passwd[0] == "root:x:0:0:root:/root:/bin/sh"
    assert any(ln.startswith("nobody:x:65534:65534:") for ln in passwd)
    groups = {ln.split(":")[0]: ln.split(":")[2] for ln in (dest / "etc/group").read_text().split()}
    assert groups == {"root": "0", "tty": "5", "nogroup": "65534"}
    for f in ("hosts", "resolv.conf", "hostname"):
        assert (dest / "etc" / f).is_file(), f


def test_busybox_rootfs_with_symlinks(tmp_path: Path) -> None:
    build_busybox_rootfs(tmp_path / "r", symlinks=True)
    assert os.readlink(tmp_path / "r/bin/sh") == "/bin/busybox"
    assert os.readlink(tmp_path / "r/usr/bin/awk") == "/bin/busybox"


def test_busybox_missing_or_dynamic_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as e:
        build_busybox_rootfs(tmp_path / "r", busybox=tmp_path / "nope")
    assert str(e.value) == (
        f"busybox not found at {tmp_path}/nope: install the busybox-static package"
    )
    with pytest.raises(ImageError, match="dynamically linked"):
        build_busybox_rootfs(tmp_path / "r2", busybox="/bin/ls")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r2").exists()


def test_ensure_busybox_is_idempotent(store: ImageStore) -> None:
    first = store.ensure_busybox()
    ino = os.stat(store.rootfs("busybox")).st_ino
    again = store.ensure_busybox()
    assert again == first
    assert os.stat(store.rootfs("busybox")).st_ino == ino
    assert first.name == "busybox" and first.cmd == ["/bin/sh"]
    assert first.size >= os.stat("/bin/busybox").st_size
    assert [i.name for i in store.list()] == ["busybox"]
    data = json.loads((Path(store.images) / "busybox" / "image.json").read_text())
    fields = "name created source size env cmd entrypoint workdir user"
    assert set(data) == set(fields.split())


def test_ensure_busybox_races_build_once(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from tuibox.runtime.images.store import ImageStore\n"
        "s = ImageStore(sys.argv[1]); s.ensure_busybox()\n"
        "print(os.stat(s.rootfs('busybox')).st_ino)\n"
    )
    data = tmp_path / "data"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert len(set(outs)) == 1, outs  # every process sees the one image that was built
    assert sorted(p.name for p in (data / "images").iterdir()) == [".lock", "busybox"]


# -- tarballs ---------------------------------------------------------------------------------


BIG = os.urandom(3 << 20)


def sample_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    d = tarfile.DIRTYPE
    return [
        entry("./", d, mode=0o755, mtime=T0 + 1),
        entry("bin/", d, mode=0o755, mtime=T0 + 2),
        entry("bin/tool", data=b"#!/bin/sh\necho tool\n", mode=0o4755, uid=1000, gid=1000),
        entry("bin/big", data=BIG, mode=0o600, mtime=T0 + 3),
        entry("etc/", d, mode=0o750, uid=1000, gid=1000, mtime=T0 + 4),
        entry("etc/conf", data=b"key=value\n", mode=0o640, uid=1000, gid=1000, mtime=T0 + 5),
        entry("etc/rel", tarfile.SYMTYPE, link="conf", uid=1000, gid=1000, mtime=T0 + 6),
        entry("etc/abs", tarfile.SYMTYPE, link="/etc/passwd", mtime=T0 + 7),
        entry("etc/hard", tarfile.LNKTYPE, link="etc/conf"),
        entry("srv/", d, mode=0o2775, uid=1000, gid=1000, mtime=T0 + 8),
        entry("srv/empty", mode=0o600, mtime=T0 + 9),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666),
        entry("dev/fifo", tarfile.FIFOTYPE),
    ]


def assert_reproduced(rootfs: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    for info, data in members:
        path = rootfs / info.name
        if info.ischr() or info.isfifo():
            assert not path.exists() and not path.is_symlink(), info.name
            continue
        st = path.lstat()
        if info.islnk():
            assert st.st_ino == (rootfs / info.linkname).lstat().st_ino, info.name
            assert st.st_nlink == 2
            continue
        assert (st.st_uid, st.st_gid) == (info.uid, info.gid), info.name
        assert st.st_mtime == info.mtime, info.name
        if info.issym():
            assert stat.S_ISLNK(st.st_mode) and os.readlink(path) == info.linkname, info.name
            continue
        assert stat.S_IMODE(st.st_mode) == info.mode, (info.name, oct(st.st_mode))
        if info.isdir():
            assert stat.S_ISDIR(st.st_mode), info.name
        else:
            assert stat.S_ISREG(st.st_mode) and path.read_bytes() == data, info.name


def test_tarball_reproduces_exactly(store: ImageStore, tmp_path: Path) -> None:
    members = sample_members()
    archive = write(tmp_path / "rootfs.tar", tar_bytes(members))
    seen: list[tuple[int, int]] = []
    warnings: list[str] = []
    info = store.import_tar(
        archive, "sample", progress=lambda d, t: seen.append((d, t)), warn=warnings.append
    )
    rootfs = Path(store.rootfs("sample"))
    assert_reproduced(rootfs, members)
    expected = "bin bin/tool bin/big etc etc/conf etc/rel etc/abs etc/hard srv srv/empty"
    assert tree(rootfs) == set(expected.split())
    assert len(warnings) == 2 and all("skipped" in w for w in warnings), warnings
    size = archive.stat().st_size
    assert seen[-1] == (size, size)
    assert all(t == size for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) > 2, "a 3 MB member should report progress on its way"
    assert info.size == len(BIG) + 20 + 10
    assert info.source == str(archive) and info.cmd == [] and info.env == []
    assert store.get("sample") == info


@pytest.mark.parametrize("how", ["gz", "xz", "bz2", "zst"])
def test_compressed_tarballs(store: ImageStore, tmp_path: Path, how: str) -> None:
    if how == "zst" and shutil.which("zstd") is None:
        pytest.skip("zstd command not installed")
    members = sample_members()
    # The suffix lies: the format must be told by its magic bytes.
    archive = write(tmp_path / "rootfs.tar", compress(tar_bytes(members), how))
    seen: list[tuple[int, int]] = []
    store.import_tar(archive, f"img-{how}", progress=lambda d, t: seen.append((d, t)))
    assert_reproduced(Path(store.rootfs(f"img-{how}")), members)
    size = archive.stat().st_size
    assert seen[-1] == (size, size)


def test_corrupt_archives_are_refused(store: ImageStore, tmp_path: Path) -> None:
    good = compress(tar_bytes(sample_members()), "gz")
    cases = {
        "not-a-tar": b"hello, this is not an archive" * 100,
        "truncated.tar.gz": good[: len(good) // 2],
        "empty.tar": b"",
    }
    for name, data in cases.items():
        with pytest.raises(ImageError, match=name.replace(".", r"\.")):
            store.import_tar(write(tmp_path / name, data), "bad")
        assert_store_clean(store)
    with pytest.raises(ImageError, match="cannot read"):
        store.import_tar(tmp_path / "missing.tar", "bad")


def hostile_cases(outside: Path) -> dict[str, tuple[list[tuple[tarfile.TarInfo, bytes]], str]]:
    d, sym, lnk = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    return {
        "dotdot": ([entry("ok", data=b"x"), entry("../../../../escape", data=b"x")], "escape"),
        "dotdot-inside": ([entry("a/", d), entry("a/../../escape", data=b"x")], "escape"),
        "absolute": ([entry("/abs-escape", data=b"x")], "/abs-escape"),
        "hardlink-up": (
            [entry("ok", data=b"x"), entry("evil", lnk, link="../../../../victim")],
            "evil",
        ),
        "hardlink-abs": ([entry("evil", lnk, link=str(outside / "victim"))], "evil"),
        "symlink-then-write": (
            [entry("evil", sym, link=str(outside)), entry("evil/file", data=b"pwned")],
            "evil/file",
        ),
        "relative-symlink-then-write": (
            [entry("evil", sym, link="../../../../outside"), entry("evil/file", data=b"x")],
            "evil/file",
        ),
        "symlink-then-mkdir": (
            [entry("evil", sym, link=str(outside)), entry("evil/sub/", d)],
            "evil/sub",
        ),
        "deep-symlink-then-write": (
            [entry("a/", d), entry("a/b", sym, link="/"), entry("a/b/outside/file", data=b"x")],
            "a/b/outside/file",
        ),
        "hardlink-through-symlink": (
            [entry("evil", sym, link=str(outside)), entry("h", lnk, link="evil/victim")],
            "h",
        ),
    }


@pytest.mark.parametrize("case", list(hostile_cases(Path("/x"))))
def test_hostile_tarballs_are_refused(store: ImageStore, tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = write(outside / "victim", b"secret")
    members, named = hostile_cases(outside)[case]
    archive = write(tmp_path / "evil.tar", tar_bytes(members))
    with tarfile.open(archive) as tar:
        built = [m.name.rstrip("/") for m, _ in members]
        assert tar.getnames() == built, "the archive is built as meant"
    before = tree(tmp_path)
    with pytest.raises(ImageError) as e:
        store.import_tar(archive, "evil")
    assert repr(named)[1:-1] in str(e.value), str(e.value)
    assert str(archive) in str(e.value)
    assert_store_clean(store)
    after = tree(tmp_path) - {"data", "data/images", "data/images/.lock"}
    assert after == before, after ^ before
    assert victim.read_bytes() == b"secret" and victim.stat().st_nlink == 1
    assert not Path("/abs-escape").exists()


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("how", ["tar", "gz", "zst"])
def test_interrupted_import_leaves_nothing(
    store: ImageStore, tmp_path: Path, stop: type[BaseException], how: str
) -> None:
    if how == "zst" and shutil.which("zstd") is None:
        pytest.skip("zstd command not installed")
    archive = write(tmp_path / "rootfs.tar", compress(tar_bytes(sample_members()), how))
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:  # mid-way: some members are already on disk
            raise stop("stop")

    with pytest.raises(stop):
        store.import_tar(archive, "half", progress=progress)
    assert len(calls) == 2
    assert_store_clean(store)
    with pytest.raises(ImageError, match="image 'half' does not exist"):
        store.get("half")
    assert _children_named(b"zstd") == []  # no zstd left behind


def _children_named(comm: bytes) -> list[int]:
    # Not waitpid(-1): session fixtures (the engines' daemons) are this process's children too.
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        if ppid == os.getpid() and name == comm:
            out.append(int(pid))
    return out


def test_existing_name_is_refused_before_any_work(store: ImageStore, tmp_path: Path) -> None:
    store.ensure_busybox()
    archive = write(tmp_path / "r.tar", tar_bytes(sample_members()))
    called = []
    with pytest.raises(ImageError, match="image 'busybox' already exists"):
        store.import_tar(archive, "busybox", progress=lambda d, t: called.append(d))
    assert called == []
    assert sorted(p.name for p in Path(store.images).iterdir()) == [".lock", "busybox"]


def test_names_are_checked_before_touching_disk(store: ImageStore, tmp_path: Path) -> None:
    archive = write(tmp_path / "r.tar", tar_bytes(sample_members()))
    for bad in ("Upper", "../x", ".tmp-x", "a/b", "", "x" * 65, "-x"):
        with pytest.raises(InvalidName):
            store.import_tar(archive, bad)
        with pytest.raises(InvalidName):
            store.get(bad)
        with pytest.raises(InvalidName):
            store.remove(bad)
    assert not Path(store.data_root).exists()


def test_stale_temp_dirs_are_swept_but_live_ones_kept(store: ImageStore, tmp_path: Path) -> None:
    import fcntl

    images = Path(store.images)
    images.mkdir(parents=True)
    (images / ".tmp-dead" / "rootfs").mkdir(parents=True)
    (images / ".tmp-live").mkdir()
    fd = os.open(images / ".tmp-live", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        store.import_tar(write(tmp_path / "r.tar", tar_bytes(sample_members())), "one")
        assert sorted(p.name for p in images.iterdir()) == [".lock", ".tmp-live", "one"]
    finally:
        os.close(fd)


# -- directories ------------------------------------------------------------------------------


def test_import_dir_copies_a_rootfs(store: ImageStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    build_busybox_rootfs(src)
    tool = write(src / "bin" / "suid", b"x")
    os.chown(tool, 1000, 1000)
    os.chmod(tool, 0o4755)
    os.symlink("/etc/passwd", src / "etc" / "abs")
    os.mkfifo(src / "fifo")
    os.utime(src / "etc", (T0, T0))
    warnings: list[str] = []
    info = store.import_dir(src, "copy", warn=warnings.append)
    dst = Path(store.rootfs("copy"))
    assert tree(dst) == tree(src) - {"fifo"}
    assert len(warnings) == 1 and "fifo" in warnings[0]
    for rel in tree(dst):
        a, b = (src / rel).lstat(), (dst / rel).lstat()
        same = ("st_mode", "st_uid", "st_gid", "st_nlink")
        assert [getattr(a, f) for f in same] == [getattr(b, f) for f in same], rel
        if not stat.S_ISLNK(a.st_mode):
            assert a.st_mtime_ns == b.st_mtime_ns, rel
    assert os.path.samefile(dst / "bin/sh", dst / "bin/busybox")
    assert os.readlink(dst / "etc/abs") == "/etc/passwd"
    etc = sum((src / "etc" / f).stat().st_size for f in ("passwd", "group", "hosts"))
    etc += sum((src / "etc" / f).stat().st_size for f in ("resolv.conf", "hostname"))
    assert info.size == os.stat("/bin/busybox").st_size + etc + 1


# -- OCI layouts and docker archives ----------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


LAYER1 = [
    entry("etc/", tarfile.DIRTYPE, mode=0o755),
    entry("etc/a", data=b"A"),
    entry("etc/b", data=b"B"),
    entry("dir/", tarfile.DIRTYPE, mode=0o755),
    entry("dir/old1", data=b"old"),
    entry("dir/sub/", tarfile.DIRTYPE, mode=0o755),
    entry("dir/sub/old2", data=b"old"),
    entry("gone/", tarfile.DIRTYPE, mode=0o755),
    entry("gone/f", data=b"f"),
    entry("keep/", tarfile.DIRTYPE, mode=0o700, uid=1000),
    entry("keep/file", data=b"kept", mode=0o4711),
]
LAYER2 = [
    entry("etc/", tarfile.DIRTYPE, mode=0o755),
    entry("etc/.wh.b"),
    entry("dir/", tarfile.DIRTYPE, mode=0o751),
    entry("dir/.wh..wh..opq"),
    entry("dir/new", data=b"new"),
    entry(".wh.gone"),
    entry("etc/a2", tarfile.LNKTYPE, link="etc/a"),  # a hard link into the layer below
]
CONFIG: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "GREETING=hi"],
        "Cmd": ["echo", "hi"],
        "Entrypoint": ["/bin/sh", "-c"],
        "WorkingDir": "/srv",
        "User": "1000:1000",
    },
}


def layers() -> tuple[bytes, bytes, dict[str, Any]]:
    l1, l2 = tar_bytes(LAYER1), tar_bytes(LAYER2)
    diff_ids = [f"sha256:{sha(l1)}", f"sha256:{sha(l2)}"]
    config = dict(CONFIG, rootfs={"type": "layers", "diff_ids": diff_ids})
    return l1, l2, config


def assert_flattened(store: ImageStore, name: str) -> None:
    rootfs = Path(store.rootfs(name))
    assert sorted(tree(rootfs)) == sorted(
        ["etc", "etc/a", "etc/a2", "dir", "dir/new", "keep", "keep/file"]
    )
    assert (rootfs / "etc/a").read_bytes() == b"A"
    assert os.path.samefile(rootfs / "etc/a", rootfs / "etc/a2")
    assert stat.S_IMODE((rootfs / "dir").stat().st_mode) == 0o751
    assert stat.S_IMODE((rootfs / "keep/file").stat().st_mode) == 0o4711
    assert (rootfs / "keep").stat().st_uid == 1000
    info = store.get(name)
    assert info.cmd == ["echo", "hi"]
    assert info.entrypoint == ["/bin/sh", "-c"]
    assert info.env == ["PATH=/usr/bin:/bin", "GREETING=hi"]
    assert (info.workdir, info.user) == ("/srv", "1000:1000")


def make_oci_layout(root: Path) -> dict[str, bytes]:
    l1, l2, config = layers()
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media: str) -> dict[str, Any]:
        digest = sha(data)
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        write(root / "blobs" / "sha256" / digest, data)
        blobs[media] = data
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [
            blob(gzip.compress(l1), "application/vnd.oci.image.layer.v1.tar+gzip"),
            blob(l2, "application/vnd.oci.image.layer.v1.tar"),
        ],
    }
    desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["platform"] = {"os": "linux", "architecture": "amd64"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    write(root / "index.json", json.dumps(dict(index, manifests=[desc])).encode())
    write(root / "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return blobs


def test_oci_layout_with_whiteouts(store: ImageStore, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_oci_layout(layout)
    seen: list[tuple[int, int]] = []
    store.import_dir(layout, "oci", progress=lambda d, t: seen.append((d, t)))
    assert_flattened(store, "oci")
    assert seen[-1][0] == seen[-1][1] > 0


def test_oci_layout_tar_is_an_image_archive(store: ImageStore, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_oci_layout(layout)
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        for child in sorted(layout.iterdir()):
            tar.add(child, arcname=child.name)
    store.import_tar(archive, "oci-tar")
    assert_flattened(store, "oci-tar")


def test_oci_blob_that_does_not_match_its_digest(store: ImageStore, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blobs = make_oci_layout(layout)
    layer = layout / "blobs" / "sha256" / sha(blobs["application/vnd.oci.image.layer.v1.tar"])
    data = bytearray(layer.read_bytes())
    data[data.index(b"new")] = ord("N")  # same size, other content
    layer.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="does not match its digest sha256:"):
        store.import_dir(layout, "tampered")
    assert_store_clean(store)


def make_docker_archive(stage: Path) -> None:
    l1, l2, config = layers()
    raw_config = json.dumps(config).encode()
    stage.mkdir()
    write(stage / f"{sha(raw_config)}.json", raw_config)
    for n, layer in enumerate((l1, l2)):
        (stage / f"layer{n}").mkdir(parents=True)
        write(stage / f"layer{n}" / "layer.tar", layer)
    manifest = [
        {
            "Config": f"{sha(raw_config)}.json",
            "RepoTags": ["test:latest"],
            "Layers": ["layer0/layer.tar", "layer1/layer.tar"],
        }
    ]
    write(stage / "manifest.json", json.dumps(manifest).encode())


def pack(stage: Path, archive: Path, how: str = "tar") -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for child in sorted(stage.iterdir()):
            tar.add(child, arcname=child.name)
    return write(archive, compress(buf.getvalue(), how))


@pytest.mark.parametrize("how", ["tar", "gz"])
def test_docker_save_archive(store: ImageStore, tmp_path: Path, how: str) -> None:
    make_docker_archive(tmp_path / "stage")
    archive = pack(tmp_path / "stage", tmp_path / "saved.tar", how)
    seen: list[tuple[int, int]] = []
    store.import_tar(archive, "saved", progress=lambda d, t: seen.append((d, t)))
    assert_flattened(store, "saved")
    assert seen[-1][0] == seen[-1][1] > 0
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(p.name for p in Path(store.images, "saved").iterdir()) == ["image.json", "rootfs"]


def test_docker_save_layer_must_match_diff_id(store: ImageStore, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    make_docker_archive(stage)
    layer = stage / "layer1" / "layer.tar"
    data = bytearray(layer.read_bytes())
    data[data.index(b"new")] = ord("N")
    layer.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"layer layer1/layer\.tar does not match its digest"):
        store.import_tar(pack(stage, tmp_path / "saved.tar"), "saved")
    assert_store_clean(store)


def test_hostile_layer_is_refused(store: ImageStore, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    make_docker_archive(stage)
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = tar_bytes([entry("x", tarfile.SYMTYPE, link=str(outside)), entry("x/f", data=b"x")])
    write(stage / "layer1" / "layer.tar", evil)
    config_name = next(p for p in stage.iterdir() if p.suffix == ".json" and p.stem != "manifest")
    config = json.loads(config_name.read_bytes())
    config["rootfs"]["diff_ids"][1] = f"sha256:{sha(evil)}"
    raw = json.dumps(config).encode()
    config_name.unlink()
    write(stage / f"{sha(raw)}.json", raw)
    manifest = json.loads((stage / "manifest.json").read_bytes())
    manifest[0]["Config"] = f"{sha(raw)}.json"
    write(stage / "manifest.json", json.dumps(manifest).encode())
    with pytest.raises(ImageError, match="x/f"):
        store.import_tar(pack(stage, tmp_path / "saved.tar"), "saved")
    assert list(outside.iterdir()) == []
    assert_store_clean(store)


# -- removal ----------------------------------------------------------------------------------


def test_remove_respects_in_use_unless_forced(store: ImageStore) -> None:
    store.ensure_busybox()
    asked: list[str] = []

    def in_use(name: str) -> bool:
        asked.append(name)
        return True

    with pytest.raises(ImageError, match="image 'busybox' is in use"):
        store.remove("busybox", in_use)
    assert asked == ["busybox"] and store.exists("busybox")
    store.remove("busybox", in_use, force=True)
    assert_store_clean(store)
    with pytest.raises(ImageError, match="image 'busybox' does not exist"):
        store.remove("busybox")
    store.ensure_busybox()
    store.remove("busybox", lambda n: False)
    assert_store_clean(store)


def test_get_and_rootfs_of_a_missing_image(store: ImageStore) -> None:
    for call in (store.get, store.rootfs):
        with pytest.raises(ImageError) as e:
            call("nope")
        assert str(e.value) == "image 'nope' does not exist"
