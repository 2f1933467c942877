"""podman with tuibox vs runc as its OCI runtime, and `tuibox state` vs `runc state`.

Usage: .venv/bin/python bench/engines_bench.py [--rounds N]
`podman run --rm --network none busybox true`, interleaved rounds (default 20), on private
podman storage (the tests' set-up, tests/integration/engines/conftest.py); then `state ID` of a
created container, each runtime on its own. Prints medians and ratios against runc.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "engines"))

from conftest import IMAGE, RUNC, Podman, write_image_archive, write_launcher  # type: ignore

from bench.common import interleaved, make_bundle, report, rmtree, tempdir, time_once


def main() -> int:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 20
    base = tempdir("tbbench")
    podman: Podman | None = None
    try:
        launcher = write_launcher(base / "tuibox")
        bundle = make_bundle(base, ["/bin/sh", "-c", "sleep 100"])
        archive = write_image_archive(bundle / "rootfs", base / "busybox.tar")
        (base / "p").mkdir()
        podman = Podman(base / "p", launcher)
        # time_once runs with our environment: podman's private config files travel in it
        os.environ.update(podman.env)
        podman("runc", "load", "-i", str(archive), timeout=120)

        def podman_run(runtime: str) -> float:
            return time_once(
                podman.argv(runtime, "run", "--rm", "--network", "none", IMAGE, "true")
            )

        cases = {
            f"podman run --rm ({rt})": (lambda i, rt=rt: podman_run(rt))
            for rt in ("runc", "tuibox")
        }
        for fn in cases.values():
            fn(0)
        report(
            f"podman run --rm --network none busybox true, {rounds} rounds",
            interleaved(cases, rounds),
            "podman run --rm (runc)",
        )

        roots = {"runc": base / "root-runc", "tuibox": base / "root-tuibox"}
        # tuibox's own data root too: a created box keeps its log dir there
        binaries = {"runc": [RUNC], "tuibox": [str(launcher), "--data-root", str(base / "data")]}
        for rt in ("runc", "tuibox"):
            subprocess.run(
                [
                    *binaries[rt],
                    "--root",
                    str(roots[rt]),
                    "create",
                    "--bundle",
                    str(bundle),
                    f"s-{rt}",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            state = {
                f"{rt} state": (
                    lambda i, rt=rt: time_once(
                        [*binaries[rt], "--root", str(roots[rt]), "state", f"s-{rt}"]
                    )
                )
                for rt in roots
            }
            report(
                f"state ID of a created container, {rounds * 5} rounds",
                interleaved(state, rounds * 5),
                "runc state",
            )
        finally:
            for rt in ("runc", "tuibox"):
                subprocess.run(
                    [*binaries[rt], "--root", str(roots[rt]), "delete", "--force", f"s-{rt}"],
                    check=False,
                    capture_output=True,
                )
    finally:
        if podman is not None:
            podman.shutdown()
        rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
