"""An image config turned into a box's process: pure logic on tmp_path, no root needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuibox.cli.images import human_size
from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.boxspec import merge_env, process_args, resolve_user
from tuibox.runtime.images.store import ImageInfo


def info(**fields: object) -> ImageInfo:
    return ImageInfo("img", "", "", 0, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "words", "expected"),
    [
        ([], [], [], ["/bin/sh"]),
        ([], ["echo", "hi"], [], ["echo", "hi"]),
        ([], ["echo", "hi"], ["ls", "-l"], ["ls", "-l"]),
        (["/entry", "-x"], ["default"], [], ["/entry", "-x", "default"]),
        (["/entry"], ["default"], ["a", "b"], ["/entry", "a", "b"]),
        (["/entry"], [], [], ["/entry"]),
    ],
)
def test_entrypoint_cmd_and_words(
    entrypoint: list[str], cmd: list[str], words: list[str], expected: list[str]
) -> None:
    assert process_args(info(entrypoint=entrypoint, cmd=cmd), words) == expected


def test_env_merges_by_key_image_wins() -> None:
    base = ("PATH=/a", "TERM=xterm")
    got = merge_env(base, ["PATH=/b:/c", "X=1=2", "EMPTY=", "NOVALUE", "=bad"])
    assert got == ["PATH=/b:/c", "TERM=xterm", "X=1=2", "EMPTY="]


def rootfs(tmp_path: Path, passwd: str, group: str) -> str:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(passwd)
    (root / "etc/group").write_text(group)
    return str(root)


PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n"
    "odd:x:notanumber:0::/:/bin/sh\n"
    "short:x:7\n"
)
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:other,app\nwheel:x:10:root\naudio:x:29:app\n"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("app", (1000, 1001, (50, 29), "/home/app")),
        ("1000", (1000, 1001, (50, 29), "/home/app")),
        ("app:staff", (1000, 50, (29,), "/home/app")),
        ("app:77", (1000, 77, (50, 29), "/home/app")),
        ("4242", (4242, 0, (), "/")),  # unknown uid: allowed, group 0 (docker's rule)
        ("4242:4243", (4242, 4243, (), "/")),
        ("4242:wheel", (4242, 10, (), "/")),
        ("root", (0, 0, (10,), "/root")),
        ("short", (7, 0, (), "/")),
    ],
)
def test_users_resolved_in_the_image(
    tmp_path: Path, user: str, expected: tuple[int, int, tuple[int, ...], str]
) -> None:
    assert resolve_user(rootfs(tmp_path, PASSWD, GROUP), user, "img") == expected


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("ghost", "image 'img': user 'ghost' is not in its /etc/passwd"),
        ("odd", "image 'img': user 'odd' is not in its /etc/passwd"),
        ("app:ghosts", "image 'img': group 'ghosts' is not in its /etc/group"),
    ],
)
def test_unknown_names_are_one_line_errors(tmp_path: Path, user: str, message: str) -> None:
    with pytest.raises(ImageError) as e:
        resolve_user(rootfs(tmp_path, PASSWD, GROUP), user, "img")
    assert str(e.value) == message


def test_passwd_symlink_resolves_inside_the_image(tmp_path: Path) -> None:
    """An absolute symlink names the image's file, never the host's /etc/passwd."""
    root = rootfs(tmp_path, "", "")
    os.unlink(f"{root}/etc/passwd")
    os.makedirs(f"{root}/usr/share")
    Path(root, "usr/share/passwd").write_text("inside:x:123:45::/in:/bin/sh\n")
    os.symlink("/usr/share/passwd", f"{root}/etc/passwd")
    assert resolve_user(root, "inside", "img")[:2] == (123, 45)
    os.unlink(f"{root}/etc/passwd")
    os.symlink("../../../../../../../../etc/passwd", f"{root}/etc/passwd")  # climbs to / only
    with pytest.raises(ImageError):
        resolve_user(root, "root", "img")


def test_no_passwd_at_all(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    root.mkdir()
    assert resolve_user(str(root), "5:6", "img") == (5, 6, (), "/")
    with pytest.raises(ImageError, match="user 'app'"):
        resolve_user(str(root), "app", "img")


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1_982_482, 3 * 10**9, 5 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "2.0 MB",
        "3.0 GB",
        "5000.0 GB",
    ]
