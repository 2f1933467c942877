"""Textual key events to the bytes an xterm sends for them. Pure: no Textual import.

Textual names keys like "ctrl+a", "shift+tab", "alt+x", "f5", "ctrl+right_square_bracket";
`character` is the text of the key when it has one. Sequences follow xterm's defaults
(what TERM=xterm-256color promises): CSI or SS3 cursor keys by DECCKM, `CSI n ~` editing keys,
modifiers as the `;m` parameter (1 + shift + 2*alt + 4*ctrl), alt as an ESC prefix elsewhere.
"""

from __future__ import annotations

import unicodedata

ESC = "\x1b"

# Keys whose bytes do not depend on modifiers or modes.
_FIXED: dict[str, str] = {
    "enter": "\r",
    "return": "\r",
    "shift+enter": "\r",
    "ctrl+m": "\r",
    "ctrl+j": "\n",
    "tab": "\t",
    "ctrl+i": "\t",
    "shift+tab": ESC + "[Z",
    "escape": ESC,
    "shift+escape": ESC,
    "backspace": "\x7f",
    "shift+backspace": "\x7f",
    "ctrl+h": "\x08",
    "ctrl+backspace": "\x08",
    "space": " ",
    "shift+space": " ",
    "ctrl+space": "\x00",
    "ctrl+@": "\x00",
    "ctrl+at": "\x00",
    "ctrl+commercial_at": "\x00",
}

# Cursor keys: final byte; CSI normally, SS3 in application mode (DECCKM), CSI 1;m with mods.
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
# F1-F4 are SS3 P..S unmodified and CSI 1;m P..S modified.
_SS3_FKEYS = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
# Keys sent as CSI n ~ (CSI n;m ~ with modifiers).
_TILDE = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}

# ctrl+<key> for keys that are not letters, as xterm maps them.
_CTRL_OTHER: dict[str, int] = {
    "at": 0,
    "commercial_at": 0,
    "@": 0,
    "space": 0,
    "2": 0,
    "left_square_bracket": 0x1B,
    "[": 0x1B,
    "3": 0x1B,
    "backslash": 0x1C,
    "\\": 0x1C,
    "4": 0x1C,
    "right_square_bracket": 0x1D,
    "]": 0x1D,
    "5": 0x1D,
    "circumflex_accent": 0x1E,
    "^": 0x1E,
    "6": 0x1E,
    "underscore": 0x1F,
    "_": 0x1F,
    "minus": 0x1F,
    "-": 0x1F,
    "slash": 0x1F,
    "/": 0x1F,
    "7": 0x1F,
    "question_mark": 0x7F,
    "?": 0x7F,
    "8": 0x7F,
}

# Key names of printable characters that Textual spells out (the inverse of its naming).
_NAMED_CHARS: dict[str, str] = {
    "space": " ",
    "exclamation_mark": "!",
    "quotation_mark": '"',
    "number_sign": "#",
    "dollar_sign": "$",
    "percent_sign": "%",
    "ampersand": "&",
    "apostrophe": "'",
    "left_parenthesis": "(",
    "right_parenthesis": ")",
    "asterisk": "*",
    "plus": "+",
    "plus_sign": "+",
    "comma": ",",
    "minus": "-",
    "hyphen_minus": "-",
    "full_stop": ".",
    "slash": "/",
    "solidus": "/",
    "colon": ":",
    "semicolon": ";",
    "less_than_sign": "<",
    "equals_sign": "=",
    "greater_than_sign": ">",
    "question_mark": "?",
    "at": "@",
    "commercial_at": "@",
    "left_square_bracket": "[",
    "backslash": "\\",
    "reverse_solidus": "\\",
    "right_square_bracket": "]",
    "circumflex_accent": "^",
    "underscore": "_",
    "low_line": "_",
    "grave_accent": "`",
    "left_curly_bracket": "{",
    "vertical_line": "|",
    "right_curly_bracket": "}",
    "tilde": "~",
}

_MODIFIERS = ("shift", "alt", "ctrl", "meta", "super", "hyper")


def split_key(key: str) -> tuple[frozenset[str], str]:
    """("ctrl+shift+up") -> ({"ctrl", "shift"}, "up"). A lone "+" key is named "plus"."""
    parts = key.split("+")
    base = parts[-1]
    mods = frozenset(p for p in parts[:-1] if p in _MODIFIERS)
    return mods, base


# Textual's short names for some punctuation (its KEY_NAME_REPLACEMENTS).
_SHORT_NAMES = {
    "solidus": "slash",
    "reverse_solidus": "backslash",
    "commercial_at": "at",
    "hyphen_minus": "minus",
    "plus_sign": "plus",
    "low_line": "underscore",
}


def normalize_key(key: str) -> str:
    """Spell a key the way Textual names it in events: "ctrl+]" -> "ctrl+right_square_bracket"."""
    if key.endswith("++"):
        key = key[:-1] + "plus"
    mods, _, base = key.rpartition("+")
    if len(base) == 1 and not base.isalnum():
        try:
            name = unicodedata.name(base).lower().replace("-", "_").replace(" ", "_")
        except ValueError:
            return key
        base = _SHORT_NAMES.get(name, name)
    return f"{mods}+{base}" if mods else base


def _modifier_param(mods: frozenset[str]) -> int:
    return 1 + ("shift" in mods) + 2 * ("alt" in mods or "meta" in mods) + 4 * ("ctrl" in mods)


def _ctrl_byte(base: str) -> int | None:
    if len(base) == 1 and base.isascii() and base.isalpha():
        return ord(base.lower()) - ord("a") + 1
    return _CTRL_OTHER.get(base)


def _plain_char(base: str, shift: bool) -> str | None:
    if len(base) == 1:
        return base.upper() if shift else base
    return _NAMED_CHARS.get(base)


def encode_key(key: str, character: str | None = None, *, app_cursor: bool = False) -> bytes | None:
    """The bytes to write to the pty for a key, or None if it has no terminal meaning."""
    fixed = _FIXED.get(key)
    if fixed is not None:
        return fixed.encode()
    mods, base = split_key(key)
    param = _modifier_param(mods)

    letter = _CURSOR.get(base)
    if letter is not None:
        if param > 1:
            return f"{ESC}[1;{param}{letter}".encode()
        return f"{ESC}{'O' if app_cursor else '['}{letter}".encode()
    letter = _SS3_FKEYS.get(base)
    if letter is not None:
        if param > 1:
            return f"{ESC}[1;{param}{letter}".encode()
        return f"{ESC}O{letter}".encode()
    number = _TILDE.get(base)
    if number is not None:
        if param > 1:
            return f"{ESC}[{number};{param}~".encode()
        return f"{ESC}[{number}~".encode()

    alt = "alt" in mods or "meta" in mods
    if alt:
        rest = "+".join([*(m for m in _MODIFIERS if m in mods and m not in ("alt", "meta")), base])
        inner = encode_key(rest, character, app_cursor=app_cursor)
        return None if inner is None else ESC.encode() + inner

    if "ctrl" in mods:
        code = _ctrl_byte(base)
        return None if code is None else bytes([code])

    if mods - {"shift"}:
        return None  # super/hyper chords mean nothing to a terminal program
    if character and character.isprintable():
        return character.encode()
    char = _plain_char(base, "shift" in mods)
    return None if char is None else char.encode()


# Mouse reporting (xterm's ctlseqs, "Mouse Tracking"): the button number, plus 32 for motion,
# 4 shift, 8 meta, 16 ctrl; 64/65 for the wheel. X10's encoding sends release as button 3
# and each number plus 32 as one byte (so positions stop at 223); SGR's (mode 1006) sends
# decimal numbers and `M` for press and motion, `m` for release, with the button kept.
MOUSE_PRESS, MOUSE_RELEASE, MOUSE_MOVE = "press", "release", "move"
_X10_LIMIT = 223


def encode_mouse(
    kind: str,
    button: int,
    x: int,
    y: int,
    *,
    sgr: bool,
    shift: bool = False,
    meta: bool = False,
    ctrl: bool = False,
) -> bytes | None:
    """The report of one mouse event at cell (x, y), 0-based; `button` 1-3 as Textual numbers
    them (0: none), 4/5 for wheel up/down. None when X10's encoding cannot carry it."""
    if button in (4, 5):
        code = 64 + (button - 4)
    elif button in (1, 2, 3):
        code = button - 1
    else:
        code = 3  # motion with no button held
    if kind == MOUSE_MOVE:
        code += 32
    code += 4 * shift + 8 * meta + 16 * ctrl
    col, row = x + 1, y + 1
    if sgr:
        final = "m" if kind == MOUSE_RELEASE else "M"
        return f"{ESC}[<{code};{col};{row}{final}".encode()
    if kind == MOUSE_RELEASE:
        code = (code & ~3) | 3
    if col > _X10_LIMIT or row > _X10_LIMIT:
        return None
    return bytes([0x1B, 0x5B, 0x4D, 32 + code, 32 + col, 32 + row])
