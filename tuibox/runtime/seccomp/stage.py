"""The seccomp stage: compile the box's filter before the fork, load it in the init.

Compiling (libseccomp, compile.py) happens here in the parent, so a profile libseccomp
refuses is one error before any process exists; the init only loads the bytes (load.py).
Where the init loads them follows runc: with process.noNewPrivileges as late as possible
(right before execve, after the start wait), so the filter never sees our Python;
without it before the user changes, while the init still has CAP_SYS_ADMIN, which the kernel
then requires. `exec` loads the same program the same way (`record.extra["seccomp"]`).

Compiling docker's default profile costs ~9 ms here, so programs are cached in the state
root (`.seccomp/<sha256>.bpf`, 0600 in a 0700 dir), keyed by the checked profile, the
machine and the libseccomp file: a default box costs a file read.

SCMP_ACT_NOTIFY: the parent connects to the agent's `listenerPath` before the fork (one
error line when nobody listens); the init sends the notification fd and the spec's
containerProcessState on that socket right after loading the filter, then closes both.
"""

from __future__ import annotations

import _sha256
import os

from tuibox.runtime.errors import SpecError
from tuibox.runtime.seccomp.load import connect_agent, record_entry
from tuibox.runtime.seccomp.profile import flag_bits, machine
from tuibox.runtime.stages.base import SetupContext, Stage
from tuibox.runtime.state import atomic_write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.spec_model import Seccomp

CACHE_DIR = ".seccomp"
_LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib64",
    "/lib",
)


def _library_id() -> str | None:
    """Which libseccomp would compile: the cache must not outlive an upgrade of it."""
    for d in _LIB_DIRS:
        try:
            st = os.stat(os.path.join(d, "libseccomp.so.2"))
        except OSError:
            continue
        return f"{d}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    return None


def program_for(seccomp: Seccomp, state_root: str | None) -> bytes:
    """The compiled filter, from the cache under `state_root` when there is one."""
    lib = _library_id()
    path = None
    if state_root is not None and lib is not None:
        key = _sha256.sha256(f"1\0{machine()}\0{lib}\0{seccomp!r}".encode()).hexdigest()
        path = os.path.join(state_root, CACHE_DIR, key + ".bpf")
        try:
            with open(path, "rb") as f:
                cached = f.read()
            if cached and len(cached) % 8 == 0:
                return cached
        except OSError:
            pass
    from tuibox.runtime.seccomp.compile import compile_filter

    program = compile_filter(seccomp)
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            atomic_write(path, program, 0o600)
        except OSError:
            pass  # a read-only state root only costs the compile next time
    return program


def _wanted(req: CreateRequest) -> bool:
    return req.spec.linux.seccomp is not None


def _prepare(ctx: SetupContext) -> None:
    seccomp = ctx.request.spec.linux.seccomp
    if seccomp is None:
        return
    program = program_for(seccomp, ctx.runtime.root.path)
    flags = flag_bits(seccomp)
    ctx.plan.seccomp = (program, flags)
    listener = None
    if seccomp.listener_path is not None and seccomp.notifies():
        listener = (seccomp.listener_path, seccomp.listener_metadata)
        try:
            sock = connect_agent(seccomp.listener_path)
        except OSError as e:
            raise SpecError(e.strerror or str(e)) from None
        ctx.plan.keep_fds.add(sock)
        state: dict[str, object] = {
            "ociVersion": "1.0.2",
            "id": ctx.record.id,
            "status": "creating",
            "bundle": ctx.record.bundle,
            "annotations": dict(ctx.record.annotations),
        }
        ctx.plan.seccomp_agent = (sock, state, seccomp.listener_metadata)
        ctx.undo.callback(_close_agent, ctx.plan)
    ctx.record.extra["seccomp"] = record_entry(
        program, flags, listener, ctx.request.seccomp_profile
    )


def _attach(ctx: SetupContext) -> None:
    # The init has its copy of the agent's socket by now; ours goes (the forked init keeps
    # its own plan, so forgetting it here changes nothing there).
    _close_agent(ctx.plan)


def _close_agent(plan: InitPlan) -> None:
    if plan.seccomp_agent is not None:
        sock = plan.seccomp_agent[0]
        plan.seccomp_agent = None  # closed once: the number may be reused afterwards
        try:
            os.close(sock)
        except OSError:
            pass


STAGE = Stage("seccomp", _wanted, _prepare, _attach)
