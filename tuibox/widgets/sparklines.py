"""Per-box CPU and memory history, and the sparklines that draw it.

The runtime's `stats` is a snapshot; the history lives in the app so it survives screen
changes and covers the last minutes (one sample per refresh).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

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


BARS = "▁▂▃▄▅▆▇█"


def bars(samples: list[float], width: int, top: float) -> Text:
    """Samples as bars against a fixed `top` (a limit, or 100 %), not against their own
    range: 124 KiB of a 64 MiB limit is a low bar, not a full one. Each column shows the
    highest sample of its share of the samples."""
    out = Text()
    if width <= 0 or not samples:
        return out
    per = len(samples) / width
    run, run_style = "", ""
    for col in range(width):
        chunk = samples[int(col * per) : max(int((col + 1) * per), int(col * per) + 1)]
        value = max(chunk) if chunk else 0.0
        share = min(max(value / top, 0.0), 1.0) if top > 0 else 0.0
        style = "green" if share < 0.6 else "yellow" if share < 0.85 else "red"
        if style != run_style and run:
            out.append(run, style=run_style)  # one span a run: each span costs a style
            run = ""
        run += BARS[min(int(share * len(BARS)), len(BARS) - 1)]
        run_style = style
    if run:
        out.append(run, style=run_style)
    return out


class ScaledSparkline(Static):
    """A sparkline drawn against a fixed maximum (Textual's scales to the data's range)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.samples: list[float] = []
        self.top = 1.0

    def set_data(self, samples: list[float], top: float) -> None:
        if samples != self.samples or top != self.top:
            self.samples, self.top = samples, top
            self.refresh()

    def render(self) -> Text:
        return bars(self.samples, self.size.width, self.top)


class StatsSparklines(Vertical):
    """CPU and memory of one box over time."""

    def compose(self) -> ComposeResult:
        yield Label("CPU", id="cpu-label", classes="spark-label")
        yield ScaledSparkline(id="cpu-spark")
        yield Label("memory", id="mem-label", classes="spark-label")
        yield ScaledSparkline(id="mem-spark")

    def show(self, name: str | None, history: StatsHistory, reason: str | None = None) -> None:
        cpu = history.cpu_of(name) if name else []
        mem = history.memory_of(name) if name else []
        latest = history.latest.get(name) if name else None
        limit = latest.memory_limit if latest else None
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
            peak_mem = human_bytes(int(max(mem, default=0)))
            scale = "bars: share of the limit" if limit else "bars: share of the peak, no limit"
            show(
                self.query_one("#mem-label", Label),
                f"memory {memory_text(usage, limit)}  (peak {peak_mem}; {scale})",
                layout=False,
            )
        # CPU against one core (more when the box uses several), memory against its limit.
        self.query_one("#cpu-spark", ScaledSparkline).set_data(
            window(cpu, history.size), max(100.0, max(cpu, default=0.0))
        )
        self.query_one("#mem-spark", ScaledSparkline).set_data(
            window(mem, history.size), float(limit) if limit else max(mem, default=0.0) or 1.0
        )
