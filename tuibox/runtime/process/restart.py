"""The restart policy, enforced by the box's monitor once the init has exited.

The monitor has recorded the exit (and drained the log) when it calls `after_exit`. Under
the box's lock it notes the exit in `extra["restart"]` and asks the policy
(restart_policy.py); for a restart it marks itself `waiting` (a user's `start` does not wait
for it then), sleeps out the backoff while watching the record (a user's stop or kill, a
start by someone else, a destroy: it leaves at once), counts the attempt, and runs
`tuibox start --restarted NAME` in a fresh Python: the same path as a user's start, whose
new monitor then watches the next run. This monitor leaves when that process is done; if
the start failed (its reason is in the record's `error`), it tries again after the next
backoff, while the policy allows.

Runs only in a monitor of a box with a policy: never imported on `run`'s start-up path.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

from tuibox.runtime import state as st
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.linux import proc
from tuibox.runtime.restart_policy import next_delay, wants_restart

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A fresh interpreter running this very tuibox, however the CLI was started (the launcher's
# `python -IS`, `python -m tuibox`): the package's parent goes first on sys.path.
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); from tuibox.cli import main; "
    "raise SystemExit(main(sys.argv[1:]))"
)
POLL_S = 0.05


def _policy(record: st.BoxRecord, me: list[int | None]) -> dict[str, Any] | None:
    """The policy's state, if this monitor still speaks for the box."""
    policy = record.extra.get("restart")
    if not isinstance(policy, dict) or record.extra.get("monitor") != me:
        return None
    return policy


def after_exit(box_dir: str, code: int, ran: float) -> None:
    """Restart the box while its policy says so (see the module docstring); never raises."""
    try:
        _after_exit(box_dir, code, ran)
    except Exception:
        pass  # destroyed meanwhile, or a broken record: the exit is recorded already


class _Gone(Exception):
    """The box was destroyed meanwhile."""


def _leaving(root: st.StateRoot, name: str) -> bool:
    """The box is gone or being destroyed: a destroy waits for this monitor to leave."""
    try:
        return root.read(name).status == "destroying"
    except TuiboxError:
        return True


class _Locked:
    """The box's lock, taken without blocking a destroy: a destroy holds it while it waits
    for this monitor to leave, so we poll, and give up once it is being destroyed."""

    def __init__(self, box_dir: str) -> None:
        self.box_dir = box_dir
        self.fd = -1

    def __enter__(self) -> None:
        try:
            self.fd = os.open(os.path.join(self.box_dir, "lock"), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _Gone from None
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                root, name = os.path.split(self.box_dir)
                if _leaving(st.StateRoot(root), name):
                    os.close(self.fd)
                    raise _Gone from None
                time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _after_exit(box_dir: str, code: int, ran: float) -> None:
    root_path, name = os.path.split(box_dir)
    root = st.StateRoot(root_path)
    pid = os.getpid()
    me = [pid, proc.start_time(pid)]
    first = True
    delay = 0
    while True:
        with _Locked(box_dir):
            record = root.read(name)
            policy = _policy(record, me)
            if policy is None:
                return
            if first:
                policy["last_exit"] = code
            go = wants_restart(policy, code)
            if go:
                delay = next_delay(int(policy.get("delay_ms") or 0), ran if first else 0.0)
                policy["delay_ms"] = delay
                policy["waiting"] = me
            root.write(record)
        if not go or not _sleep(root, name, me, delay / 1000):
            return
        with _Locked(box_dir):
            record = root.read(name)
            policy = _policy(record, me)
            if policy is None or policy.get("user_stopped"):
                return
            policy["count"] = int(policy.get("count") or 0) + 1
            root.write(record)
        if _start(root_path, name):
            return
        first = False


def _sleep(root: st.StateRoot, name: str, me: list[int | None], seconds: float) -> bool:
    """Sleep out the backoff; False as soon as the box is gone or being destroyed, stopped
    by a user, or started by someone else (its record names another monitor)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            record = root.read(name)
        except TuiboxError:
            return False  # destroyed (or its record damaged: not ours to judge)
        policy = _policy(record, me)
        if policy is None or policy.get("user_stopped") or record.status == "destroying":
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(POLL_S, left))


def _start(root: str, name: str) -> bool:
    """`tuibox --root ROOT start --restarted NAME` in a fresh Python; True if it started
    the box (or someone else did meanwhile: nothing is left to do then either)."""
    import tuibox

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(tuibox.__file__)))
    argv = [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, package_parent]
    argv += ["--root", root, "start", "--restarted", name]
    try:
        pid = os.posix_spawn(sys.executable, argv, dict(os.environ))
        status = os.waitpid(pid, 0)[1]
    except OSError:
        return False
    return os.waitstatus_to_exitcode(status) == 0
