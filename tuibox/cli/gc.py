"""`tuibox gc`: debris of boxes that no longer exist (podman's `system prune` in spirit).

A dry run unless --yes; every item is reported, with what --yes does (or did) to it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from tuibox.cli import Globals, fail
from tuibox.cli.args import Command, Opt, Options, entry
from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.recovery import Debris


class GcOptions(Options):
    COMMAND = Command(
        "gc",
        "Find debris of boxes that no longer exist: state dirs of killed creates and unreadable\n"
        "records, cgroups and leases without a box, stale seccomp cache files, keeper sockets\n"
        "with no keeper. Only this state root's. Nothing is removed without --yes.",
        (
            Opt(("-y", "--yes"), "yes", help="remove what was found"),
            Opt(("-f", "--format"), "format", "table|json", default="table"),
        ),
        (),
    )
    __slots__ = ("format", "yes")
    format: str
    yes: bool


def do_gc(opts: GcOptions, g: Globals) -> int:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.recovery import collect, find_debris

    if opts.format not in ("table", "json"):
        raise SpecError(f"--format {opts.format!r}: must be table or json")
    rt = Runtime(g.root, g.data_root)
    items = find_debris(rt, g.data_root)
    failures = collect(rt, items) if opts.yes else []
    items += _image_debris(g, opts.yes, failures)
    if opts.format == "json":
        out = {
            "removed": opts.yes,
            "items": [i.as_dict() for i in items],
            "failures": failures,
        }
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        verb = "removed" if opts.yes else "would"
        for i in items:
            sys.stdout.write(f"{verb}: {i.kind} {i.path} ({i.name or '-'}): {i.action}\n")
        if not items:
            sys.stdout.write("no debris\n")
        elif not opts.yes:
            sys.stdout.write(f"{len(items)} item(s); run `tuibox gc --yes` to remove them\n")
    for f in failures:
        fail(f)
    return 125 if failures else 0


def _image_debris(g: Globals, remove: bool, failures: list[str]) -> list[Debris]:
    """Image layers no image uses (an interrupted pull, a forced removal), the download
    layouts of interrupted pulls and those of killed pushes: in the data root, shared by
    every state root."""
    from tuibox.runtime.images.layers import LayerStore
    from tuibox.runtime.images.registry import stale_transfers, sweep_pulls
    from tuibox.runtime.images.store import ImageStore
    from tuibox.runtime.recovery import Debris

    store = ImageStore(g.data_root)
    layers = LayerStore(store.data_root)
    found = [Debris("image-layer", d, layers.layer_dir(d), "remove") for d in store.unused_layers()]
    found += [
        Debris("pull" if "/pulls/" in p else "push", os.path.basename(p), p, "remove")
        for p in stale_transfers(store)
    ]
    if remove:
        try:
            store.gc_layers()
            sweep_pulls(store)
        except OSError as e:
            failures.append(f"image layers: {e.strerror or e}")
    return found


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


VERBS: dict[str, Callable[[list[str], Globals], int]] = {"gc": entry(GcOptions, do_gc)}
