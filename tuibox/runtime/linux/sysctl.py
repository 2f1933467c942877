"""Per-namespace and per-process kernel knobs the init sets: linux.sysctl, the domain name,
process.oomScoreAdj.

A sysctl under /proc/sys is resolved against the namespaces of the process that opens it
(net.* against its network namespace, the ipc keys against its ipc namespace, the domain name
against its uts namespace), so the init writes them through the host's /proc once it is in
the box's namespaces. Which keys a box may set at all is decided by spec.py (only those a
private namespace owns); the kernel has the last word per key: a net.* entry that is not per
network namespace shows up read-only there (how runc 1.1 learns it too: the write fails).

Paths are parameters for tests. Imported by the init before the fork, so os only.
"""

from __future__ import annotations

import errno
import os

PROC_SYS = "/proc/sys"
OOM_SCORE_ADJ = "/proc/self/oom_score_adj"


def sysctl_path(key: str, proc_sys: str = PROC_SYS) -> str:
    # spec.py allows only dotted names of non-empty components without "/": no "..", no
    # way out of /proc/sys.
    return f"{proc_sys}/{key.replace('.', '/')}"


def apply_sysctls(values: dict[str, str], proc_sys: str = PROC_SYS) -> None:
    for key, value in values.items():
        field = f"linux.sysctl.{key}"
        path = sysctl_path(key, proc_sys)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise OSError(errno.ENOENT, f"{field}: no such sysctl on this kernel") from None
        except PermissionError:
            why = (
                "is not per network namespace on this kernel (only the host's can be set)"
                if key.startswith("net.")
                else "the kernel does not let the box set it"
            )
            raise OSError(errno.EACCES, f"{field}: {why}") from None
        except OSError as e:
            raise OSError(e.errno, f"{field}: cannot open {path}: {e.strerror}") from None
        try:
            os.write(fd, value.encode())
        except OSError as e:
            reason = (e.strerror or "").lower()
            raise OSError(e.errno, f"{field}: the kernel refused {value!r}: {reason}") from None
        finally:
            os.close(fd)


def set_oom_score_adj(value: int, path: str = OOM_SCORE_ADJ) -> None:
    """Write the OOM score adjustment the box's processes inherit."""
    field = "process.oomScoreAdj"
    try:
        with open(path, "rb") as f:
            current = int(f.read().strip() or b"0")
    except (OSError, ValueError):
        current = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except PermissionError:
        # The kernel lets a process without CAP_SYS_RESOURCE raise its score, never lower it
        # below the lowest a privileged process set.
        raise OSError(
            errno.EACCES,
            f"{field}: cannot lower it to {value} (tuibox runs at {current}): "
            "this host does not give CAP_SYS_RESOURCE",
        ) from None
    except OSError as e:
        raise OSError(e.errno, f"{field}: cannot set {value}: {e.strerror}") from None
