"""Re-wrapping on resize (VTScreen._reflow): lines that wrapped at the right margin become one
line again and are cut at the new width, in history and on the screen; the cursor stays on its
character; lines ended by CR LF are never joined."""

from __future__ import annotations

from tuibox.widgets.vt_screen import VirtualTerminal

ALPHA = "abcdefghijklmnopqrstuvwxy"


def everything(vt: VirtualTerminal) -> list[str]:
    return vt.history_lines() + vt.display_lines()


def test_a_wrapped_line_is_joined_when_wider_and_cut_when_narrower() -> None:
    vt = VirtualTerminal(10, 4, scrollback=100)
    vt.feed(f"{ALPHA}\r\n$ ".encode())  # the bulk path: whole lines
    assert vt.display_lines() == ["abcdefghij", "klmnopqrst", "uvwxy", "$"]
    vt.resize(30, 4)
    assert vt.display_lines() == [ALPHA, "$", "", ""]
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (1, 2)
    vt.resize(5, 4)
    assert everything(vt) == ["abcde", "fghij", "klmno", "pqrst", "uvwxy", "$"]
    vt.feed(b"xy")  # the cursor kept its place after the prompt
    assert vt.display_lines()[-1] == "$ xy"
    vt.resize(40, 6)
    assert vt.history_lines() == [] and vt.display_lines()[:2] == [ALPHA, "$ xy"]


def test_lines_ended_by_the_program_are_not_joined() -> None:
    vt = VirtualTerminal(10, 4, scrollback=100)
    vt.feed(b"0123456789\r\nshort\r\n")  # exactly full, then CR LF: not a wrap
    vt.resize(30, 4)
    assert vt.display_lines()[:2] == ["0123456789", "short"]


def test_the_character_path_and_styles_reflow_too() -> None:
    vt = VirtualTerminal(10, 4, scrollback=100)
    vt.feed("\x1b[31mé123456789abcdef\x1b[0m\r\nnext".encode())  # not ASCII: pyte's own draw
    assert vt.display_lines()[:2] == ["é123456789", "abcdef"]
    vt.resize(20, 4)
    assert vt.display_lines()[:2] == ["é123456789abcdef", "next"]
    row = vt.row(0)
    assert isinstance(row, dict) and row[15].fg == "red" and row[15].data == "f"
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (1, 4)


def test_an_erased_line_loses_its_wrap_and_the_alternate_screen_is_left_alone() -> None:
    vt = VirtualTerminal(10, 4, scrollback=100)
    vt.feed(f"{ALPHA}\r\n".encode())
    vt.feed(b"\x1b[2;1H\x1b[2K")  # the middle row erased: it no longer wraps into the third
    vt.resize(30, 4)
    assert vt.display_lines()[:2] == ["abcdefghij", "uvwxy"]
    vt.feed(b"\x1b[?1049h\x1b[H" + ALPHA.encode())
    vt.resize(15, 4)  # full-screen programs redraw themselves: no re-wrap
    assert vt.display_lines()[0] == ALPHA[:15]


def test_history_beyond_the_scrollback_is_dropped_oldest_first() -> None:
    vt = VirtualTerminal(10, 3, scrollback=5)
    vt.feed(b"".join(b"%02d" % i + b"x" * 12 + b"\r\n" for i in range(4)))  # 14 chars each
    vt.resize(7, 3)
    history = vt.history_lines()
    assert len(history) == 5
    assert history[-1].startswith("03") or vt.display_lines()[0].startswith("03")


def test_the_cursor_keeps_its_place_on_a_continuation_row_and_a_pending_wrap() -> None:
    vt = VirtualTerminal(10, 4, scrollback=100)
    vt.feed(b"$ " + b"x" * 8 + b"y")  # 11 characters: the cursor is on the second row
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (1, 1)
    vt.resize(6, 4)
    assert vt.display_lines()[:2] == ["$ xxxx", "xxxxy"]
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (1, 5)
    vt.feed(b"z")
    assert vt.display_lines()[:2] == ["$ xxxx", "xxxxyz"]
    vt.resize(12, 4)
    assert vt.display_lines()[0] == "$ xxxxxxxxyz"
    assert (vt.screen.cursor.y, vt.screen.cursor.x) == (0, 12)
