"""How numbers, times and states look in the TUI (pure functions, shared by every screen)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

# Named colours rather than theme variables: DataTable cells are Rich renderables, and these
# read well on both the dark and the light built-in themes.
STATUS_STYLES: dict[str, str] = {
    "running": "bold green",
    "paused": "bold yellow",
    "created": "bold cyan",
    "creating": "magenta",
    "stopped": "red",
    "destroying": "magenta",
    "debris": "bold red",  # a killed create/destroy: `destroy --force` or `gc --yes`
    "unknown": "bold red",  # an unreadable record
}

STATUS_ORDER = {
    "running": 0,
    "paused": 1,
    "created": 2,
    "creating": 3,
    "stopped": 4,
    "destroying": 5,
    "debris": 6,
    "unknown": 7,
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, "dim"))


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"  # pragma: no cover - loop always returns


def human_duration(seconds: float | None, coarse: bool = False) -> str:
    """'5m03s'; coarse ('5m') for tables, where a cell changing every second costs a repaint."""
    if seconds is None or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" if coarse else f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def since(start: datetime | None, now: datetime) -> float | None:
    if start is None:
        return None
    return (now - start).total_seconds()


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def memory_text(usage: int | None, limit: int | None) -> str:
    if usage is None:
        return "-"
    return f"{human_bytes(usage)} / {human_bytes(limit)}" if limit else human_bytes(usage)


def percent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"
