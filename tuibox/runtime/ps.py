"""ps: every process of a box, from its cgroup, described from /proc (no subprocess).

For each host pid in cgroup.procs: /proc/PID/stat (state, ppid, CPU times, start, RSS),
/proc/PID/status (NSpid: the pid inside the box; Uid) and /proc/PID/cmdline. User names come
from the box's own /etc/passwd, read through /proc/<init>/root with symlinks resolved inside
the box. CPU% is averaged over the process's life, as ps(1) shows it; `cpu_time` (seconds) lets
a poller compute the CPU % between two of its polls instead.

Each pid is given in both namespaces: `pid`/`ppid` on the host, `box_pid`/`box_ppid` inside the
box. A parent outside the box's pid namespace (the host side of `exec`, init's monitor) has no
pid inside it: `box_ppid` is 0 there, as getppid() returns in the box.
"""

from __future__ import annotations

import os
import time

from tuibox.runtime.linux.paths import resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FIELDS = (
    "pid",
    "box_pid",
    "ppid",
    "box_ppid",
    "user",
    "state",
    "cpu_percent",
    "cpu_time",
    "rss",
    "started",
    "command",
)


def boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


def uptime() -> float:
    with open("/proc/uptime", "rb") as f:
        return float(f.read().split()[0])


def passwd_names(root: str) -> dict[int, str]:
    """uid -> name from <root>/etc/passwd; empty when there is none."""
    out: dict[int, str] = {}
    try:
        with open(resolve_in_root(root, "/etc/passwd"), "rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def parse_stat(raw: bytes) -> tuple[str, list[bytes]]:
    """(comm, fields after comm) of a /proc/PID/stat line; comm may hold ') '."""
    start = raw.find(b"(")
    end = raw.rfind(b")")
    return raw[start + 1 : end].decode(errors="replace"), raw[end + 2 :].split()


def parse_status(text: str) -> tuple[int, int, int]:
    """(pid in the innermost namespace, real uid, pid namespace depth) from /proc/PID/status."""
    box_pid = uid = 0
    depth = 1
    for line in text.splitlines():
        if line.startswith("NSpid:"):
            pids = line.split()[1:]
            box_pid, depth = int(pids[-1]), len(pids)
        elif line.startswith("Uid:"):
            uid = int(line.split()[1])
    return box_pid, uid, depth


def describe(pid: int, names: dict[int, str], now_up: float, btime: float) -> dict[str, Any] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            comm, fields = parse_stat(f.read())
        with open(f"/proc/{pid}/status") as f:
            box_pid, uid, depth = parse_status(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError, IndexError):
        return None  # it exited while we looked
    ticks = int(fields[11]) + int(fields[12])
    start = int(fields[19]) / HZ
    alive_for = max(now_up - start, 1e-9)
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return {
        "pid": pid,
        "box_pid": box_pid,
        "ppid": int(fields[1]),
        # Filled by processes(), which knows the other processes of the box; -depth meanwhile.
        "box_ppid": -depth,
        "user": names.get(uid, str(uid)),
        "state": fields[0].decode(),
        "cpu_percent": round(ticks / HZ / alive_for * 100, 1),
        "cpu_time": ticks / HZ,
        "rss": int(fields[21]) * PAGE,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(btime + start)),
        "command": " ".join(args) if args else f"[{comm}]",
    }


def processes(pids: list[int], init_pid: int) -> list[dict[str, Any]]:
    names = passwd_names(f"/proc/{init_pid}/root") if init_pid > 0 else {}
    now_up = uptime()
    btime = boot_time()
    rows = [r for r in (describe(pid, names, now_up, btime) for pid in sorted(pids)) if r]
    box_pid_of = {r["pid"]: r["box_pid"] for r in rows}
    for r in rows:
        if r["box_ppid"] == -1:  # no pid namespace of its own: the host's pids are the box's
            r["box_ppid"] = r["ppid"]
        else:
            # The box's processes share its cgroup; a parent outside it is outside the box.
            r["box_ppid"] = box_pid_of.get(r["ppid"], 0)
    return rows
