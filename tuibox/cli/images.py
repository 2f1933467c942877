"""The `image` verb: ls, import, rm, inspect, bootstrap.

Not on a box's start-up path (`run --image` goes through runtime/images/boxspec.py), so the import's
progress bar may use rich; cli/__init__ has already called sitepath.ensure() for this verb.
"""

from __future__ import annotations

import os
import sys
import time

from tuibox.cli import fail_with
from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry, parse
from tuibox.runtime import fastjson
from tuibox.runtime.errors import ImageError, TuiboxError
from tuibox.runtime.images.store import ImageStore, check_image_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.cli import Globals


def open_store(g: Globals) -> ImageStore:
    return ImageStore(g.data_root)  # None: TUIBOX_DATA, else /var/lib/tuibox


IMAGE_HELP = (
    "Manage images: image ls | import FILE|DIR NAME | tag SRC DST | rm NAME... | "
    "inspect NAME | bootstrap debian NAME"
)


class ImageAction(Options):
    COMMAND = Command("image", IMAGE_HELP, (), (Arg("action"),))
    __slots__ = ("action",)
    action: str


class ImageLsOptions(Options):
    COMMAND = Command(
        "image ls",
        "List the images of the data root.",
        (
            Opt(("-f", "--format"), "format", "table|json", default="table"),
            Opt(("-q", "--quiet"), "quiet", help="names only"),
        ),
    )
    __slots__ = ("format", "quiet")
    format: str
    quiet: bool


class ImageImportOptions(Options):
    COMMAND = Command(
        "image import",
        "Import a root filesystem or an image as NAME: a tarball (plain, .gz, .xz, .bz2, .zst;\n"
        "docker/podman export, docker/podman save, an OCI layout in a tar) or a directory\n"
        "(a rootfs or an OCI layout).",
        (),
        (Arg("source", "a tarball or a directory"), Arg("name", "the new image's name")),
    )
    __slots__ = ("name", "source")
    source: str
    name: str


class ImageTagOptions(Options):
    COMMAND = Command(
        "image tag",
        "Give image SRC a second name DST (layers are shared; a flat image's files are\n"
        "hard-linked). To publish under a registry reference, use `tuibox push SRC REF`.",
        (),
        (Arg("src"), Arg("dst")),
    )
    __slots__ = ("dst", "src")
    src: str
    dst: str


class ImageRmOptions(Options):
    COMMAND = Command(
        "image rm",
        "Remove images; refused while a box (even a stopped one) uses one, unless --force.",
        (Opt(("-f", "--force"), "force", help="remove even if boxes use it"),),
        (Arg("names", rest=True),),
        aliases=("remove", "delete"),
    )
    __slots__ = ("force", "names")
    force: bool
    names: list[str]


class ImageInspectOptions(Options):
    COMMAND = Command(
        "image inspect",
        "Print an image's record as JSON: size, source, process defaults, boxes using it.",
        (),
        (Arg("name"),),
    )
    __slots__ = ("name",)
    name: str


class ImageBootstrapOptions(Options):
    COMMAND = Command(
        "image bootstrap",
        "Build a Debian image with debootstrap (needs the debootstrap package and a mirror).",
        (
            Opt(("--suite",), "suite", "SUITE", default="bookworm", help="default bookworm"),
            Opt(("--mirror",), "mirror", "URL", help="default: debootstrap's own"),
            Opt(("--variant",), "variant", "NAME", default="minbase", help="default minbase"),
        ),
        (Arg("distro", "debian"), Arg("name")),
    )
    __slots__ = ("distro", "mirror", "name", "suite", "variant")
    suite: str
    mirror: str | None
    variant: str
    distro: str
    name: str


ACTIONS = {
    "ls": "ls",
    "list": "ls",
    "import": "import",
    "tag": "tag",
    "rm": "rm",
    "remove": "rm",
    "delete": "rm",
    "inspect": "inspect",
    "bootstrap": "bootstrap",
}


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    first = parse(ImageAction, words[:1])
    action = ACTIONS.get(first.action)
    if action is None:
        raise UsageError(
            f"image: unknown action {first.action!r} (ls, import, tag, rm, inspect, bootstrap)"
        )
    return IMAGE_VERBS[action](words[1:], g)


# ---- helpers --------------------------------------------------------------------------------


def human_size(n: float) -> str:
    """Decimal units, as docker and podman print image sizes."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns at GB


def boxes_using(g: Globals, store: ImageStore, name: str) -> list[str]:
    """Boxes of the state root made from this image, in any status: a stopped box still
    names it and keeps its upper layer over it."""
    from tuibox.runtime.box import Runtime

    rootfs = os.path.join(store.image_dir(name), "rootfs")
    try:
        lower = store.lower(name)
    except ImageError:
        lower = rootfs
    out = []
    for r in Runtime(g.root).list():
        if r.image != name:
            continue
        # A box recorded without the path (older records) counts: refusing is the safe side.
        where = r.extra.get("image_rootfs")
        if where is None or where == lower or os.path.abspath(where) == os.path.abspath(rootfs):
            out.append(r.id)
    return out


# ---- verbs ----------------------------------------------------------------------------------


def do_ls(opts: ImageLsOptions, g: Globals) -> int:
    store = open_store(g)
    if opts.format == "json":
        sys.stdout.write(fastjson.dumps(store.summaries()) + "\n")
        return 0
    images = store.list()
    usage = store.usage()
    if opts.format != "table":
        raise UsageError(f"image ls: --format {opts.format!r}: must be table or json")
    if opts.quiet:
        sys.stdout.write("".join(i.name + "\n" for i in images))
        return 0
    rows = [("NAME", "SIZE", "SHARED", "UNIQUE", "LAYERS", "CREATED", "SOURCE")]
    for i in images:
        shared, unique = usage.get(i.name, (0, i.size))
        rows.append(
            (
                i.name,
                human_size(i.size),
                human_size(shared),
                human_size(unique),
                str(len(i.layers) or 1),
                i.created,
                i.source,
            )
        )
    n = len(rows[0]) - 1
    widths = [max(len(r[k]) for r in rows) for k in range(n)]
    for r in rows:
        head = "  ".join(c.ljust(w) for c, w in zip(r[:n], widths, strict=True))
        sys.stdout.write(f"{head}  {r[n]}".rstrip() + "\n")
    return 0


def do_tag(opts: ImageTagOptions, g: Globals) -> int:
    info = open_store(g).tag(opts.src, opts.dst)
    sys.stdout.write(info.name + "\n")
    return 0


def do_import(opts: ImageImportOptions, g: Globals) -> int:
    source, name = opts.source, opts.name
    check_image_name(name)  # before looking at the source: one error at a time, the cheap one
    if not os.path.exists(source):
        raise ImageError(f"{source}: no such file or directory")
    store = open_store(g)
    if store.exists(name):
        raise ImageError(f"image {name!r} already exists")
    is_dir = os.path.isdir(source)
    bar = _Bar(f"import {name}") if sys.stderr.isatty() else None
    seen = [0]

    def progress(done: int, total: int) -> None:
        seen[0] = done
        if bar is not None:
            bar.update(done, total)

    warnings: list[str] = []
    t0 = time.monotonic()
    try:
        if bar is not None:
            bar.start()
        if is_dir:
            info = store.import_dir(source, name, progress, warnings.append)
        else:
            info = store.import_tar(source, name, progress, warnings.append)
    finally:
        if bar is not None:
            bar.stop()
    elapsed = max(time.monotonic() - t0, 1e-6)
    from tuibox.cli import warn

    for line in warnings:
        warn(line)
    sys.stderr.write(
        f"imported {info.name}: {human_size(seen[0])} read in {elapsed:.1f} s "
        f"({human_size(seen[0] / elapsed)}/s), {human_size(info.size)} on disk\n"
    )
    sys.stdout.write(info.name + "\n")
    return 0


class _Bar:
    """rich's progress bar on stderr: bytes done of total and the rate."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(label, total=None)

    def start(self) -> None:
        self.progress.start()

    def update(self, done: int, total: int) -> None:
        # The total may grow (a compressed image archive: unpacked first, then its layers).
        self.progress.update(self.task, completed=done, total=total or None)

    def stop(self) -> None:
        self.progress.stop()


def do_rm(opts: ImageRmOptions, g: Globals) -> int:
    names = opts.names
    if not names:
        raise UsageError("image rm: missing NAME")
    store = open_store(g)
    failed = 0
    for name in names:
        try:
            _remove(store, g, name, opts.force)
            sys.stdout.write(name + "\n")
        except TuiboxError as e:
            if len(names) == 1:
                raise
            failed = fail_with(e)
    return failed


def _remove(store: ImageStore, g: Globals, name: str, force: bool) -> None:
    from tuibox.cli import warn

    if force:
        users = boxes_using(g, store, name) if store.exists(name) else []
        store.remove(name, force=True)
        if users:
            # Their upper layers stay; a running one sees its lower layer vanish.
            warn(f"image {name!r} removed while boxes use it: {', '.join(users)}")
        return
    found: list[str] = []

    def in_use(image: str) -> bool:
        found[:] = boxes_using(g, store, image)
        return bool(found)

    try:
        store.remove(name, in_use)
    except ImageError:
        if found:
            # The store's message cannot name the boxes; this one can.
            raise ImageError(
                f"image {name!r} is in use by {', '.join(found)}: destroy them first, "
                "or use --force"
            ) from None
        raise


def do_inspect(opts: ImageInspectOptions, g: Globals) -> int:
    store = open_store(g)
    info = store.get(opts.name)
    data = info.to_json()
    data["rootfs"] = store.lower(info.name)
    data["boxes"] = boxes_using(g, store, info.name)
    config = store.config(info.name)
    if config is not None:
        data["config"] = config
    sys.stdout.write(fastjson.dumps(data, indent=2) + "\n")
    return 0


def do_bootstrap(opts: ImageBootstrapOptions, g: Globals) -> int:
    from tuibox.runtime.images.bootstrap import DISTROS, bootstrap

    if opts.distro not in DISTROS:
        raise UsageError(
            f"image bootstrap: unknown distribution {opts.distro!r} ({', '.join(DISTROS)})"
        )
    info = bootstrap(
        open_store(g),
        opts.distro,
        opts.name,
        suite=opts.suite,
        mirror=opts.mirror,
        variant=opts.variant,
    )
    sys.stderr.write(f"bootstrapped {info.name}: {human_size(info.size)} on disk\n")
    sys.stdout.write(info.name + "\n")
    return 0


IMAGE_VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "ls": entry(ImageLsOptions, do_ls),
    "import": entry(ImageImportOptions, do_import),
    "tag": entry(ImageTagOptions, do_tag),
    "rm": entry(ImageRmOptions, do_rm),
    "inspect": entry(ImageInspectOptions, do_inspect),
    "bootstrap": entry(ImageBootstrapOptions, do_bootstrap),
}
