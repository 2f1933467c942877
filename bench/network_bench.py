"""What a network adds to `tuibox run`: the same /bin/true bundle with and without
`--network default`, interleaved, medians; beside podman's figure on this kind of machine.

Usage: .venv/bin/python bench/network_bench.py [--rounds N] [--imports] [--inline]

The network is tuibox's default one on a private bridge and subnet (TUIBOX_BRIDGE,
TUIBOX_SUBNET), so a user's tuibox0 is never touched; the bridge is created by the warm-up
run (the first box ever pays for it, as with podman) and removed at the end. Every run is
the network's only box, so each one also creates and deletes the network's nft table (NAT)
and, when ip_forward was 0, sets and restores it: the worst case for the per-box cost.
No traffic is sent anywhere.

--imports also measures what the network path imports: modules and wall time of the import
of the stage and of the netlink worker's modules, against a plain `import pyroute2`.
--inline adds a third case: the netlink work done in the CLI process itself
(TUIBOX_NET_WORKER=0) instead of the forked worker that imports pyroute2 meanwhile.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    REPO,
    TUIBOX,
    interleaved,
    make_bundle,
    report,
    rmtree,
    tempdir,
    time_once,
)

# GUIDE.md section 3: `podman run --rm true`, podman 4.3 with runc on this kind of machine.
PODMAN_NONE_MS = 136.0
PODMAN_BRIDGE_MS = 323.0

BRIDGE = "tbbench0"
SUBNET = "10.213.251.0/24"


def _python_ms(code: str, rounds: int = 15) -> float:
    argv = [sys.executable, "-IS", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {code}"]
    return statistics.median(time_once(argv) for _ in range(rounds)) * 1000


def imports() -> None:
    base = (
        "import tuibox.cli.lifecycle, tuibox.runtime.box, tuibox.runtime.confine, "
        "tuibox.runtime.cgroups.stage"
    )
    venv_site = str(Path(sys.executable).parents[1] / "lib")
    full = f"sys.path += __import__('glob').glob({venv_site!r} + '/python3*/site-packages'); "
    cases = {
        "run path (no network)": base,
        "+ network stage (parent)": base + "; import tuibox.runtime.network.stage",
        "+ netlink worker (rtnl)": base + "; import tuibox.runtime.network.rtnl",
        "+ import pyroute2 (full)": base + "; " + full + "import pyroute2",
    }
    print("\nimports on the network path (python -IS, wall clock incl. exit, medians)")
    first = None
    for name, code in cases.items():
        count = subprocess.run(
            [
                sys.executable,
                "-IS",
                "-c",
                f"import sys; sys.path.insert(0, {str(REPO)!r}); n = len(sys.modules); "
                f"{code}; print(len(sys.modules) - n)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        ms = _python_ms(code)
        first = ms if first is None else first
        print(f"{name:<28} {ms:>7.1f} ms  (+{ms - first:5.1f})  modules +{count}")


def main() -> int:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 30
    if "--imports" in sys.argv:
        imports()
    os.environ["TUIBOX_BRIDGE"] = BRIDGE
    os.environ["TUIBOX_SUBNET"] = SUBNET
    base = tempdir("tuibox-bench-net-")
    root = base / "root"
    tag = f"nb{os.getpid()}"
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    try:
        bundle = make_bundle(base, ["/bin/true"])

        retried: list[str] = []

        def run(network: bool, inline: bool = False) -> Callable[[int], float]:
            def once(i: int) -> float:
                net = ["--network", "default"] if network else []
                name = f"{tag}-{'i' if inline else 'n' if network else 'x'}{i}"
                os.environ["TUIBOX_NET_WORKER"] = "0" if inline else "1"
                argv = [*TUIBOX, "--root", str(root), "run", "--bundle", str(bundle), *net]
                try:
                    return time_once([*argv, name])
                except RuntimeError as e:
                    # One retry: a rare failure of the core (not of the network path) must
                    # not throw away the whole run; it is reported below.
                    retried.append(str(e).rpartition("failed: ")[2])
                    return time_once([*argv, name + "r"])

            return once

        cases = {"run (no network)": run(False), "run --network default": run(True)}
        if "--inline" in sys.argv:
            cases["... netlink inline"] = run(True, inline=True)
        for fn in cases.values():  # warm up; the first network run creates the bridge
            fn(100_000)
        results = interleaved(cases, rounds)
        medians = report(f"tuibox run /bin/true, {rounds} rounds", results, "run (no network)")
        extra = medians["run --network default"] - medians["run (no network)"]
        print(f"\nextra cost of a network: tuibox {extra:+.1f} ms")
        for err in retried:
            print(f"  retried once: {err}")
        if "... netlink inline" in medians:
            inline = medians["... netlink inline"] - medians["run (no network)"]
            print(f"  (with the netlink work inline, no worker: {inline:+.1f} ms)")
        print(
            f"podman 4.3 (GUIDE.md, same kind of machine): {PODMAN_BRIDGE_MS:.0f} ms on its "
            f"default bridge vs {PODMAN_NONE_MS:.0f} ms with --network none: "
            f"{PODMAN_BRIDGE_MS - PODMAN_NONE_MS:+.0f} ms"
        )
    finally:
        subprocess.run(
            [*TUIBOX, "--root", str(root), "network", "rm", "default"], capture_output=True
        )
        rmtree(base)
        after = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        if after != forward_before:
            print(f"warning: ip_forward was {forward_before}, is now {after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
