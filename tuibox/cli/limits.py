"""The resource-limit flags shared by run, create and update (docker's names).

Kept apart and tiny: lifecycle.py builds SPEC_OPTS from LIMIT_OPTS at import, on `run`'s
start-up path; the parsing itself (runtime/cgroups/resources.py, through the request
builder) is imported only when a request is built.
"""

from __future__ import annotations

from tuibox.cli.args import Opt, Options

LIMIT_OPTS = (
    Opt(("-m", "--memory"), "memory", "SIZE", help="memory limit (256m, 1g)"),
    Opt(("--memory-swap",), "memory_swap", "SIZE", help="memory + swap limit (-1: no limit)"),
    Opt(("--cpus",), "cpus", "N", help="CPU limit in CPUs (0.5 = half of one)"),
    Opt(("--cpu-shares",), "cpu_shares", "N", help="relative CPU weight (2-262144)"),
    Opt(("--cpuset-cpus",), "cpuset_cpus", "LIST", help="CPUs the box may use (0-1,3)"),
    Opt(("--cpuset-mems",), "cpuset_mems", "LIST", help="memory nodes the box may use"),
    Opt(("--pids-limit",), "pids_limit", "N", help="most processes at once (-1: no limit)"),
)


class LimitOptions(Options):
    """The fields of LIMIT_OPTS, shared by the options of create, run and update."""

    __slots__ = (
        "cpu_shares",
        "cpus",
        "cpuset_cpus",
        "cpuset_mems",
        "memory",
        "memory_swap",
        "pids_limit",
    )
    memory: str | None
    memory_swap: str | None
    cpus: str | None
    cpu_shares: str | None
    cpuset_cpus: str | None
    cpuset_mems: str | None
    pids_limit: str | None

    def limit_flags(self) -> dict[str, str]:
        """The limit flags given, by dest: what resources.flags_to_raw reads."""
        return {n: v for n in LimitOptions.__slots__ if (v := getattr(self, n)) is not None}
