"""Restart policies (`--restart`, docker's four): the flag's syntax, the decision at an init's
exit, and the backoff between restarts.

The state a box carries is one plain dict in its record, `extra["restart"]`:

    {"policy": "no" | "on-failure" | "always" | "unless-stopped",
     "max": N,              on-failure:N (0: no limit, as docker)
     "count": N,            restarts made by the policy since the last start by a user
     "last_exit": N|None,   the exit status of the run before this one (null: none yet)
     "user_stopped": bool,  a user's stop or kill: no restart until a user starts it again
     "delay_ms": N,         the last backoff (100 ms, doubled each time, at most 60 s;
                            back to 100 ms once a run lasted 10 s)
     "waiting": [pid, start time] | None,   the monitor sleeping out a backoff
     "error": str|None}     why the last restart attempt failed

Pure logic: no I/O, so the unit tests are exact. The monitor's side is process/restart.py.
"""

from __future__ import annotations

from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

POLICIES = ("no", "on-failure", "always", "unless-stopped")
FIRST_DELAY_MS = 100
MAX_DELAY_MS = 60_000
# A run that lasted this long was not a crash loop: the next delay starts over (docker's 10 s).
RESET_AFTER_S = 10.0
# Signals whose `kill` counts as the user stopping the box (a HUP or USR1 to reload does not).
STOP_SIGNALS = frozenset({2, 3, 9, 15})  # INT, QUIT, KILL, TERM


def new_state(policy: str, max_count: int = 0) -> dict[str, Any]:
    return {
        "policy": policy,
        "max": max_count,
        "count": 0,
        "last_exit": None,
        "user_stopped": False,
        "delay_ms": 0,
        "waiting": None,
        "error": None,
    }


def parse_policy(text: str, what: str = "restart") -> dict[str, Any]:
    """'no', 'on-failure', 'on-failure:N', 'always' or 'unless-stopped' -> a fresh state;
    SpecError (one line) for anything else."""
    name, colon, count = str(text).partition(":")
    wanted = "no, on-failure[:N], always or unless-stopped"
    if name not in POLICIES:
        raise SpecError(f"{what} {text!r}: must be {wanted}")
    max_count = 0
    if colon:
        if name != "on-failure":
            raise SpecError(f"{what} {text!r}: only on-failure takes a count (on-failure:N)")
        if not count.isascii() or not count.isdigit():
            raise SpecError(f"{what} {text!r}: N in on-failure:N must be a whole number")
        max_count = int(count)
    return new_state(name, max_count)


def describe(state: dict[str, Any]) -> str:
    """The policy as the flag says it: 'on-failure:3', 'always'."""
    policy = str(state.get("policy", "no"))
    count = state.get("max") or 0
    return f"{policy}:{count}" if policy == "on-failure" and count else policy


def wants_restart(state: dict[str, Any], code: int) -> bool:
    """Whether the policy restarts a box whose init exited with `code`."""
    if state.get("user_stopped"):
        return False
    policy = state.get("policy")
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        limit = int(state.get("max") or 0)
        return code != 0 and (limit == 0 or int(state.get("count") or 0) < limit)
    return False


def next_delay(previous_ms: int, ran_s: float) -> int:
    """The pause before the next restart: 100 ms, doubled each time up to 60 s; a run that
    lasted 10 s or more starts over at 100 ms (docker's restart manager)."""
    if previous_ms <= 0 or ran_s >= RESET_AFTER_S:
        return FIRST_DELAY_MS
    return min(previous_ms * 2, MAX_DELAY_MS)


def starts_at_boot(state: object) -> bool:
    """`tuibox boot`: `always` boxes (even stopped by a user: docker starts those when its
    daemon starts), `unless-stopped` ones unless a user stopped them."""
    if not isinstance(state, dict):
        return False
    policy = state.get("policy")
    return policy == "always" or (policy == "unless-stopped" and not state.get("user_stopped"))
