"""The runtime's exception tree. Every message is user-facing: one lower-case line that names
the file, field, box, path or operation at fault. The library raises; the CLI prints the line
and exits non-zero; the TUI shows it as a notification.

    TuiboxError                      kind "error"; exit 125 unless a subclass says otherwise
    +-- SpecError                    "spec": config.json / netconf.json / flags are invalid
    +-- BoxNotFound                  "not-found": no box of that name in the state root
    +-- BoxExists                    "exists": the name is already taken
    +-- InvalidName                  "invalid-name": a box or image name that is not allowed
    +-- InvalidState                 "invalid-state": a verb the box's current state refuses
    +-- InitError                    "init": a step of the in-box init failed (step, errno)
    |   +-- CommandNotFound          exit 127
    |   +-- CommandNotExecutable     exit 126
    +-- NetworkError                 "network": bridge, veth, address or NAT setup failed
    +-- CgroupError                  "cgroup": cgroup creation or a limit failed
    |   +-- CgroupUnsupported        "unsupported" (also an Unsupported)
    +-- ImageError                   "image": image store, import or rootfs problems
    +-- Unsupported                  "unsupported": this host (kernel, cgroups) cannot do it
    +-- CorruptRecord                "corrupt-record": a box's state.json is unreadable
    +-- TeardownError                "teardown": destroy could not release some resources
    +-- ResourceTeardownError        "teardown": one resource a stage could not remove

`kind` is a class attribute: callers (the TUI's service, embedders) branch on it or on the
class, never on the message, which is free text for people. The CLI can print it as a
machine-readable line (see docs/ARCHITECTURE.md, "Error kinds").
"""

from __future__ import annotations


class TuiboxError(Exception):
    """Base of every error the runtime raises on purpose."""

    exit_code = 125
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(TuiboxError):
    """A configuration file or a command-line value is invalid."""

    kind = "spec"


class BoxNotFound(TuiboxError):
    kind = "not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"box {name!r} does not exist")
        self.name = name


class BoxExists(TuiboxError):
    kind = "exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"box name {name!r} is already in use")
        self.name = name


class InvalidName(TuiboxError):
    kind = "invalid-name"


class InvalidState(TuiboxError):
    """A verb that the box's current status does not allow; names both states."""

    kind = "invalid-state"

    def __init__(self, name: str, status: str, action: str, wanted: str) -> None:
        super().__init__(f"cannot {action} box {name!r}: it is {status}, it must be {wanted}")
        self.name = name
        self.status = status
        self.action = action


class InitError(TuiboxError):
    """The in-box init failed at a named step; the child's own message is kept."""

    kind = "init"

    def __init__(self, step: str, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.step = step
        self.errno = errno


class CommandNotFound(InitError):
    exit_code = 127


class CommandNotExecutable(InitError):
    exit_code = 126


class NetworkError(TuiboxError):
    kind = "network"


class CgroupError(TuiboxError):
    kind = "cgroup"


class ImageError(TuiboxError):
    kind = "image"


class Unsupported(TuiboxError):
    """This host cannot do what was asked (a missing controller, freezer, kernel feature).

    The TUI greys the verb out for the session instead of failing it every second."""

    kind = "unsupported"


class CgroupUnsupported(CgroupError, Unsupported):
    """A cgroup controller or file this host lacks: a CgroupError that is also Unsupported."""

    kind = "unsupported"


# Every kind a TuiboxError can carry, for callers that validate one read from the CLI.
KINDS = frozenset(
    {
        "error",
        "spec",
        "not-found",
        "exists",
        "invalid-name",
        "invalid-state",
        "init",
        "network",
        "cgroup",
        "image",
        "unsupported",
        "teardown",
        "corrupt-record",
    }
)


class ResourceTeardownError(TuiboxError):
    """A resource that a teardown could not remove (a lease, a veth, an nft rule or table).

    One teardown may fail on several resources: it raises the first, whose `failures` lists
    every one (itself included), so a caller reports one line per failed resource. What was
    removed stays removed; running the teardown again retries the rest."""

    kind = "teardown"

    def __init__(self, resource: str, message: str) -> None:
        super().__init__(f"{resource}: {message}")
        self.resource = resource
        self.reason = message
        self.failures: list[ResourceTeardownError] = [self]

    @classmethod
    def of(cls, failures: list[ResourceTeardownError]) -> ResourceTeardownError:
        first = failures[0]
        first.failures = list(failures)
        return first


class CorruptRecord(TuiboxError):
    """A box's state.json is missing, empty, not JSON or has a field of the wrong type.

    The box is listed as `unknown` with `reason`; `destroy --force` still tears it down from
    what the kernel knows (cgroups and leases are derivable from the name and the root)."""

    kind = "corrupt-record"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"box {name!r}: its record is unreadable ({reason}); `destroy --force {name}` "
            "removes it"
        )
        self.name = name
        self.reason = reason


class TeardownError(TuiboxError):
    """Some resources of a box could not be released; one line per failed resource."""

    kind = "teardown"

    def __init__(self, name: str, failures: list[str]) -> None:
        lines = [f"box {name!r}: teardown failed: {f}" for f in failures]
        super().__init__("\n".join(lines) if lines else f"box {name!r}: teardown failed")
        self.name = name
        self.failures = failures
