"""AppArmor and SELinux: is the LSM on, and the label the next execve takes.

What runc 1.1 does, and so tuibox: an AppArmor profile is asked for by writing
"exec <profile>" to /proc/self/attr/apparmor/exec (attr/exec on kernels older than 5.8, which
lack the per-LSM directory); an SELinux process label by writing it to /proc/self/attr/exec;
both take effect at the next execve, and both are written before the uid changes. An SELinux
mount label becomes a `context="..."` option of the box's new filesystems (not of proc, sysfs,
cgroup, mqueue or bind mounts, as runc). Where the host lacks the LSM runc fails to create
the container (AppArmor: the write fails with EINVAL; SELinux: refused up front); tuibox
refuses up front, naming the field (`check_host`), before anything exists.

Paths are parameters so the writes can be tested on a fake tree. Imported by the init before
the fork, so os only.
"""

from __future__ import annotations

import os

from tuibox.runtime.spec_model import Mount

ATTR = "/proc/self/attr"
APPARMOR_PARAM = "/sys/module/apparmor/parameters/enabled"
PROC = "/proc"

# runc's rule: these filesystems take no SELinux context option (the kernel labels them).
_UNLABELLED = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "mqueue"})


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def apparmor_enabled(param: str = APPARMOR_PARAM) -> bool:
    """The kernel has AppArmor and it is on (runc's test, without securityfs, which hosts
    do not always mount)."""
    text = _read(param)
    return text is not None and text.startswith("Y")


def selinux_enabled(proc: str = PROC) -> bool:
    """selinuxfs is mounted and this process has a label other than "kernel" (go-selinux)."""
    filesystems = _read(f"{proc}/filesystems") or ""
    if "\tselinuxfs\n" not in filesystems:
        return False
    mountinfo = _read(f"{proc}/self/mountinfo") or ""
    if " - selinuxfs " not in mountinfo:
        return False
    current = _read(f"{proc}/self/attr/current")
    return current is not None and current.rstrip("\0\n") not in ("", "kernel")


def host_problem(
    apparmor: str | None,
    selinux: str | None,
    mount_label: str | None,
    param: str = APPARMOR_PARAM,
    proc: str = PROC,
) -> tuple[str, str] | None:
    """(field, why) for the first label this host cannot apply, else None."""
    if apparmor and not apparmor_enabled(param):
        return (
            "process.apparmorProfile",
            "AppArmor is not enabled on this host, so the profile cannot be applied "
            "(runc 1.1 fails the same way)",
        )
    if (selinux or mount_label) and not selinux_enabled(proc):
        field = "process.selinuxLabel" if selinux else "linux.mountLabel"
        return field, "SELinux is not enabled on this host (runc 1.1 refuses it too)"
    return None


def _write_attr(path: str, value: str, field: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as e:
        raise OSError(e.errno, f"{field}: cannot open {path}: {e.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise OSError(e.errno, f"{field}: the kernel refused {value!r}: {e.strerror}") from None
    finally:
        os.close(fd)


def set_exec_labels(apparmor: str | None, selinux: str | None, attr: str = ATTR) -> None:
    """Ask for the AppArmor profile and the SELinux label of the next execve."""
    if apparmor:
        path = f"{attr}/apparmor/exec"
        if not os.path.exists(path):
            path = f"{attr}/exec"  # before Linux 5.8 the LSMs shared this file
        _write_attr(path, f"exec {apparmor}", "process.apparmorProfile")
    if selinux:
        _write_attr(f"{attr}/exec", selinux, "process.selinuxLabel")


def labelled_mounts(mounts: tuple[Mount, ...], label: str | None) -> tuple[Mount, ...]:
    """The mounts with `context="label"` added where runc adds it."""
    if not label:
        return mounts
    out = []
    for m in mounts:
        bind = m.type == "bind" or any(o in ("bind", "rbind") for o in m.options)
        if bind or m.type in _UNLABELLED:
            out.append(m)
        else:
            # quoted: an MLS label holds commas (s0:c1,c2), which would split the options
            out.append(m.replace(options=(*m.options, f'context="{label}"')))
    return tuple(out)
