"""stats: CPU %, memory, pids, network and block I/O of boxes, cheap enough to poll.

Per box and sample: a handful of small cgroup files (paths kept in the record, so no mountinfo
parsing) and /proc/<init>/net/dev, which shows the init's network namespace when read from
the host (no setns, no subprocess). CPU % needs two samples: `collect` takes one sample of
every box, sleeps once, takes another; a stream reuses the previous sample.
"""

from __future__ import annotations

import os
import time

from tuibox.runtime.cgroups import fs
from tuibox.runtime.cgroups.group import BoxCgroup, CgroupStats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.state import BoxRecord

FIELDS = (
    "id",
    "cpu_percent",
    "memory_usage",
    "memory_limit",
    "pids",
    "net_rx",
    "net_tx",
    "block_read",
    "block_write",
)


def parse_net_dev(text: str) -> tuple[int, int]:
    """(rx bytes, tx bytes) over every interface but lo."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        cols = rest.split()
        if len(cols) >= 9:
            rx += int(cols[0])
            tx += int(cols[8])
    return rx, tx


_OWN_NET: list[int] = []


def net_io(pid: int) -> tuple[int, int]:
    """The box's traffic; (0, 0) when it shares the host's network namespace."""
    if pid <= 0:
        return 0, 0
    try:
        if not _OWN_NET:
            _OWN_NET.append(os.stat("/proc/self/ns/net").st_ino)
        if os.stat(f"/proc/{pid}/ns/net").st_ino == _OWN_NET[0]:
            return 0, 0
        return parse_net_dev(fs.read(f"/proc/{pid}/net/dev"))
    except (OSError, ValueError):
        return 0, 0


class Sample:
    __slots__ = ("cg", "net", "t")

    def __init__(self, t: float, cg: CgroupStats, net: tuple[int, int]) -> None:
        self.t = t
        self.cg = cg
        self.net = net


def sample(record: BoxRecord) -> Sample | None:
    cg = BoxCgroup.from_record(record.extra)
    if cg is None or record.status == "stopped":
        return None
    return Sample(time.monotonic(), cg.stats(), net_io(record.pid))


def row(record: BoxRecord, now: Sample | None, before: Sample | None) -> dict[str, Any]:
    """One box's stats as the CLI's JSON and the TUI show them."""
    out: dict[str, Any] = {
        "id": record.id,
        "cpu_percent": 0.0,
        "memory_usage": 0,
        "memory_limit": None,
        "pids": 0,
        "net_rx": 0,
        "net_tx": 0,
        "block_read": 0,
        "block_write": 0,
    }
    if now is None:
        return out
    if before is not None and now.t > before.t:
        used = max(now.cg.cpu_ns - before.cg.cpu_ns, 0) / 1e9
        out["cpu_percent"] = round(used / (now.t - before.t) * 100, 1)
    out.update(
        memory_usage=now.cg.memory_usage,
        memory_limit=now.cg.memory_limit,
        pids=now.cg.pids,
        net_rx=now.net[0],
        net_tx=now.net[1],
        block_read=now.cg.block_read,
        block_write=now.cg.block_write,
    )
    return out


def collect(records: list[BoxRecord], interval: float = 0.2) -> list[dict[str, Any]]:
    """One row per box, CPU % over `interval` seconds (one sleep for all boxes)."""
    first = {r.id: sample(r) for r in records}
    if interval > 0 and any(first.values()):
        time.sleep(interval)
    return [row(r, sample(r), first[r.id]) for r in records]
