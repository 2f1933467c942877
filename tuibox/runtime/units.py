"""The one parser of sizes and the one parser of signals, shared by the CLI, the TUI and the
request builder.

On `tuibox run`'s start-up path (the builder reads --memory through it): no re, enum or
signal at module level.
"""

from __future__ import annotations

from tuibox.runtime.errors import SpecError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, what: str = "size") -> int:
    """'256m', '1g', '1.5GiB', '64 MB', '300000000' -> bytes (docker's RAMInBytes: binary
    units, a fraction allowed); '-1' -> -1, which callers read as "no limit".

    `what` names the field in the error ('--memory' from the CLI, 'memory' from the TUI)."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    t = t.removesuffix("b").removesuffix("i").rstrip()
    unit = ""
    if t[-1:] in ("k", "m", "g", "t"):
        unit, t = t[-1], t[:-1].rstrip()
    digits = t.replace(".", "", 1)
    if not digits.isdigit() or t.startswith(".") or t.endswith("."):
        raise SpecError(f"{what} {text!r}: not a size (a number with b, k, m, g or t)")
    return int(float(t) * _UNITS[unit])


def parse_signal(text: str | None) -> int:
    """'TERM', 'sigkill', 'SIGHUP', '9' -> the signal's number; None -> SIGTERM."""
    # The C module's constants, not `signal` (it imports enum: ~1.5 ms of every `kill`).
    import _signal

    if text is None:
        return _signal.SIGTERM
    name = text.strip().upper().removeprefix("SIG")
    if name.isdigit():
        num = int(name)
        if not 0 < num < _signal.NSIG:
            raise SpecError(f"invalid signal {text!r}")
        return num
    # SIG_DFL, SIG_IGN, SIG_BLOCK...: constants, not signals
    found = None if not name or name.startswith("_") else getattr(_signal, "SIG" + name, None)
    if type(found) is not int:
        raise SpecError(f"invalid signal {text!r}")
    return found
