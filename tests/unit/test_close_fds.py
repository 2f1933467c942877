"""close_fds_except: every descriptor above 2 but the kept ones, however high, with
close_range and with the /proc/self/fd walk a kernel without it gets."""

from __future__ import annotations

import ast
import errno
import os
import resource

import pytest

from tuibox.runtime.linux import syscalls as sc


@pytest.mark.parametrize("close_range", ["kernel", "missing"])
def test_only_kept_descriptors_survive(close_range: str) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(r)
            high = os.dup2(os.open("/", os.O_RDONLY | os.O_DIRECTORY), soft - 1)
            kept = os.dup(w)
            if close_range == "missing":

                def enosys(*_args: object) -> None:
                    raise OSError(errno.ENOSYS, "close_range")

                sc.close_range = enosys  # type: ignore[assignment]
            sc.close_fds_except({kept})
            left = sorted(int(f) for f in os.listdir("/proc/self/fd"))
            os.write(kept, repr((left, kept, os.get_inheritable(kept), high)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        out = f.read()
    assert os.waitstatus_to_exitcode(status) == 0
    left, kept, inheritable, high = ast.literal_eval(out)
    assert high == soft - 1  # the directory was parked as high as this process may go
    # besides 0-2 and the kept one, only listdir's own handle (the lowest free number)
    others = set(left) - {0, 1, 2, kept}
    assert len(others) == 1 and min(others) <= 4, left
    assert not inheritable
