# The C half of `signal`, used directly to avoid importing enum on the start-up path.
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

_Handler = Callable[[int, FrameType | None], Any] | int | None

SIG_DFL: int
SIG_IGN: int
SIG_BLOCK: int
SIG_UNBLOCK: int
SIG_SETMASK: int
SIGHUP: int
SIGINT: int
SIGQUIT: int
SIGKILL: int
SIGPIPE: int
SIGTERM: int
SIGCHLD: int
SIGCONT: int
SIGSTOP: int
SIGXFSZ: int
SIGWINCH: int
NSIG: int

def signal(signalnum: int, handler: _Handler, /) -> _Handler: ...
def getsignal(signalnum: int, /) -> _Handler: ...
def pthread_sigmask(how: int, mask: Iterable[int], /) -> set[int]: ...
def strsignal(signalnum: int, /) -> str | None: ...
def set_wakeup_fd(fd: int, /, *, warn_on_full_buffer: bool = ...) -> int: ...
