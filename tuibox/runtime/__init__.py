"""tuibox's runtime as a library: make, run and inspect boxes from Python without a screen.

    from tuibox.runtime import BoxRequest, Runtime, load_spec

    rt = Runtime(root="/tmp/state", data_root="/tmp/data")
    code = rt.run(BoxRequest("hello", load_spec("bundle/config.json", "bundle")))

`Runtime` verbs: create, start, run, kill, stop, destroy, get, state, list, exec, ps, stats,
wait, kill_processes, pause, resume, update. The forking ones (create, run, exec) must be
called from a single-threaded process: forking a process that has threads is unsafe, and
they refuse with a TuiboxError when other threads are running.

Names are loaded on first use (module `__getattr__`), so `import tuibox.runtime` stays cheap
and `tuibox run`'s start-up does not grow.

Exceptions (tuibox.runtime.errors): every message is one user-facing line.

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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.errors import (
        BoxExists,
        BoxNotFound,
        CgroupError,
        CommandNotExecutable,
        CommandNotFound,
        CorruptRecord,
        ImageError,
        InitError,
        InvalidName,
        InvalidState,
        NetworkError,
        SpecError,
        TeardownError,
        TuiboxError,
    )
    from tuibox.runtime.guards import GUARDS, can
    from tuibox.runtime.process.exec import ExecHandle, ExecRequest
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.request import CreateRequest as BoxRequest
    from tuibox.runtime.spec import load_spec, parse_spec, starter_spec
    from tuibox.runtime.spec_model import Spec
    from tuibox.runtime.state import BoxRecord

__all__ = [
    "GUARDS",
    "BoxExists",
    "BoxNotFound",
    "BoxRecord",
    "BoxRequest",
    "CgroupError",
    "CommandNotExecutable",
    "CommandNotFound",
    "CorruptRecord",
    "CreateRequest",
    "ExecHandle",
    "ExecRequest",
    "ImageError",
    "InitError",
    "InvalidName",
    "InvalidState",
    "NetworkError",
    "Runtime",
    "Spec",
    "SpecError",
    "TeardownError",
    "TuiboxError",
    "can",
    "load_spec",
    "parse_spec",
    "starter_spec",
]

_ERRORS = "tuibox.runtime.errors"
# public name -> (module, attribute): imported only when first asked for.
_WHERE: dict[str, tuple[str, str]] = {
    "Runtime": ("tuibox.runtime.box", "Runtime"),
    # No request builder yet: a BoxRequest is the loaded spec plus what the caller adds.
    "BoxRequest": ("tuibox.runtime.request", "CreateRequest"),
    "CreateRequest": ("tuibox.runtime.request", "CreateRequest"),
    "ExecRequest": ("tuibox.runtime.process.exec", "ExecRequest"),
    "ExecHandle": ("tuibox.runtime.process.exec", "ExecHandle"),
    "BoxRecord": ("tuibox.runtime.state", "BoxRecord"),
    "Spec": ("tuibox.runtime.spec_model", "Spec"),
    "load_spec": ("tuibox.runtime.spec", "load_spec"),
    "parse_spec": ("tuibox.runtime.spec", "parse_spec"),
    "starter_spec": ("tuibox.runtime.spec", "starter_spec"),
    "GUARDS": ("tuibox.runtime.guards", "GUARDS"),
    "can": ("tuibox.runtime.guards", "can"),
}
for _name in __all__:
    _WHERE.setdefault(_name, (_ERRORS, _name))
del _name


def __getattr__(name: str) -> object:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'tuibox.runtime' has no attribute {name!r}")
    value: object = getattr(__import__(where[0], fromlist=[where[1]]), where[1])
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
