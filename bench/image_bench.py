"""Images: import rate against `tar -x`, disk used by many boxes of one image, and the time to
create a box from an image (an overlay) against `runc create` on a pre-extracted rootfs.

Usage: .venv/bin/python bench/image_bench.py [--rounds N] [--mb SIZE] [--boxes N]
Prints medians; everything it makes (tarball, data root, state roots, boxes, runc
containers) lives under one temp dir in /tmp and is removed at the end, pass or fail.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import TUIBOX, have, interleaved, make_bundle, report, rmtree, tempdir


def arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def quiet(argv: Sequence[str]) -> float:
    """Time a command whose children may keep stdio open (runc create): no pipes at all."""
    t0 = time.perf_counter()
    code = subprocess.call(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - t0
    if code != 0:
        # Run it again for its message; the timing above is void anyway.
        err = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {err.stderr.strip()}")
    return elapsed


def make_tarball(base: Path, megabytes: int) -> tuple[Path, int]:
    """A rootfs-like tree: many small files, some large ones, dirs, symlinks, hard links.
    Random bytes, so a filesystem that compresses or dedups gains nothing."""
    tree = base / "tree"
    made = 0
    target = megabytes * 1_000_000
    n = 0
    while made < target:
        d = tree / f"d{n // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        # 9 of 10 files are 4 KiB (configs, scripts); 1 of 10 is 400 KiB (libraries).
        size = 400 * 1024 if n % 10 == 0 else 4096
        (d / f"f{n}").write_bytes(os.urandom(size))
        if n % 50 == 0:
            os.symlink(f"f{n}", d / f"l{n}")
            os.link(d / f"f{n}", d / f"h{n}")
        made += size
        n += 1
    tarball = base / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tarball), "."], check=True)
    rmtree(tree)
    return tarball, n


def bench_import(base: Path, rounds: int, megabytes: int) -> None:
    tarball, files = make_tarball(base, megabytes)
    size = tarball.stat().st_size
    data = base / "data-import"
    out = base / "tar-x"

    def tuibox_import(i: int) -> float:
        cmd = [*TUIBOX, "--data-root", str(data), "image", "import", str(tarball), f"i{i}"]
        elapsed = quiet(cmd)
        quiet([*TUIBOX, "--data-root", str(data), "image", "rm", f"i{i}"])
        return elapsed

    def tar_x(i: int) -> float:
        dest = out / str(i)
        dest.mkdir(parents=True)
        elapsed = quiet(["tar", "-C", str(dest), "-xpf", str(tarball)])
        rmtree(dest)
        return elapsed

    cases = {"tuibox image import": tuibox_import, "tar -x": tar_x}
    for fn in cases.values():  # warm the page cache and the code once
        fn(10_000)
    results = interleaved(cases, rounds)
    print(f"\nimport of a {size / 1e6:.0f} MB tarball ({files} files), {rounds} rounds")
    print(f"{'case':<28} {'median s':>10} {'MB/s':>9} {'ratio':>7}")
    base_med = statistics.median(results["tar -x"])
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<28} {med:>10.2f} {size / med / 1e6:>9.0f} {med / base_med:>6.2f}x")


def du_kib(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def bench_disk(base: Path, boxes: int) -> None:
    data, root = base / "data-disk", base / "state-disk"
    cli = [*TUIBOX, "--root", str(root), "--data-root", str(data)]
    names = [f"ib-disk-{os.getpid()}-{i}" for i in range(boxes)]
    try:
        for name in names:
            quiet([*cli, "run", "-d", "--image", "busybox", name, "sleep", "1000"])
        image_kib = du_kib(data / "images" / "busybox")
        state_kib = du_kib(root)
        print(f"\ndisk used by {boxes} running boxes of one image (du -sk)")
        print(f"{'image busybox':<28} {image_kib:>8} KiB")
        print(
            f"{'state root, all boxes':<28} {state_kib:>8} KiB  ({state_kib / boxes:.0f} KiB/box)"
        )
        print(f"{'if each box copied it':<28} {image_kib * boxes:>8} KiB")
    finally:
        subprocess.run(
            [*cli, "destroy", "--force", *names], capture_output=True, stdin=subprocess.DEVNULL
        )


def bench_create(base: Path, rounds: int) -> None:
    data, root = base / "data-create", base / "state-create"
    cli = [*TUIBOX, "--root", str(root), "--data-root", str(data)]
    quiet([*cli, "run", "--image", "busybox", f"ib-warm-{os.getpid()}", "true"])  # build it
    bundle = make_bundle(base / "runc", ["/bin/true"])  # a pre-extracted rootfs
    runc_root = base / "runc-root"
    pid = os.getpid()
    create: dict[str, list[float]] = {}
    total: dict[str, list[float]] = {}

    def tuibox_case(i: int) -> float:
        name = f"ib-c-{pid}-{i}"
        t = quiet([*cli, "create", "--image", "busybox", name, "/bin/true"])
        d = quiet([*cli, "destroy", name])
        create.setdefault("tuibox create --image", []).append(t)
        total.setdefault("tuibox create --image", []).append(t + d)
        return t

    def runc_case(i: int) -> float:
        name = f"ib-r-{pid}-{i}"
        argv = ["runc", "--root", str(runc_root)]
        t = quiet([*argv, "create", "--bundle", str(bundle), name])
        d = quiet([*argv, "delete", name])
        create.setdefault("runc create (rootfs dir)", []).append(t)
        total.setdefault("runc create (rootfs dir)", []).append(t + d)
        return t

    cases = {"tuibox create --image": tuibox_case}
    if have("runc"):
        cases["runc create (rootfs dir)"] = runc_case
    for fn in cases.values():
        fn(10_000)
    create.clear()
    total.clear()
    interleaved(cases, rounds)
    ref = "runc create (rootfs dir)" if have("runc") else "tuibox create --image"
    report(f"create a box, {rounds} rounds", create, ref)
    report(f"create + destroy/delete, {rounds} rounds", total, ref)
    if have("runc") and runc_root.exists():
        for d in runc_root.iterdir():
            subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", d.name], check=False)


def main() -> int:
    rounds = arg("--rounds", 15)
    megabytes = arg("--mb", 100)
    boxes = arg("--boxes", 50)
    base = tempdir("tuibox-bench-image-")
    try:
        bench_import(base, max(3, rounds // 3), megabytes)
        bench_disk(base, boxes)
        bench_create(base, rounds)
    finally:
        # Any box a failed step left: destroy it through its own state root.
        for root in base.glob("state-*"):
            names = [p.name for p in root.iterdir() if p.is_dir()]
            if names:
                subprocess.run(
                    [*TUIBOX, "--root", str(root), "destroy", "--force", *names],
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                )
        rmtree(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
