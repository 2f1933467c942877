"""Image names, the data root, member-name checks and import hygiene: no root needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tuibox.runtime.errors import ImageError, InvalidName
from tuibox.runtime.images.store import ImageStore, check_image_name, default_data_root
from tuibox.runtime.images.tarimport import member_parts, sniff


@pytest.mark.parametrize("good", ["busybox", "a", "0", "alpine-3.20", "my_img.v2", "x" * 64])
def test_good_names(good: str) -> None:
    assert check_image_name(good) == good


@pytest.mark.parametrize(
    "bad", ["", "Alpine", "-x", ".x", "_x", "a/b", "..", "x" * 65, "sp ace", "é", "a\n", "a:b"]
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        check_image_name(bad)


def test_data_root_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUIBOX_DATA", raising=False)
    assert default_data_root() == "/var/lib/tuibox"
    assert ImageStore().images == "/var/lib/tuibox/images"
    monkeypatch.setenv("TUIBOX_DATA", "/srv/tb")
    assert ImageStore().images == "/srv/tb/images"
    assert ImageStore("/x").images == "/x/images"


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/b", ("a", "b")),
        ("./a//b/", ("a", "b")),
        ("./", ()),
        ("a/../b", ("b",)),
        ("a/./b/..", ("a",)),
    ],
)
def test_member_names_are_normalised(name: str, parts: tuple[str, ...]) -> None:
    assert member_parts(name) == parts


@pytest.mark.parametrize("name", ["/etc/passwd", "..", "../x", "a/../../x", "./../x", "a\0b"])
def test_member_names_that_escape_are_refused(name: str) -> None:
    with pytest.raises(ImageError, match="refusing archive member"):
        member_parts(name)


def test_member_depth_is_bounded() -> None:
    with pytest.raises(ImageError, match="deeper than"):
        member_parts("/".join(["d"] * 300))


def test_compression_is_told_by_magic_bytes() -> None:
    assert sniff(b"\x1f\x8b\x08\x00") == "gzip"
    assert sniff(b"\xfd7zXZ\x00\x00") == "xz"
    assert sniff(b"\x28\xb5\x2f\xfd\x00") == "zstd"
    assert sniff(b"BZh91AY") == "bzip2"
    assert sniff(b"etc/\x00\x00\x00") == "tar"


def test_store_import_is_light() -> None:
    """`run --image` imports the store: no tarfile, hashlib, subprocess, pathlib or json."""
    code = (
        "import sys; import tuibox.runtime.images.store as s; s.ImageStore('/nonexistent')\n"
        "heavy = {'tarfile', 'hashlib', 'subprocess', 'pathlib', 'json', 'shutil', 'threading',"
        " 'typing', 're', 'rich', 'textual'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
