"""podman with tuibox vs runc as its OCI runtime, and `tuibox state` vs `runc state`.

Usage: .venv/bin/python bench/engines_bench.py [--rounds N]
`podman run --rm --network none busybox true`, interleaved rounds (default 20), on private
podman storage (the tests' set-up, tests/integration/engines/conftest.py); then the three
runtime calls podman makes per container, alone (engine mode: `--log`, `create --pid-file`,
this process reaping the init as conmon does); then `state ID` of a created container.
Prints medians and ratios against runc.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
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
        engine_verbs(base, bundle, roots, binaries, rounds)
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


def time_quietly(argv: list[str]) -> float:
    """time_once for `create`: the init keeps the caller's fds 0-2, so none may be a pipe
    we wait on (the pipe would close only when the box exits)."""
    t0 = time.perf_counter()
    code = subprocess.call(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return elapsed


def engine_verbs(
    base: Path, bundle: Path, roots: dict[str, Path], binaries: dict[str, list[str]], rounds: int
) -> None:
    """create / start / delete --force of `true` as conmon drives them, each timed alone."""
    config = bundle / "config.json"
    saved = config.read_text()
    spec = json.loads(saved)
    spec["process"]["args"] = ["true"]
    config.write_text(json.dumps(spec))
    # PR_SET_CHILD_SUBREAPER: the init is reparented to us and reaped here, as by conmon
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    results: dict[str, list[float]] = {}
    try:
        for i in range(rounds):
            for rt, binary in binaries.items():
                argv = [*binary, "--root", str(roots[rt]), "--log", str(base / f"{rt}.log")]
                argv += ["--log-format", "json"]
                cid = f"v-{rt}-{i}"
                pid_file = str(base / f"{rt}.pid")
                create = [*argv, "create", "--bundle", str(bundle), "--pid-file", pid_file, cid]
                results.setdefault(f"{rt} create", []).append(time_quietly(create))
                results.setdefault(f"{rt} start", []).append(time_once([*argv, "start", cid]))
                os.waitpid(-1, 0)
                delete = [*argv, "delete", "--force", cid]
                results.setdefault(f"{rt} delete --force", []).append(time_once(delete))
    finally:
        config.write_text(saved)
    order = [f"{rt} {v}" for v in ("create", "start", "delete --force") for rt in binaries]
    report(
        f"engine mode, one verb at a time (`true`), {rounds} rounds",
        {k: results[k] for k in order},
        "runc create",
    )


if __name__ == "__main__":
    sys.exit(main())
