"""tuibox's runtime as a library: make, run and inspect boxes from Python without a screen.

    from tuibox.runtime import BoxRequest, Runtime

    rt = Runtime(root="/tmp/state", data_root="/tmp/data")
    req = BoxRequest.from_image("hello", "busybox", ["echo", "hi"], data_root=rt.data_root,
                                root=rt.root.path, memory="64m", detach=False)
    code = rt.run(req)

`BoxRequest` builders (runtime/request.py): from_bundle, from_rootfs, from_image, each with
the same keyword options (limits, network, ports, env, user, terminal, seccomp, userns...).
`Runtime` verbs: create, start, run, kill, stop, destroy, get, state, list, exec, ps, stats,
stats_stream, wait, kill_processes, pause, resume, update, logs, attach (a socket speaking
the console protocol: FrameReader, send_input, send_resize). docs/API.md has examples.
`inspect_box(runtime, name, show_env=False)` gathers what only the runtime knows about a box
(namespaces, cgroup limits and usage, mounts, capabilities, seccomp, network, env masked).
`parse_size` and `parse_signal` are the parsers the CLI and the TUI use.

The forking verbs (create, run, exec) must be called from a single-threaded process:
forking a process that has threads is unsafe, and they refuse with a TuiboxError when
other threads are running.

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
    |   +-- CgroupUnsupported        (also an Unsupported) the host lacks the controller
    +-- ImageError                   image store, import or rootfs problems
    +-- Unsupported                  this host cannot do it (kind "unsupported")
    +-- CorruptRecord                a box's state.json is unreadable (list: unknown)
    +-- TeardownError                destroy could not release some resources (one line each)
    +-- ResourceTeardownError        one resource a stage could not remove (names it)

Every error has a `kind` attribute (`KINDS` lists them): branch on it or on the class, never
on the message.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.console import FrameReader, send_input, send_resize
    from tuibox.runtime.errors import (
        KINDS,
        BoxExists,
        BoxNotFound,
        CgroupError,
        CgroupUnsupported,
        CommandNotExecutable,
        CommandNotFound,
        CorruptRecord,
        ImageError,
        InitError,
        InvalidName,
        InvalidState,
        NetworkError,
        ResourceTeardownError,
        SpecError,
        TeardownError,
        TuiboxError,
        Unsupported,
    )
    from tuibox.runtime.guards import GUARDS, can
    from tuibox.runtime.inspect import inspect as inspect_box
    from tuibox.runtime.process.exec import ExecHandle, ExecRequest
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.request import CreateRequest as BoxRequest
    from tuibox.runtime.spec import load_spec, parse_spec, starter_spec
    from tuibox.runtime.spec_model import Spec
    from tuibox.runtime.state import BoxRecord
    from tuibox.runtime.units import parse_signal, parse_size

__all__ = [
    "GUARDS",
    "KINDS",
    "BoxExists",
    "BoxNotFound",
    "BoxRecord",
    "BoxRequest",
    "CgroupError",
    "CgroupUnsupported",
    "CommandNotExecutable",
    "CommandNotFound",
    "CorruptRecord",
    "CreateRequest",
    "ExecHandle",
    "ExecRequest",
    "FrameReader",
    "ImageError",
    "InitError",
    "InvalidName",
    "InvalidState",
    "NetworkError",
    "ResourceTeardownError",
    "Runtime",
    "Spec",
    "SpecError",
    "TeardownError",
    "TuiboxError",
    "Unsupported",
    "can",
    "inspect_box",
    "load_spec",
    "parse_signal",
    "parse_size",
    "parse_spec",
    "send_input",
    "send_resize",
    "starter_spec",
]

_ERRORS = "tuibox.runtime.errors"
# public name -> (module, attribute): imported only when first asked for.
_WHERE: dict[str, tuple[str, str]] = {
    "Runtime": ("tuibox.runtime.box", "Runtime"),
    # The public name of the request and its builders (from_bundle, from_rootfs, from_image).
    "BoxRequest": ("tuibox.runtime.request", "CreateRequest"),
    "CreateRequest": ("tuibox.runtime.request", "CreateRequest"),
    "ExecRequest": ("tuibox.runtime.process.exec", "ExecRequest"),
    "ExecHandle": ("tuibox.runtime.process.exec", "ExecHandle"),
    "BoxRecord": ("tuibox.runtime.state", "BoxRecord"),
    "Spec": ("tuibox.runtime.spec_model", "Spec"),
    "inspect_box": ("tuibox.runtime.inspect", "inspect"),
    "load_spec": ("tuibox.runtime.spec", "load_spec"),
    "parse_spec": ("tuibox.runtime.spec", "parse_spec"),
    "starter_spec": ("tuibox.runtime.spec", "starter_spec"),
    "GUARDS": ("tuibox.runtime.guards", "GUARDS"),
    "can": ("tuibox.runtime.guards", "can"),
    "parse_size": ("tuibox.runtime.units", "parse_size"),
    "parse_signal": ("tuibox.runtime.units", "parse_signal"),
    "FrameReader": ("tuibox.runtime.console", "FrameReader"),
    "send_input": ("tuibox.runtime.console", "send_input"),
    "send_resize": ("tuibox.runtime.console", "send_resize"),
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
