"""The image store under the data root.

Layout of <data_root>/images/:
    .lock                 flock'ed around every change to the set of images
    <name>/rootfs/        the image's root filesystem, used read-only by boxes
    <name>/image.json     name, created, source, size and the process defaults of its config
    .tmp-<random>/        an import or a removal in progress, flock'ed by its process

An import builds a whole image in a temp dir and renames it into place under the lock, so an
image either exists complete or not at all. A crash (SIGKILL, power loss) can leave a temp dir;
the next change to the store removes it once no process holds its flock.

This module is on `run --image`'s start-up path: str paths, fastjson, and the importers
imported only when an import is asked for.
"""

from __future__ import annotations

import fcntl
import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import ImageError, InvalidName
from tuibox.runtime.plain import Plain
from tuibox.runtime.state import check_identifier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from tuibox.runtime.images.layers import LayerStore

    Progress = Callable[[int, int], None]
    Warn = Callable[[str], None]
    # (config defaults, warnings); spelled here because ImageStore.list shadows `list`.
    Filled = tuple[dict[str, Any], list[str]]
    Strings = list[str]
    Rows = list[dict[str, Any]]

DEFAULT_DATA_ROOT = "/var/lib/tuibox"
BUSYBOX = "busybox"
_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_REST = _FIRST | frozenset("_.-")
_TMP = ".tmp-"


def default_data_root() -> str:
    return os.environ.get("TUIBOX_DATA") or DEFAULT_DATA_ROOT


def check_image_name(name: str) -> str:
    """^[a-z0-9][a-z0-9_.-]{0,63}$: never a path, never hidden (temp dirs start with a dot)."""
    return check_identifier("image", name, _FIRST, _REST, "lower-case letters")


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ImageInfo(Plain):
    """What image.json holds. env/cmd/entrypoint/workdir/user/ports/labels are the image
    config's defaults (empty when the image has none, e.g. a plain rootfs tarball).

    `layers` (digests, bottom first) names the layers of a layered image (a pull), kept once
    each in the layer store (layers.py); a flat image (an import, busybox) has none and its
    own rootfs/. `digest` is the manifest digest a pull saw, `reference` what was pulled."""

    __slots__ = (
        "cmd",
        "created",
        "digest",
        "entrypoint",
        "env",
        "labels",
        "layers",
        "name",
        "ports",
        "reference",
        "size",
        "source",
        "user",
        "workdir",
    )

    name: str
    created: str
    source: str
    size: int
    env: list[str]
    cmd: list[str]
    entrypoint: list[str]
    workdir: str
    user: str
    ports: list[str]
    labels: dict[str, str]
    layers: list[str]
    digest: str
    reference: str

    def __init__(
        self,
        name: str,
        created: str,
        source: str,
        size: int,
        env: list[str] | None = None,
        cmd: list[str] | None = None,
        entrypoint: list[str] | None = None,
        workdir: str = "",
        user: str = "",
        ports: list[str] | None = None,
        labels: dict[str, str] | None = None,
        layers: list[str] | None = None,
        digest: str = "",
        reference: str = "",
    ) -> None:
        self.name = name
        self.created = created
        self.source = source
        self.size = size
        self.env = list(env or ())
        self.cmd = list(cmd or ())
        self.entrypoint = list(entrypoint or ())
        self.workdir = workdir
        self.user = user
        self.ports = list(ports or ())
        self.labels = dict(labels or {})
        self.layers = list(layers or ())
        self.digest = digest
        self.reference = reference

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "created": self.created,
            "source": self.source,
            "size": self.size,
            "env": self.env,
            "cmd": self.cmd,
            "entrypoint": self.entrypoint,
            "workdir": self.workdir,
            "user": self.user,
        }
        # Written only when set, so a flat image's record reads as before.
        for key in ("ports", "labels", "layers", "digest", "reference"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageInfo:
        labels = data.get("labels") or {}
        return cls(
            name=str(data["name"]),
            created=str(data.get("created") or ""),
            source=str(data.get("source") or ""),
            size=int(data.get("size") or 0),
            env=[str(v) for v in data.get("env") or ()],
            cmd=[str(v) for v in data.get("cmd") or ()],
            entrypoint=[str(v) for v in data.get("entrypoint") or ()],
            workdir=str(data.get("workdir") or ""),
            user=str(data.get("user") or ""),
            ports=[str(v) for v in data.get("ports") or ()],
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            layers=[str(v) for v in data.get("layers") or ()],
            digest=str(data.get("digest") or ""),
            reference=str(data.get("reference") or ""),
        )


class _Lock:
    """The store's flock; re-entrant within one store object (a second open file description
    of the same file would wait on our own lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self.depth = 0

    def __enter__(self) -> None:
        if self.depth == 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            os.close(self.fd)
            self.fd = -1


class _Temp:
    """A temp dir in the store, flock'ed while this process works in it."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def discard(self) -> None:
        from tuibox.runtime.images.safefs import remove_tree

        try:
            remove_tree(self.path)
        finally:
            self.release()

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ImageStore:
    """Images under <data_root>/images; the data root is injectable so tests use their own."""

    def __init__(self, data_root: str | os.PathLike[str] | None = None) -> None:
        self.data_root = os.fspath(data_root) if data_root is not None else default_data_root()
        self.images = os.path.join(self.data_root, "images")
        self._held = _Lock(os.path.join(self.images, ".lock"))

    # -- reading ---------------------------------------------------------------------------

    def image_dir(self, name: str) -> str:
        return os.path.join(self.images, check_image_name(name))

    def exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.image_dir(name), "image.json"))

    def get(self, name: str) -> ImageInfo:
        path = os.path.join(self.image_dir(name), "image.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise ImageError(f"image {name!r} does not exist") from None
        try:
            return ImageInfo.from_json(fastjson.loads(raw))
        except (ValueError, TypeError, KeyError) as e:
            raise ImageError(f"image {name!r} is corrupt: {path}") from e

    def list(self) -> list[ImageInfo]:
        try:
            names = sorted(os.listdir(self.images))
        except FileNotFoundError:
            return []
        out = []
        for entry in names:
            if entry.startswith("."):
                continue
            try:
                out.append(self.get(entry))
            except (ImageError, InvalidName):
                continue  # not an image (a stray file or a corrupt one): `get` names it
        return out

    def layer_store(self) -> LayerStore:
        from tuibox.runtime.images.layers import LayerStore

        return LayerStore(self.data_root)

    def lower(self, name: str) -> str:
        """The overlay lowerdir of a box made from the image: its rootfs, or its layers."""
        info = self.get(name)
        if not info.layers:
            return self.rootfs(name)
        _make_private(self.images)
        return self.layer_store().lowerdir(info.layers, f"image {name!r}")

    def roots(self, name: str) -> Strings:
        """The image's trees, top first (one for a flat image)."""
        info = self.get(name)
        if not info.layers:
            return [self.rootfs(name)]
        layers = self.layer_store()
        return [layers.diff(d) for d in reversed(info.layers)]

    def config(self, name: str) -> Any:
        """The image config as pulled (None for an image made here)."""
        try:
            with open(os.path.join(self.image_dir(name), "config.json"), "rb") as f:
                return fastjson.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise ImageError(f"image {name!r}: its config.json is unreadable") from None

    def usage(self) -> dict[str, tuple[int, int]]:
        """name -> (shared size, unique size): layers also used by another image count as
        shared; a flat image's whole tree is unique."""
        images = self.list()
        users: dict[str, int] = {}
        for info in images:
            for d in dict.fromkeys(info.layers):
                users[d] = users.get(d, 0) + 1
        layers = self.layer_store()
        sizes = {d: layers.size(d) for d in users}
        out = {}
        for info in images:
            if not info.layers:
                out[info.name] = (0, info.size)
                continue
            mine = list(dict.fromkeys(info.layers))
            shared = sum(sizes[d] for d in mine if users[d] > 1)
            unique = sum(sizes[d] for d in mine if users[d] == 1)
            out[info.name] = (shared, unique)
        return out

    def summaries(self) -> Rows:
        """What `image ls --format json` prints, one dict per image (the TUI reads the same)."""
        usage = self.usage()
        return [summary(i, usage.get(i.name)) for i in self.list()]

    def rootfs(self, name: str) -> str:
        path = os.path.join(self.image_dir(name), "rootfs")
        if not os.path.isdir(path):
            raise ImageError(f"image {name!r} does not exist")
        _make_private(self.images)
        return path

    # -- changing --------------------------------------------------------------------------

    def _lock(self) -> _Lock:
        os.makedirs(self.images, 0o700, exist_ok=True)
        _make_private(self.images)
        return self._held

    def _new_temp(self) -> _Temp:
        """Claim a temp dir; under the lock, so a sweep never sees one not yet flock'ed."""
        with self._lock():
            self._sweep()
            path = os.path.join(self.images, _TMP + os.urandom(6).hex())
            os.mkdir(path, 0o700)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
        return _Temp(path, fd)

    def _sweep(self) -> None:
        """Remove temp dirs whose process is gone (their flock is free). Lock held."""
        from tuibox.runtime.images.safefs import remove_tree

        for entry in os.listdir(self.images):
            if not entry.startswith(_TMP):
                continue
            path = os.path.join(self.images, entry)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process is working in it
            finally:
                os.close(fd)
            remove_tree(path)

    def _refuse_existing(self, name: str) -> None:
        if os.path.lexists(self.image_dir(name)):
            raise ImageError(f"image {name!r} already exists")

    def _build(
        self,
        name: str,
        source: str,
        fill: Callable[[str, str], Filled],
        warn: Warn | None,
    ) -> ImageInfo:
        """Run fill(temp_dir, rootfs) -> (defaults, warnings) and commit the result as name."""
        from tuibox.runtime.images.safefs import tree_size

        check_image_name(name)
        self._refuse_existing(name)
        tmp = self._new_temp()
        try:
            rootfs = os.path.join(tmp.path, "rootfs")
            os.mkdir(rootfs, 0o755)
            defaults, warnings = fill(tmp.path, rootfs)
            info = ImageInfo(name, _now(), source, tree_size(rootfs), **defaults)
            data = fastjson.dumps(info.to_json(), indent=1).encode() + b"\n"
            _write_new(os.path.join(tmp.path, "image.json"), data)
            os.chmod(tmp.path, 0o700)
            with self._lock():
                # Another import of the same name may have finished meanwhile.
                self._refuse_existing(name)
                os.rename(tmp.path, self.image_dir(name))
            tmp.release()
        except BaseException:
            # KeyboardInterrupt included: an import leaves a whole image or nothing.
            tmp.discard()
            raise
        if warn is not None:
            for line in warnings:
                warn(line)
        return info

    def import_tar(
        self,
        path: str | os.PathLike[str],
        name: str,
        progress: Progress | None = None,
        warn: Warn | None = None,
    ) -> ImageInfo:
        """Import a tarball: a rootfs (`docker export`) or an image archive (`docker save`,
        an OCI layout in a tar), compressed with gzip, xz, bzip2 or zstd or not at all.

        progress(done, total) follows the bytes read from the file; a compressed image
        archive is unpacked first, then its layers are applied, so there the total grows
        once by the layers' size. warn gets one line per skipped member."""
        src = os.path.abspath(os.fspath(path))

        def fill(tmp: str, rootfs: str) -> tuple[dict[str, Any], list[str]]:
            return _fill_from_tar(src, tmp, rootfs, progress)

        return self._build(name, src, fill, warn)

    def import_dir(
        self,
        path: str | os.PathLike[str],
        name: str,
        progress: Progress | None = None,
        warn: Warn | None = None,
    ) -> ImageInfo:
        """Import a directory: an unpacked rootfs, an OCI layout, or an unpacked docker
        archive (told apart by oci-layout + index.json, or manifest.json, at its top)."""
        src = os.path.abspath(os.fspath(path))

        def fill(tmp: str, rootfs: str) -> tuple[dict[str, Any], list[str]]:
            from tuibox.runtime.images import oci

            if oci.is_image_dir(src):
                return oci.import_dir(src, rootfs, progress)
            from tuibox.runtime.images.dirimport import copy_tree

            return {}, copy_tree(src, rootfs, progress)

        return self._build(name, src, fill, warn)

    def ensure_busybox(self, busybox: str = "/bin/busybox") -> ImageInfo:
        """The image "busybox", built from the host's static busybox on first use."""
        try:
            return self.get(BUSYBOX)
        except ImageError:
            pass

        def fill(tmp: str, rootfs: str) -> tuple[dict[str, Any], list[str]]:
            from tuibox.runtime.images.busybox import build_busybox_rootfs

            build_busybox_rootfs(rootfs, busybox)
            return {"env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cmd": ["/bin/sh"]}, []

        # Two first runs at once: the second waits here, then finds the first one's image.
        with self._lock():
            if self.exists(BUSYBOX):
                return self.get(BUSYBOX)
            return self._build(BUSYBOX, f"busybox:{busybox}", fill, None)

    def import_layered(
        self,
        path: str,
        name: str,
        progress: Progress | None = None,
        warn: Warn | None = None,
        reference: str = "",
        digest: str = "",
    ) -> ImageInfo:
        """Import the OCI layout (or unpacked docker archive) at path as a layered image:
        each layer the store lacks is extracted once, by digest; the image lists them."""
        from tuibox.runtime.images import oci
        from tuibox.runtime.images.layers import import_layered

        check_image_name(name)
        self._refuse_existing(name)
        tmp = self._new_temp()
        warnings: list[str] = []
        try:
            digests, config, size = import_layered(
                path, tmp.path, self.layer_store(), self._lock, progress, warnings
            )
            defaults = oci.config_defaults(config, path)
            info = ImageInfo(
                name,
                _now(),
                reference or path,
                size,
                layers=digests,
                digest=digest,
                reference=reference,
                **defaults,
            )
            _write_new(os.path.join(tmp.path, "config.json"), fastjson.dumps(config).encode())
            data = fastjson.dumps(info.to_json(), indent=1).encode() + b"\n"
            _write_new(os.path.join(tmp.path, "image.json"), data)
            os.unlink(os.path.join(tmp.path, "layers.json"))
            with self._lock():
                self._refuse_existing(name)
                for d in digests:  # a gc between extraction and here would have kept them
                    if not self.layer_store().has(d):
                        raise ImageError(f"image {name!r}: layer {d} vanished during the import")
                os.rename(tmp.path, self.image_dir(name))
            tmp.release()
        except BaseException:
            tmp.discard()
            with self._lock():
                self._sweep_layers()
            raise
        if warn is not None:
            for line in warnings:
                warn(line)
        return info

    def tag(self, src: str, dst: str) -> ImageInfo:
        """A second name for an image. A layered image's record is copied (the layers are
        shared); a flat image's tree is copied as hard links (its files are never written:
        boxes see it through overlayfs, whose copy-up writes to the box's own layer)."""
        info = self.get(src)
        check_image_name(dst)
        self._refuse_existing(dst)
        tmp = self._new_temp()
        try:
            new = info.replace(name=dst, created=_now())
            if not info.layers:
                import subprocess

                done = subprocess.run(
                    [
                        "cp",
                        "-a",
                        "--link",
                        "--",
                        self.rootfs(src),
                        os.path.join(tmp.path, "rootfs"),
                    ],
                    capture_output=True,
                    check=False,
                )
                if done.returncode != 0:
                    err = done.stderr.decode(errors="replace").strip().splitlines()
                    raise ImageError(f"image tag: {err[-1] if err else 'cp failed'}")
            config = os.path.join(self.image_dir(src), "config.json")
            if os.path.isfile(config):
                with open(config, "rb") as f:
                    _write_new(os.path.join(tmp.path, "config.json"), f.read())
            data = fastjson.dumps(new.to_json(), indent=1).encode() + b"\n"
            _write_new(os.path.join(tmp.path, "image.json"), data)
            with self._lock():
                self._refuse_existing(dst)
                if info.layers and self.get(src).layers != info.layers:
                    raise ImageError(f"image {src!r} changed during the tag")
                os.rename(tmp.path, self.image_dir(dst))
            tmp.release()
        except BaseException:
            tmp.discard()
            raise
        return new

    def _wanted(self) -> set[str] | None:
        """Every layer an image or an import in progress names; None if an image's record
        cannot be read (its layers are unknown, so none may be called unused)."""
        from tuibox.runtime.images.layers import wanted_by_temps

        wanted = wanted_by_temps(self.images)
        try:
            entries = os.listdir(self.images)
        except FileNotFoundError:
            return wanted
        for entry in entries:
            if entry.startswith("."):
                continue
            try:
                wanted.update(self.get(entry).layers)
            except (ImageError, InvalidName):
                if os.path.isdir(os.path.join(self.images, entry)):
                    return None
        return wanted

    def unused_layers(self) -> Strings:
        """Layers no image (nor an import in progress) uses: what gc_layers would remove."""
        wanted = self._wanted()
        if wanted is None:
            return []
        return [d for d in self.layer_store().all() if d not in wanted]

    def gc_layers(self) -> Strings:
        """Remove the layers no image (nor an import in progress) uses."""
        with self._lock():
            return self._sweep_layers()

    def _sweep_layers(self) -> Strings:
        wanted = self._wanted()
        if wanted is None:
            return []  # a damaged image record: keep every layer until it is dealt with
        return self.layer_store().sweep(wanted)

    def remove(
        self, name: str, in_use: Callable[[str], bool] | None = None, force: bool = False
    ) -> None:
        """Delete an image; refused while in_use(name) says a box uses it, unless force."""
        if not os.path.lexists(self.image_dir(name)):
            raise ImageError(f"image {name!r} does not exist")
        if not force and in_use is not None and in_use(name):
            raise ImageError(
                f"image {name!r} is in use by a box: remove the box first, or force it"
            )
        with self._lock():
            if not os.path.lexists(self.image_dir(name)):
                raise ImageError(f"image {name!r} does not exist")
            path = os.path.join(self.images, _TMP + os.urandom(6).hex())
            # The name disappears at once; the slow part happens under another name.
            try:
                layered = bool(self.get(name).layers)
            except ImageError:
                layered = True  # a corrupt record: sweeping is safe either way
            os.rename(self.image_dir(name), path)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if layered:
                # Only the layers no other image uses go (a live import's are kept too).
                self._sweep_layers()
        _Temp(path, fd).discard()


def summary(info: ImageInfo, usage: tuple[int, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": info.name,
        "size": info.size,
        "created": info.created,
        "source": info.source,
        "layers": len(info.layers) or 1,
    }
    if usage is not None:
        out["shared_size"], out["unique_size"] = usage
    if info.ports:
        out["ports"] = info.ports
    return out


def _make_private(path: str) -> None:
    """0700 on the images dir: an image may ship setuid-root files, and a store made by an
    older tuibox (0711) would let any local user run them through <data>/images/X/rootfs."""
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
    except FileNotFoundError:
        pass


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fill_from_tar(
    src: str, tmp: str, rootfs: str, progress: Progress | None
) -> tuple[dict[str, Any], list[str]]:
    from tuibox.runtime.images import oci, tarimport

    with tarimport.TarInput(src) as inp:
        # A plain tar's headers are cheap to scan, and an image archive is read in place.
        if inp.seekable and oci.is_image_archive(inp.names()):
            return oci.import_tar(inp.tar, src, rootfs, progress)
        warnings = tarimport.extract_into(inp, rootfs, progress)
        total = inp.total
    if inp.seekable or not oci.is_image_dir(rootfs):
        return {}, warnings
    # A compressed image archive cannot be read in place: what was just unpacked is its
    # layout; apply its layers into a fresh rootfs.
    unpacked = os.path.join(tmp, "archive")
    os.rename(rootfs, unpacked)
    os.mkdir(rootfs, 0o755)

    def shifted(done: int, layers: int) -> None:
        if progress is not None:
            progress(total + done, total + layers)

    defaults, more = oci.import_dir(unpacked, rootfs, shifted)
    from tuibox.runtime.images.safefs import remove_tree

    remove_tree(unpacked)
    return defaults, warnings + more
