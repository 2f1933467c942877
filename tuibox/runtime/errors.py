"""The runtime's exception tree. Every message is user-facing: one lower-case line that names
the file, field, box, path or operation at fault. The library raises; the CLI prints the line
and exits non-zero; the TUI shows it as a notification.

    TuiboxError                      exit 125 unless a subclass says otherwise
    +-- SpecError                    config.json / netconf.json / flags are invalid
    +-- BoxNotFound                  no box of that name in the state root
    +-- BoxExists                    the name is already taken
    +-- InvalidName                  a box or image name that is not allowed
    +-- InvalidState                 a verb not allowed in the box's current state
    +-- InitError                    a step of the in-box init failed (carries step and errno)
    |   +-- CommandNotFound          exit 127
    |   +-- CommandNotExecutable     exit 126
    +-- NetworkError                 bridge, veth, address or NAT setup failed
    +-- CgroupError                  cgroup creation or a limit failed
    +-- ImageError                   image store, import or rootfs problems
    +-- CorruptRecord                a box's state.json is unreadable (list: unknown)
    +-- TeardownError                destroy could not release some resources
"""

from __future__ import annotations


class TuiboxError(Exception):
    """Base of every error the runtime raises on purpose."""

    exit_code = 125

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(TuiboxError):
    """A configuration file or a command-line value is invalid."""


class BoxNotFound(TuiboxError):
    def __init__(self, name: str) -> None:
        super().__init__(f"box {name!r} does not exist")
        self.name = name


class BoxExists(TuiboxError):
    def __init__(self, name: str) -> None:
        super().__init__(f"box name {name!r} is already in use")
        self.name = name


class InvalidName(TuiboxError):
    pass


class InvalidState(TuiboxError):
    """A verb that the box's current status does not allow; names both states."""

    def __init__(self, name: str, status: str, action: str, wanted: str) -> None:
        super().__init__(f"cannot {action} box {name!r}: it is {status}, it must be {wanted}")
        self.name = name
        self.status = status
        self.action = action


class InitError(TuiboxError):
    """The in-box init failed at a named step; the child's own message is kept."""

    def __init__(self, step: str, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.step = step
        self.errno = errno


class CommandNotFound(InitError):
    exit_code = 127


class CommandNotExecutable(InitError):
    exit_code = 126


class NetworkError(TuiboxError):
    pass


class CgroupError(TuiboxError):
    pass


class ImageError(TuiboxError):
    pass


class CorruptRecord(TuiboxError):
    """A box's state.json is missing, empty, not JSON or has a field of the wrong type.

    The box is listed as `unknown` with `reason`; `destroy --force` still tears it down from
    what the kernel knows (cgroups and leases are derivable from the name and the root)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"box {name!r}: its record is unreadable ({reason}); `destroy --force {name}` "
            "removes it"
        )
        self.name = name
        self.reason = reason


class TeardownError(TuiboxError):
    """Some resources of a box could not be released; one line per failed resource."""

    def __init__(self, name: str, failures: list[str]) -> None:
        lines = [f"box {name!r}: teardown failed: {f}" for f in failures]
        super().__init__("\n".join(lines) if lines else f"box {name!r}: teardown failed")
        self.name = name
        self.failures = failures
