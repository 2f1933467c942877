"""Per-box CPU and memory history, and the sparklines that draw it.

The runtime's `stats` is a snapshot; the history lives in the app so it survives screen
changes and covers the last minutes (one sample per refresh).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from tuibox.service import StatsRow
from tuibox.widgets.format import human_bytes, memory_text, percent_text
from tuibox.widgets.quiet import show

HISTORY = 300  # samples: five minutes at the one-second refresh


class StatsHistory:
    def __init__(self, size: int = HISTORY) -> None:
        self.size = size
        self.cpu: dict[str, deque[float]] = {}
        self.memory: dict[str, deque[float]] = {}
        self.latest: dict[str, StatsRow] = {}

    def record(self, rows: Iterable[StatsRow], alive: Iterable[str] | None = None) -> None:
        for row in rows:
            self.cpu.setdefault(row.id, deque(maxlen=self.size)).append(row.cpu_percent)
            self.memory.setdefault(row.id, deque(maxlen=self.size)).append(float(row.memory_usage))
            self.latest[row.id] = row
        if alive is not None:
            # Forget destroyed boxes, or a long session would keep every name ever seen.
            keep = set(alive)
            for table in (self.cpu, self.memory, self.latest):
                for name in [n for n in table if n not in keep]:
                    del table[name]

    def cpu_of(self, name: str) -> list[float]:
        return list(self.cpu.get(name, ()))

    def memory_of(self, name: str) -> list[float]:
        return list(self.memory.get(name, ()))


def window(samples: list[float], size: int) -> list[float]:
    """A fixed time axis (the whole history, newest on the right), so a bar's position means
    the same age whatever the number of samples; the time before the first sample is 0."""
    if not samples:
        return []
    return [0.0] * (size - len(samples)) + samples[-size:]


class StatsSparklines(Vertical):
    """CPU and memory of one box over time."""

    def compose(self) -> ComposeResult:
        yield Label("CPU", id="cpu-label", classes="spark-label")
        yield Sparkline([], id="cpu-spark")
        yield Label("memory", id="mem-label", classes="spark-label")
        yield Sparkline([], id="mem-spark")

    def show(self, name: str | None, history: StatsHistory, reason: str | None = None) -> None:
        cpu = history.cpu_of(name) if name else []
        mem = history.memory_of(name) if name else []
        latest = history.latest.get(name) if name else None
        if reason and latest is None:
            show(self.query_one("#cpu-label", Label), f"CPU: {reason}", layout=False)
            show(self.query_one("#mem-label", Label), "memory: -", layout=False)
        else:
            peak = max(cpu, default=0.0)
            show(
                self.query_one("#cpu-label", Label),
                f"CPU {percent_text(latest.cpu_percent if latest else None)}"
                f"  (peak {percent_text(peak)}, {len(cpu)} samples)",
                layout=False,  # fixed size in the tcss
            )
            usage = latest.memory_usage if latest else None
            limit = latest.memory_limit if latest else None
            peak_mem = human_bytes(int(max(mem, default=0)))
            show(
                self.query_one("#mem-label", Label),
                f"memory {memory_text(usage, limit)}  (peak {peak_mem})",
                layout=False,
            )
        self.query_one("#cpu-spark", Sparkline).data = window(cpu, history.size)
        self.query_one("#mem-spark", Sparkline).data = window(mem, history.size)
