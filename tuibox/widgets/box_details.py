"""The details pane of the selected box: spec summary, namespaces, mounts, limits, network."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tuibox.service import BoxRow, SpecSummary
from tuibox.widgets.format import human_bytes, human_duration, since, status_text
from tuibox.widgets.quiet import show
from tuibox.widgets.sparklines import StatsHistory, StatsSparklines


def local_time(when: datetime | None) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if when else "-"


def describe(box: BoxRow, spec: SpecSummary | None, now: datetime) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: str | Text) -> None:
        grid.add_row(label, value)

    state = status_text(box.status)
    if box.status in ("running", "paused"):
        state.append(f"  up {human_duration(since(box.started, now))}", style="default")
    row("box", Text(box.name, style="bold"))
    # Where to reach the box first: the pane is short, and these are what users look for.
    row("address", box.address or "no network")
    row("ports", ", ".join(box.ports) or "-")
    row("state", state)
    row("pid", str(box.pid) if box.pid else "-")
    exit_text = "-" if box.exit_status is None else str(box.exit_status)
    row("exit status", exit_text + (", OOM killed" if box.oom_killed else ""))
    if box.restart_policy:
        restarts = f"{box.restart_policy}, {box.restarts} restart{'' if box.restarts == 1 else 's'}"
        if box.last_exit is not None:
            restarts += f", last exit {box.last_exit}"
        row("restart", restarts)
    row("image", box.image or "-")
    row("rootfs", box.rootfs or "-")
    row("bundle", box.bundle or "-")
    row("command", " ".join(box.command) or "-")
    row("hostname", box.hostname or "-")
    row("terminal", "yes" if box.terminal else "no")
    row("created", local_time(box.created))
    row("namespaces", " ".join(box.namespaces or (spec.namespaces if spec else ())) or "-")
    row("cgroup", box.cgroup or "-")
    lim = box.limits
    row(
        "limits",
        f"memory {human_bytes(lim.memory) if lim.memory else 'none'}, "
        f"cpus {lim.cpus if lim.cpus else 'none'}, "
        f"pids {lim.pids if lim.pids else 'none'}",
    )
    row("log", box.log or "-")
    parts: list[RenderableType] = [grid]
    if spec is not None:
        spec_grid = Table.grid(padding=(0, 1))
        spec_grid.add_column(style="bold", no_wrap=True)
        spec_grid.add_column(overflow="fold")
        spec_grid.add_row("user", spec.user)
        spec_grid.add_row("cwd", spec.cwd)
        spec_grid.add_row("root", f"{spec.root}{' (read-only)' if spec.readonly else ''}")
        spec_grid.add_row("env", f"{len(spec.env)} variables")
        parts += [Text("\nspec", style="bold underline"), spec_grid]
        if spec.mounts:
            mounts = Table("destination", "type", "source", box=None, pad_edge=False)
            for m in spec.mounts:
                mounts.add_row(m.destination, m.type, m.source)
            parts += [Text("\nmounts", style="bold underline"), mounts]
    else:
        parts.append(Text("\nmounts: not known (no config.json found)", style="dim"))
    return Group(*parts)


class BoxDetails(Horizontal):
    """Text on the left, live sparklines on the right."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shape: tuple[str, SpecSummary | None] | None = None
        self._key: object = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details-text"):
            yield Static("No box selected.", id="details-body")
        yield StatsSparklines(id="details-stats")

    def show(
        self,
        box: BoxRow | None,
        spec: SpecSummary | None,
        now: datetime,
        history: StatsHistory,
        stats_reason: str | None = None,
    ) -> None:
        body = self.query_one("#details-body", Static)
        title = f"details · {box.name}" if box else "details"
        if self.border_title != title:
            self.border_title = title
        if box is None:
            self._key = None
            show(body, "No box selected. Press c to create one.")
        else:
            # Same box and spec: the same lines, so no screen layout is needed for the update.
            up = human_duration(since(box.started, now))
            same_shape = self._shape == (box.name, spec)
            self._shape = (box.name, spec)
            key = (box, spec, up)
            if key != self._key:  # describing costs more than comparing: only on a change
                self._key = key
                show(body, describe(box, spec, now), key=key, layout=not same_shape)
        self.query_one(StatsSparklines).show(box.name if box else None, history, stats_reason)
