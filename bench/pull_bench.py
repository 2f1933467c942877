"""Pulling a ~100 MB image from a local registry: `tuibox pull` against `skopeo copy` alone
(the download tuibox drives, into an OCI layout) and `podman pull` (private --root and
--runroot), in one run, interleaved, medians.

Usage: .venv/bin/python bench/pull_bench.py [--rounds N] [--mb SIZE]
Starts Debian's docker-registry on 127.0.0.1 with storage in a temp dir (stopped by pid at
the end); the image is a busybox rootfs plus SIZE MB of files (60 % random bytes, 40 % text,
so gzip has something to do, as in a real image), imported and pushed with tuibox. Every
pull goes into a fresh store that is removed before the next round.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import have, interleaved, report, rmtree, tempdir  # noqa: E402

TUIBOX = [sys.executable, "-m", "tuibox"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def run(argv: Sequence[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def start_registry(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (base / "registry.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {base / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n"
    )
    proc = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(base / "registry.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("docker-registry did not start") from None
            time.sleep(0.05)


def make_tree(dest: Path, megabytes: int) -> None:
    from tuibox.runtime.images.busybox import build_busybox_rootfs

    build_busybox_rootfs(dest)
    target = megabytes * 1_000_000
    made = n = 0
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n"
    while made < target:
        d = dest / "usr" / "share" / f"d{n // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        if n % 5 < 3:
            data = os.urandom(400 * 1024)
        else:
            data = (words * (400 * 1024 // len(words) + 1))[: 400 * 1024]
            data = str(n).encode() + data
        (d / f"f{n}").write_bytes(data)
        made += len(data)
        n += 1


def main() -> int:
    rounds = arg("--rounds", 3)
    megabytes = arg("--mb", 100)
    missing = [c for c in ("skopeo", "podman") if not have(c)]
    if missing or not os.path.exists("/usr/bin/docker-registry"):
        print(f"needs skopeo, podman and docker-registry (missing: {missing})")
        return 1
    base = tempdir("tuibox-pull-bench-")
    registry = None
    try:
        registry, host = start_registry(base)
        tree = base / "tree"
        make_tree(tree, megabytes)
        seed = ["--root", str(base / "seed-state"), "--data-root", str(base / "seed-data")]
        run([*TUIBOX, *seed, "image", "import", str(tree), "big"])
        ref = f"{host}/big:1"
        t_push = run([*TUIBOX, *seed, "push", "--tls-verify=false", "big", ref])
        rmtree(tree)
        rmtree(base / "seed-data")
        size = sum(p.stat().st_size for p in (base / "registry").rglob("*") if p.is_file())
        print(
            f"image: {megabytes} MB of files, {size / 1e6:.1f} MB in the registry; "
            f"push {t_push:.2f} s"
        )

        def tuibox_pull(i: int) -> float:
            data = base / f"t{i}"
            try:
                return run(
                    [
                        *TUIBOX,
                        "--root",
                        str(base / "st"),
                        "--data-root",
                        str(data),
                        "pull",
                        "-q",
                        "--tls-verify=false",
                        ref,
                    ]
                )
            finally:
                rmtree(data)

        def skopeo_copy(i: int) -> float:
            out = base / f"s{i}"
            try:
                return run(
                    [
                        "skopeo",
                        "--override-arch",
                        "amd64",
                        "copy",
                        "--quiet",
                        "--src-tls-verify=false",
                        f"docker://{ref}",
                        f"oci:{out}:latest",
                    ]
                )
            finally:
                rmtree(out)

        def podman_pull(i: int) -> float:
            root, runroot = base / f"p{i}", base / f"pr{i}"
            pm = [
                "podman",
                "--root",
                str(root),
                "--runroot",
                str(runroot),
                "--storage-driver",
                "overlay",
            ]
            try:
                return run([*pm, "pull", "-q", "--tls-verify=false", ref])
            finally:
                subprocess.run([*pm, "rmi", "-a", "-f"], capture_output=True, check=False)
                subprocess.run([*pm, "system", "reset", "-f"], capture_output=True, check=False)
                rmtree(root)
                rmtree(runroot)

        cases = {
            "tuibox pull": tuibox_pull,
            "skopeo copy (download only)": skopeo_copy,
            "podman pull": podman_pull,
        }
        results = interleaved(cases, rounds)
        report(f"pull of {megabytes} MB ({rounds} rounds)", results, "skopeo copy (download only)")
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait(10)
        rmtree(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
