"""Key encoding: Textual key names to the bytes xterm sends."""

from __future__ import annotations

import pytest

from tuibox.widgets.vt_keys import encode_key, normalize_key, split_key


@pytest.mark.parametrize(
    ("key", "character", "expected"),
    [
        ("a", "a", b"a"),
        ("A", "A", b"A"),
        ("dollar_sign", "$", b"$"),
        ("space", " ", b" "),
        ("space", None, b" "),
        ("é", "é", "é".encode()),
        ("enter", None, b"\r"),
        ("enter", "\r", b"\r"),
        ("backspace", None, b"\x7f"),
        ("ctrl+h", None, b"\x08"),
        ("tab", None, b"\t"),
        ("shift+tab", None, b"\x1b[Z"),
        ("escape", None, b"\x1b"),
        ("insert", None, b"\x1b[2~"),
        ("delete", None, b"\x1b[3~"),
        ("pageup", None, b"\x1b[5~"),
        ("pagedown", None, b"\x1b[6~"),
        ("home", None, b"\x1b[H"),
        ("end", None, b"\x1b[F"),
    ],
)
def test_plain_and_editing_keys(key: str, character: str | None, expected: bytes) -> None:
    assert encode_key(key, character) == expected


@pytest.mark.parametrize(
    ("key", "normal", "application"),
    [
        ("up", b"\x1b[A", b"\x1bOA"),
        ("down", b"\x1b[B", b"\x1bOB"),
        ("right", b"\x1b[C", b"\x1bOC"),
        ("left", b"\x1b[D", b"\x1bOD"),
        ("home", b"\x1b[H", b"\x1bOH"),
        ("end", b"\x1b[F", b"\x1bOF"),
    ],
)
def test_cursor_keys_follow_decckm(key: str, normal: bytes, application: bytes) -> None:
    assert encode_key(key) == normal
    assert encode_key(key, app_cursor=True) == application


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ctrl+up", b"\x1b[1;5A"),
        ("shift+left", b"\x1b[1;2D"),
        ("alt+right", b"\x1b[1;3C"),
        ("ctrl+shift+home", b"\x1b[1;6H"),
        ("ctrl+delete", b"\x1b[3;5~"),
        ("shift+pageup", b"\x1b[5;2~"),
        ("ctrl+f5", b"\x1b[15;5~"),
        ("shift+f1", b"\x1b[1;2P"),
    ],
)
def test_modified_special_keys_use_the_xterm_parameter(key: str, expected: bytes) -> None:
    assert encode_key(key, app_cursor=True) == expected  # modifiers win over DECCKM


def test_function_keys() -> None:
    ss3 = {
        f"f{n}": b"\x1bO" + letter.encode() for n, letter in zip(range(1, 5), "PQRS", strict=True)
    }
    tilde = {"f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
    for key, expected in ss3.items():
        assert encode_key(key) == expected
    for key, number in tilde.items():
        assert encode_key(key) == f"\x1b[{number}~".encode()


def test_ctrl_letters() -> None:
    for offset, letter in enumerate("abcdefghijklmnopqrstuvwxyz", start=1):
        expected = {"h": b"\x08", "i": b"\t", "j": b"\n", "m": b"\r"}.get(letter, bytes([offset]))
        assert encode_key(f"ctrl+{letter}") == expected
    assert encode_key("ctrl+shift+a") == b"\x01"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ctrl+space", b"\x00"),
        ("ctrl+@", b"\x00"),
        ("ctrl+at", b"\x00"),
        ("ctrl+2", b"\x00"),
        ("ctrl+left_square_bracket", b"\x1b"),
        ("ctrl+backslash", b"\x1c"),
        ("ctrl+right_square_bracket", b"\x1d"),
        ("ctrl+circumflex_accent", b"\x1e"),
        ("ctrl+underscore", b"\x1f"),
        ("ctrl+question_mark", b"\x7f"),
    ],
)
def test_ctrl_punctuation(key: str, expected: bytes) -> None:
    assert encode_key(key) == expected


@pytest.mark.parametrize(
    ("key", "character", "expected"),
    [
        ("alt+a", "a", b"\x1ba"),
        ("alt+shift+a", "A", b"\x1bA"),
        ("alt+shift+a", None, b"\x1bA"),
        ("alt+period", ".", b"\x1b."),
        ("alt+full_stop", None, b"\x1b."),
        ("alt+backspace", None, b"\x1b\x7f"),
        ("alt+enter", None, b"\x1b\r"),
        ("ctrl+alt+c", None, b"\x1b\x03"),
    ],
)
def test_alt_is_an_escape_prefix(key: str, character: str | None, expected: bytes) -> None:
    assert encode_key(key, character) == expected


@pytest.mark.parametrize("key", ["super+a", "ctrl+f13", "hyper+x", "ctrl+nonsense", "f24"])
def test_keys_without_terminal_meaning(key: str) -> None:
    assert encode_key(key) is None


def test_control_characters_are_not_typed_as_text() -> None:
    assert encode_key("ctrl+c", "\x03") == b"\x03"
    assert encode_key("unknown", "\x03") is None


def test_split_and_normalize() -> None:
    assert split_key("ctrl+shift+up") == (frozenset({"ctrl", "shift"}), "up")
    assert normalize_key("ctrl+]") == "ctrl+right_square_bracket"
    assert normalize_key("ctrl+\\") == "ctrl+backslash"
    assert normalize_key("ctrl+@") == "ctrl+at"
    assert normalize_key("ctrl++") == "ctrl+plus"
    assert normalize_key("f12") == "f12"
    assert normalize_key("ctrl+a") == "ctrl+a"


def test_mouse_reports_in_sgr_and_x10_encodings() -> None:
    from tuibox.widgets.vt_keys import MOUSE_MOVE, MOUSE_PRESS, MOUSE_RELEASE, encode_mouse

    assert encode_mouse(MOUSE_PRESS, 1, 0, 0, sgr=True) == b"\x1b[<0;1;1M"
    assert encode_mouse(MOUSE_RELEASE, 3, 9, 4, sgr=True) == b"\x1b[<2;10;5m"
    assert encode_mouse(MOUSE_MOVE, 1, 2, 2, sgr=True, ctrl=True) == b"\x1b[<48;3;3M"
    assert encode_mouse(MOUSE_MOVE, 0, 2, 2, sgr=True) == b"\x1b[<35;3;3M"
    assert encode_mouse(MOUSE_PRESS, 5, 0, 0, sgr=True, shift=True) == b"\x1b[<69;1;1M"
    # X10: one byte each, plus 32; a release is button 3 whatever was pressed.
    assert encode_mouse(MOUSE_PRESS, 2, 0, 1, sgr=False) == b"\x1b[M" + bytes([33, 33, 34])
    assert encode_mouse(MOUSE_RELEASE, 1, 0, 1, sgr=False) == b"\x1b[M" + bytes([35, 33, 34])
    assert encode_mouse(MOUSE_PRESS, 4, 0, 0, sgr=False, meta=True) == b"\x1b[M" + bytes(
        [32 + 72, 33, 33]
    )
    assert encode_mouse(MOUSE_PRESS, 1, 300, 0, sgr=False) is None  # past X10's reach
    assert encode_mouse(MOUSE_PRESS, 1, 300, 0, sgr=True) == b"\x1b[<0;301;1M"
