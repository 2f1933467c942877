"""OCI hooks: programs a config.json asks the runtime to run at points of a box's life.

Loaded only for a spec that has hooks (box.py, process/init.py): a plain `tuibox run` pays
nothing for it. Where each kind runs (runtime-spec config.md, runc 1.1 as the reference):

- prestart, createRuntime: in the runtime's namespaces (the CLI), once the box's namespaces
  and cgroups exist, before its pivot_root; state `creating`; a failure fails the create.
- createContainer: in the box's mount namespace before pivot_root (host paths still seen),
  after createRuntime; state `creating`; a failure fails the create.
- startContainer: inside the box (its root, its user), at `start`, just before the program's
  execve; state `created`; a failure makes the box's init exit 1 instead of running it.
- poststart: in the runtime's namespaces once `start` released the program; state
  `running`; a failure is a warning (as runc).
- poststop: in the runtime's namespaces at `destroy` (and a run's removal), after the
  teardown; state `stopped`; a failure is a warning.

Each hook gets the state JSON (ociVersion, id, status, pid, bundle, annotations) on stdin,
its own `args` (argv[0] included; none: the path) and `env` (none: the runtime's own, as runc);
its stdout and stderr are kept for the error. `timeout` (seconds) kills it with SIGKILL.
"""

from __future__ import annotations

import _signal
import json
import os
import select
import time

from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from tuibox.runtime.spec_model import Hook, Spec
    from tuibox.runtime.state import BoxRecord

# Kinds whose failure is only reported (runc: warnings), not an error of the operation.
WARN_ONLY = frozenset({"poststart", "poststop"})
_OUTPUT_KEPT = 4096


class HookError(TuiboxError):
    """A hook failed, timed out or could not be run; the message names it (hooks.KIND[i])."""


def state_json(
    oci_version: str,
    name: str,
    status: str,
    pid: int,
    bundle: str,
    annotations: Mapping[str, str],
) -> bytes:
    state: dict[str, object] = {"ociVersion": oci_version, "id": name, "status": status}
    if status != "stopped":
        state["pid"] = pid
    state["bundle"] = bundle
    if annotations:
        state["annotations"] = dict(annotations)
    return json.dumps(state).encode()


def to_record(hooks: Mapping[str, tuple[Hook, ...]]) -> dict[str, list[dict[str, object]]]:
    """The kinds that run after create (poststart, poststop), as the record keeps them."""
    out: dict[str, list[dict[str, object]]] = {}
    for kind in ("poststart", "poststop"):
        if kind in hooks:
            out[kind] = [
                {"path": h.path, "args": list(h.args), "env": list(h.env), "timeout": h.timeout}
                for h in hooks[kind]
            ]
    return out


def from_record(kept: object, kind: str) -> tuple[Hook, ...]:
    from tuibox.runtime.spec_model import Hook

    if not isinstance(kept, dict) or not isinstance(kept.get(kind), list):
        return ()
    out = []
    for item in kept[kind]:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            timeout = item.get("timeout")
            out.append(
                Hook(
                    item["path"],
                    tuple(str(a) for a in item.get("args") or ()),
                    tuple(str(e) for e in item.get("env") or ()),
                    timeout if isinstance(timeout, int) else None,
                )
            )
    return tuple(out)


def run_hooks(kind: str, hooks: tuple[Hook, ...], state: bytes) -> None:
    """Run one kind's hooks in order. The first failure raises HookError, or, for
    poststart/poststop, is written as a warning on stderr and the next hook runs."""
    for i, hook in enumerate(hooks):
        try:
            run_one(hook, state, f"hooks.{kind}[{i}]")
        except HookError as e:
            if kind not in WARN_ONLY:
                raise
            os.write(2, f"tuibox: warning: {e}\n".encode())


def run_one(hook: Hook, state: bytes, field: str) -> None:
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    argv = list(hook.args) or [hook.path]
    env = dict(e.split("=", 1) for e in hook.env if "=" in e) if hook.env else dict(os.environ)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        try:
            os.dup2(stdin_r, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            sc.close_range(3)  # nothing of ours (nor an engine's inheritable fds) past 0-2
            os.setpgid(0, 0)  # a timeout kills the hook's whole group, not the hook alone
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT, _signal.SIGTERM):
                _signal.signal(sig, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
            os.execve(hook.path, argv, env)
        except OSError as e:
            os.write(2, f"cannot run it: {os.strerror(e.errno or 0).lower()}".encode())
        os._exit(127)
    os.close(stdin_r)
    os.close(out_w)
    try:
        _feed(stdin_w, state)
        status, output, timed_out = _wait(pid, out_r, hook.timeout)
    finally:
        os.close(out_r)
    if timed_out:
        raise HookError(f"{field} {hook.path}: timed out after {hook.timeout}s")
    if status != 0:
        text = output.decode(errors="replace").strip().replace("\n", " | ")
        how = (
            f"exited {os.waitstatus_to_exitcode(status)}"
            if os.WIFEXITED(status)
            else f"killed by signal {os.WTERMSIG(status)}"
        )
        raise HookError(f"{field} {hook.path}: {how}" + (f": {text}" if text else ""))


def _feed(fd: int, state: bytes) -> None:
    # A hook that exits without reading its stdin must not kill us with SIGPIPE (the init
    # runs with SIGPIPE at its default).
    old = _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        view = memoryview(state)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass
    finally:
        os.close(fd)
        _signal.signal(_signal.SIGPIPE, old)


def _wait(pid: int, out: int, timeout: int | None) -> tuple[int, bytes, bool]:
    """(wait status, first bytes of output, timed out). A daemon the hook leaves holding
    its stdout does not keep us waiting: the hook's own exit ends the wait."""
    deadline = None if timeout is None else time.monotonic() + timeout
    kept = bytearray()
    open_out = True
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if open_out:
                os.set_blocking(out, False)
                try:
                    while len(kept) < _OUTPUT_KEPT and (chunk := os.read(out, 4096)):
                        kept += chunk
                except BlockingIOError:
                    pass
            return status, bytes(kept[:_OUTPUT_KEPT]), False
        if deadline is not None and time.monotonic() >= deadline:
            try:
                os.killpg(pid, _signal.SIGKILL)
            except OSError:
                os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            return 0, b"", True
        wait = 0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic()))
        if open_out:
            ready, _, _ = select.select([out], [], [], wait)
            if ready:
                chunk = os.read(out, 4096)
                if chunk:
                    if len(kept) < _OUTPUT_KEPT:
                        kept += chunk
                else:
                    open_out = False
        elif deadline is None:
            # the output is closed: only its exit is left to wait for
            _, status = os.waitpid(pid, 0)
            return status, bytes(kept[:_OUTPUT_KEPT]), False
        else:
            time.sleep(min(wait, 0.005))


def at_create(spec: Spec, record: BoxRecord, pid: int) -> None:
    """prestart and createRuntime hooks (the parent, once the box's namespaces and cgroups
    exist); keeps poststart/poststop in the record for `start` and `destroy`."""
    kept = to_record(spec.hooks)
    if kept:
        record.extra["hooks"] = kept
        record.extra["oci_version"] = spec.oci_version
    if "prestart" in spec.hooks or "createRuntime" in spec.hooks:
        state = state_json(
            spec.oci_version, record.id, "creating", pid, record.bundle, spec.annotations
        )
        for kind in ("prestart", "createRuntime"):
            run_hooks(kind, spec.hooks.get(kind, ()), state)


def after_failed_create(spec: Spec, name: str) -> None:
    """poststop hooks once a failed create is undone (runc runs them there too)."""
    state = state_json(spec.oci_version, name, "stopped", 0, spec.bundle, spec.annotations)
    run_hooks("poststop", spec.hooks["poststop"], state)


def from_box(record: BoxRecord, kind: str, status: str) -> None:
    """poststart or poststop hooks kept in a box's record; failures are warnings."""
    hooks = from_record(record.extra.get("hooks"), kind)
    if hooks:
        version = record.extra.get("oci_version")
        state = state_json(
            version if isinstance(version, str) else "1.0.2",
            record.id,
            status,
            record.pid,
            record.bundle,
            record.annotations,
        )
        run_hooks(kind, hooks, state)
