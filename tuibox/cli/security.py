"""`--security-opt` of run/create (docker's spelling): seccomp=unconfined|FILE.

What the choice does to a box is the runtime's (runtime/seccomp/choice.py); this only reads
the flag's syntax.
"""

from __future__ import annotations

from tuibox.runtime.errors import SpecError

UNCONFINED = "unconfined"


def seccomp_choice(security_opt: list[str]) -> str | None:
    """From the --security-opt values: 'unconfined', a profile path, or None when not
    given; SpecError for a bad value."""
    choice = None
    for item in security_opt:
        key, eq, value = item.partition("=")
        if key != "seccomp":
            raise SpecError(
                f"--security-opt {item!r}: unknown option (tuibox knows seccomp=unconfined|FILE)"
            )
        if not eq or not value:
            raise SpecError(f"--security-opt {item!r}: must be seccomp=unconfined or seccomp=FILE")
        choice = value
    return choice
