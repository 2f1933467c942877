"""The console protocol without root: frames, detach keys, fd passing, the client relay."""

from __future__ import annotations

import os
import socket

import pytest

from tuibox.runtime import console
from tuibox.runtime.errors import SpecError


def test_frames_survive_any_split() -> None:
    stream = (
        console.frame(console.DATA, b"hello")
        + console.resize_frame(40, 120)
        + console.frame(console.EXIT, b"7")
    )
    for step in (1, 2, 3, 5, len(stream)):
        reader = console.FrameReader()
        frames = []
        for i in range(0, len(stream), step):
            frames += reader.feed(stream[i : i + step])
        assert frames == [
            (console.DATA, b"hello"),
            (console.RESIZE, b"\x00\x28\x00\x78"),
            (console.EXIT, b"7"),
        ]
    assert console.parse_size(frames[1][1]) == (40, 120)
    assert console.parse_size(b"\x00\x00\x00\x50") is None
    assert console.parse_size(b"x") is None


def test_long_data_is_split_into_several_frames() -> None:
    data = bytes(range(256)) * 600  # > 64 KiB
    frames = console.FrameReader().feed(console.frame(console.DATA, data))
    assert len(frames) == 3 and b"".join(p for _, p in frames) == data


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("ctrl-]", b"\x1d"),
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("ctrl-@", b"\x00"),
        ("ctrl-A, x", b"\x01x"),
        ("", b""),
    ],
)
def test_detach_keys(text: str, keys: bytes) -> None:
    assert console.parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-zz", "ctrl-1", "abc", "ctrl-"])
def test_bad_detach_keys(text: str) -> None:
    with pytest.raises(SpecError, match="not a key"):
        console.parse_detach_keys(text)


def test_detach_scanner_holds_a_prefix_and_passes_it_on() -> None:
    s = console._DetachScanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)  # held: could be the start of the sequence
    assert s.feed(b"c") == (b"\x10c", False)  # it was not
    assert s.feed(b"\x10\x10") == (b"\x10", False)  # the second ^P may start it again
    assert s.feed(b"\x11rest") == (b"", True)
    assert console._DetachScanner(b"").feed(b"\x1d") == (b"\x1d", False)


def test_fd_passing_over_a_socketpair() -> None:
    a, b = socket.socketpair()
    r, w = os.pipe()
    try:
        console.send_fd(a.fileno(), w)
        got = console.recv_fd(b.fileno())
        assert got is not None and got != w
        os.write(got, b"x")
        os.close(got)
        assert os.read(r, 1) == b"x"
        a.close()
        assert console.recv_fd(b.fileno()) is None  # end-of-file
    finally:
        for fd in (r, w):
            os.close(fd)
        b.close()


def test_listen_and_connect_with_a_path_longer_than_sun_path(tmp_path: os.PathLike[str]) -> None:
    deep = os.path.join(os.fspath(tmp_path), "d" * 60, "e" * 60)
    os.makedirs(deep)
    path = os.path.join(deep, console.SOCKET_NAME)
    fd = console.listen(path)
    try:
        assert os.stat(path).st_mode & 0o777 == 0o600
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        console._with_sun_path(path, c.connect)
        c.close()
    finally:
        os.close(fd)


def test_attach_relay_forwards_and_ends_with_the_exit_status() -> None:
    ours, keeper = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        os.write(stdin_w, b"ls\n")
        keeper.sendall(
            console.frame(console.DATA, b"hello\r\n") + console.frame(console.EXIT, b"3")
        )
        assert console.attach_terminal(ours, b"\x1d", stdin_r, out_w) == 3
        assert os.read(out_r, 100) == b"hello\r\n"
        os.write(stdin_w, b"more\x1dignored")
        ours2, keeper2 = socket.socketpair()
        assert console.attach_terminal(ours2, b"\x1d", stdin_r, out_w) == console.DETACHED
        keeper2.setblocking(False)
        got = console.FrameReader().feed(keeper2.recv(100))
        typed = b"".join(p for tag, p in got if tag == console.DATA)
        assert typed.endswith(b"more")  # what came before the detach key, nothing after
        ours2.close()
        keeper2.close()
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            os.close(fd)
        ours.close()
        keeper.close()
