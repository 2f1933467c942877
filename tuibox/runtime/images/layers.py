"""Layers kept once each, by digest, for layered images (pulled or layout imports).

Layout under the data root:
    layers/<hex>/diff/        the layer's tree, whiteouts in overlayfs's form (0/0 char
                              devices, the trusted.overlay.opaque xattr): a lowerdir as it is
    layers/<hex>/layer.json   digest (of the uncompressed tar: the config's diff_id), size,
                              link
    l/<link>                  a short symlink to ../layers/<hex>/diff

A box's overlay names its image's layers through the short links: mount(2) takes its options
in one page (4 KiB), and 64-hex paths under a long data root would fit only ~40 layers; a
link of 10 characters keeps 100+ layers inside it (podman's containers/storage does the same).

Every change happens under the image store's lock. A layer is extracted in a flock'ed temp
dir and renamed into place; if another pull got there first, ours is thrown away. An import
in progress writes the digests it will reference into `<its temp dir>/layers.json` first, so a
concurrent `gc` (which keeps every layer an image or a live temp dir names) cannot take a layer
from under it.
"""

from __future__ import annotations

import fcntl
import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import ImageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

LAYERS = "layers"
LINKS = "l"
_LINK_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TMP = ".tmp-"
WANTS = "layers.json"
# mount(2) copies one page of options; leave room for upperdir, workdir and the rest.
MOUNT_DATA_MAX = 4096 - 512


def layer_key(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64 or not set(hexpart) <= set("0123456789abcdef"):
        raise ImageError(f"unsupported layer digest {digest!r}")
    return hexpart


class LayerStore:
    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.path = os.path.join(data_root, LAYERS)
        self.links = os.path.join(data_root, LINKS)

    def layer_dir(self, digest: str) -> str:
        return os.path.join(self.path, layer_key(digest))

    def has(self, digest: str) -> bool:
        return os.path.isfile(os.path.join(self.layer_dir(digest), "layer.json"))

    def info(self, digest: str) -> dict[str, object]:
        try:
            with open(os.path.join(self.layer_dir(digest), "layer.json"), "rb") as f:
                data = fastjson.loads(f.read())
        except (OSError, ValueError):
            raise ImageError(f"layer {digest} is missing from the store") from None
        if not isinstance(data, dict):
            raise ImageError(f"layer {digest} is corrupt")
        return data

    def size(self, digest: str) -> int:
        try:
            size = self.info(digest).get("size")
        except ImageError:
            return 0
        return size if isinstance(size, int) else 0

    def diff(self, digest: str) -> str:
        return os.path.join(self.layer_dir(digest), "diff")

    def lowerdir(self, digests: list[str], label: str) -> str:
        """The overlay lowerdir of layers given bottom first: top first, through short links."""
        parts = []
        for d in reversed(digests):
            link = str(self.info(d).get("link") or "")
            path = os.path.join(self.links, link)
            if not link or not os.path.isdir(path):
                raise ImageError(f"{label}: layer {d} is missing from the store")
            parts.append(path)
        lower = ":".join(parts)
        if len(lower) > MOUNT_DATA_MAX:
            raise ImageError(
                f"{label}: {len(digests)} layers make an overlay lowerdir of {len(lower)} "
                f"bytes, more than a mount accepts ({MOUNT_DATA_MAX}); use a shorter --data-root"
            )
        return lower

    # -- changing (the image store's lock held by the caller) -------------------------------

    def new_temp(self) -> tuple[str, int]:
        os.makedirs(self.path, 0o700, exist_ok=True)
        path = os.path.join(self.path, _TMP + os.urandom(6).hex())
        os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return path, fd

    def commit(self, tmp: str, digest: str, size: int) -> bool:
        """Rename an extracted temp layer into place; False if it was there already."""
        if self.has(digest):
            return False
        os.makedirs(self.links, 0o700, exist_ok=True)
        final = self.layer_dir(digest)
        if os.path.lexists(final):  # debris of a crash between rename and layer.json
            from tuibox.runtime.images.safefs import remove_tree

            remove_tree(final)
        while True:
            link = "".join(_LINK_CHARS[b & 31] for b in os.urandom(10))
            try:
                os.symlink(
                    os.path.join("..", LAYERS, layer_key(digest), "diff"),
                    os.path.join(self.links, link),
                )
                break
            except FileExistsError:
                continue
        data = fastjson.dumps({"digest": digest, "size": size, "link": link}).encode() + b"\n"
        with open(os.path.join(tmp, "layer.json"), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, final)
        return True

    def remove(self, digest: str) -> None:
        from tuibox.runtime.images.safefs import remove_tree

        try:
            link = str(self.info(digest).get("link") or "")
        except ImageError:
            link = ""
        if link:
            try:
                os.unlink(os.path.join(self.links, link))
            except FileNotFoundError:
                pass
        path = os.path.join(self.path, _TMP + os.urandom(6).hex())
        try:
            os.rename(self.layer_dir(digest), path)
        except FileNotFoundError:
            return
        remove_tree(path)

    def all(self) -> list[str]:
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return ["sha256:" + e for e in sorted(entries) if not e.startswith(".")]

    def sweep(self, wanted: Iterable[str]) -> list[str]:
        """Remove layers no image and no live import names, dead temps and dangling links;
        return the digests removed. The store's lock is held."""
        from tuibox.runtime.images.safefs import remove_tree

        keep = set(wanted)
        removed = []
        for digest in self.all():
            if digest not in keep:
                self.remove(digest)
                removed.append(digest)
        for entry in _listdir(self.path):
            if entry.startswith(_TMP) and not held(os.path.join(self.path, entry)):
                remove_tree(os.path.join(self.path, entry))
        for entry in _listdir(self.links):
            full = os.path.join(self.links, entry)
            if not os.path.exists(full):
                os.unlink(full)
        return removed


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def held(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wanted_by_temps(images_dir: str) -> set[str]:
    """Digests that imports in progress (flock'ed temp dirs of the image store) will use."""
    out: set[str] = set()
    for entry in _listdir(images_dir):
        full = os.path.join(images_dir, entry)
        if not entry.startswith(_TMP) or not held(full):
            continue
        try:
            with open(os.path.join(full, WANTS), "rb") as f:
                data = fastjson.loads(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(data, list):
            out.update(str(d) for d in data)
    return out


def import_layered(
    source_path: str,
    tmp: str,
    layers: LayerStore,
    lock: Callable[[], Any],
    progress: Callable[[int, int], None] | None,
    warnings: list[str],
) -> tuple[list[str], object, int]:
    """Extract the layers of the OCI layout / docker archive dir at source_path that the
    store lacks; return (diff digests bottom first, raw config, total size of the layers)."""
    from tuibox.runtime.images import oci
    from tuibox.runtime.images.safefs import remove_tree, tree_size

    source = oci.DirSource(source_path)
    found, config = oci.read_image(source)
    digests: list[str] = []
    for layer in found:
        pair = layer.diff or layer.blob
        assert pair is not None  # Layer refuses one without either
        digests.append(":".join(pair))
        layer_key(digests[-1])
    with open(os.path.join(tmp, WANTS), "wb") as f:
        f.write(fastjson.dumps(digests).encode())
    todo = [(layer, d) for layer, d in zip(found, digests, strict=True) if not layers.has(d)]
    sizes = [oci.layer_size(source, layer) for layer, _ in todo]
    total = sum(sizes)
    done = 0
    seen: set[str] = set()
    for (layer, digest), size in zip(todo, sizes, strict=True):
        if digest in seen:
            continue  # an image may repeat a layer (an empty one, often)
        seen.add(digest)
        with lock():
            path, fd = layers.new_temp()
        try:
            diff = os.path.join(path, "diff")
            os.mkdir(diff, 0o755)
            warnings += oci.extract_layer(source, layer, diff, progress, done, total)
            with lock():
                layers.commit(path, digest, tree_size(diff))
        finally:
            os.close(fd)
            if os.path.lexists(path):
                remove_tree(path)
        done += size
    if progress is not None:
        progress(total, total)
    return digests, config, sum(layers.size(d) for d in dict.fromkeys(digests))
