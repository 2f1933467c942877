"""OCI image layouts and `docker save` / `podman save` archives, flattened into one rootfs.

Sources: a directory holding an OCI layout (oci-layout, index.json, blobs/<alg>/<hex>) or an
unpacked docker archive (manifest.json), or a tar archive holding either. Every blob is read
through a hash and checked against its digest: OCI blobs by the digest that names them, docker
layers also by the config's rootfs.diff_ids (the digest of the uncompressed tar). A layer is
applied while it is hashed, so a mismatch is seen at its end; the whole import then fails and
the store throws the half-built rootfs away.

Layers are applied in order through `tarimport.apply_members(layer=True)`: the same member
checks as any tarball, plus whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties the
directory of what lower layers put there).
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.tarimport import (
    CountingReader,
    Decompressed,
    Ticker,
    apply_members,
    decode_errors,
    member_parts,
    sniff,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import tarfile
    from collections.abc import Callable, Iterable
    from typing import IO, Any, Protocol

    Progress = Callable[[int, int], None]
    Digest = tuple[str, str]

    class Source(Protocol):
        label: str

        def exists(self, rel: str) -> bool: ...

        def open(self, rel: str) -> IO[bytes]: ...


MAX_JSON = 16 << 20  # manifests and configs are kilobytes; refuse to buffer a huge "config"
_HEX_LEN = {"sha256": 64, "sha512": 128}
_HEXDIGITS = frozenset("0123456789abcdef")
_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
# uname -m -> the GOARCH names that image platforms use
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def is_image_archive(names: Iterable[str]) -> bool:
    """Whether an archive's top level is a docker archive or an OCI layout, not a rootfs."""
    top = {n[2:] if n.startswith("./") else n for n in names}
    return "manifest.json" in top or ("oci-layout" in top and "index.json" in top)


def is_image_dir(path: str) -> bool:
    def isfile(name: str) -> bool:
        full = os.path.join(path, name)
        return os.path.isfile(full) and not os.path.islink(full)

    return isfile("manifest.json") or (isfile("oci-layout") and isfile("index.json"))


# -- sources ---------------------------------------------------------------------------------


class DirSource:
    """Blobs as files under a directory; symlinks inside it resolve within it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.label = root

    def _path(self, rel: str) -> str:
        from tuibox.runtime.linux.paths import resolve_in_root

        return resolve_in_root(self.root, rel)

    def exists(self, rel: str) -> bool:
        return os.path.isfile(self._path(rel))

    def open(self, rel: str) -> IO[bytes]:
        try:
            fd = os.open(self._path(rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ImageError(f"{self.label}: {rel} is missing") from None
        except OSError as e:
            raise ImageError(f"{self.label}: cannot read {rel}: {e.strerror}") from None
        return open(fd, "rb")


class TarSource:
    """Blobs as members of a plain tar opened for random access (docker save output)."""

    def __init__(self, tar: tarfile.TarFile, label: str) -> None:
        self.tar = tar
        self.label = label
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tar.getmembers():
            try:
                self.members["/".join(member_parts(m.name))] = m
            except ImageError:
                continue  # never looked up: blob paths are normalised the same way

    def exists(self, rel: str) -> bool:
        return rel in self.members

    def open(self, rel: str) -> IO[bytes]:
        m = self.members.get(rel)
        f = None
        if m is not None:
            try:
                # Links (docker save links repeated layers) resolve within the archive.
                f = self.tar.extractfile(m)
            except KeyError:
                f = None
        if f is None:
            raise ImageError(f"{self.label}: {rel} is missing")
        return f


def _size(f: IO[bytes]) -> int:
    size = f.seek(0, 2)
    f.seek(0)
    return size


# -- digests and json ------------------------------------------------------------------------


def _digest(value: object, label: str) -> Digest:
    if isinstance(value, str) and ":" in value:
        alg, hexpart = value.split(":", 1)
        if len(hexpart) == _HEX_LEN.get(alg, -1) and set(hexpart) <= _HEXDIGITS:
            return alg, hexpart
    raise ImageError(f"{label}: unsupported or malformed digest {value!r}")


def _rel(path: object, label: str) -> str:
    if not isinstance(path, str) or not path:
        raise ImageError(f"{label}: manifest.json names an invalid path {path!r}")
    return "/".join(member_parts(path, "manifest path"))


def _read_json(source: Source, rel: str, digest: Digest | None) -> Any:
    import hashlib

    with source.open(rel) as f:
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ImageError(f"{source.label}: {rel} is too large for a manifest or config")
    if digest is not None and hashlib.new(digest[0], data).hexdigest() != digest[1]:
        raise ImageError(f"{source.label}: {rel} does not match its digest {':'.join(digest)}")
    try:
        return fastjson.loads(data)
    except ValueError as e:
        raise ImageError(f"{source.label}: {rel} is not valid JSON: {e}") from None


def _blob(desc: object, label: str) -> tuple[str, Digest, int | None]:
    if not isinstance(desc, dict):
        raise ImageError(f"{label}: a descriptor is not a JSON object")
    digest = _digest(desc.get("digest"), label)
    size = desc.get("size")
    return f"blobs/{digest[0]}/{digest[1]}", digest, size if isinstance(size, int) else None


def _strings(value: object, field: str, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"{label}: image config field {field} must be a list of strings")
    return list(value)


def _string(value: object, field: str, label: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImageError(f"{label}: image config field {field} must be a string")
    return value


def config_defaults(config: object, label: str) -> dict[str, Any]:
    """The process defaults of an image config, in image.json's names."""
    inner = config.get("config") if isinstance(config, dict) else None
    c: dict[str, Any] = inner if isinstance(inner, dict) else {}
    return {
        "env": _strings(c.get("Env"), "Env", label),
        "cmd": _strings(c.get("Cmd"), "Cmd", label),
        "entrypoint": _strings(c.get("Entrypoint"), "Entrypoint", label),
        "workdir": _string(c.get("WorkingDir"), "WorkingDir", label),
        "user": _string(c.get("User"), "User", label),
        "ports": sorted(k for k in (c.get("ExposedPorts") or {}) if isinstance(k, str))
        if isinstance(c.get("ExposedPorts") or {}, dict)
        else [],
        "labels": {str(k): str(v) for k, v in (c.get("Labels") or {}).items() if isinstance(v, str)}
        if isinstance(c.get("Labels") or {}, dict)
        else {},
    }


def _diff_ids(config: object, count: int, label: str) -> list[Digest | None]:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        return [None] * count
    if len(ids) != count:
        raise ImageError(f"{label}: the config lists {len(ids)} layer digests for {count} layers")
    return [_digest(d, label) for d in ids]


# -- layers ----------------------------------------------------------------------------------


class Layer:
    __slots__ = ("blob", "diff", "rel")

    def __init__(self, rel: str, blob: Digest | None, diff: Digest | None) -> None:
        if blob is None and diff is None:
            raise ImageError(f"layer {rel} has no digest to verify it against")
        self.rel = rel
        self.blob = blob
        self.diff = diff


def _apply_layer(
    source: Source,
    layer: Layer,
    rootfs: str,
    ticker: Ticker,
    warnings: list[str],
    overlay: bool = False,
) -> None:
    import hashlib
    import tarfile

    from tuibox.runtime.images.safefs import RootWriter

    where = f"{source.label}: layer {layer.rel}"
    with source.open(layer.rel) as f:
        kind = sniff(f.read(8))
        f.seek(0)
        blob_h = hashlib.new(layer.blob[0]) if layer.blob else None
        diff = layer.diff
        if kind == "tar" and diff is not None and (blob_h is None or diff[0] == blob_h.name):
            # Uncompressed: the blob is the diff, one hash checks both.
            blob_h = blob_h or hashlib.new(diff[0])
            diff_h = None
        else:
            diff_h = hashlib.new(diff[0]) if diff is not None else None
        raw = CountingReader(f, blob_h)
        ticker.position = lambda: raw.count
        dec = Decompressed(raw, kind)
        ok = False
        try:
            data = CountingReader(dec.stream, diff_h)
            with tarfile.open(fileobj=data, mode="r|") as tar, RootWriter(rootfs) as writer:
                warnings += apply_members(tar, tar, writer, ticker, layer=True, overlay=overlay)
            data.drain()
            raw.drain()
            ok = True
        except decode_errors() as e:
            raise ImageError(f"{where}: corrupt or truncated: {e}") from None
        except ImageError as e:
            raise ImageError(f"{where}: {e}") from None
        finally:
            dec.close(ok)
    checks = ((layer.blob, blob_h), (diff, diff_h if diff_h is not None else blob_h))
    for want, got in checks:
        if want is None or got is None or got.name != want[0]:
            continue
        if got.hexdigest() != want[1]:
            raise ImageError(f"{where} does not match its digest {':'.join(want)}")


def _apply_layers(
    source: Source, layers: list[Layer], rootfs: str, progress: Progress | None
) -> list[str]:
    sizes = []
    for layer in layers:
        with source.open(layer.rel) as f:
            sizes.append(_size(f))
    total = sum(sizes)
    warnings: list[str] = []
    done = 0
    for layer, size in zip(layers, sizes, strict=True):
        ticker = Ticker(progress, lambda: 0, total, base=done)
        _apply_layer(source, layer, rootfs, ticker, warnings)
        done += size
    if progress is not None:
        progress(total, total)
    return warnings


# -- formats ---------------------------------------------------------------------------------


def _host_arch() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def _pick(manifests: object, label: str) -> object:
    if not isinstance(manifests, list) or not manifests:
        raise ImageError(f"{label}: the image index lists no manifests")
    if len(manifests) == 1:
        return manifests[0]
    arch = _host_arch()
    found = []
    seen = []
    for desc in manifests:
        platform = desc.get("platform") if isinstance(desc, dict) else None
        if not isinstance(platform, dict):
            continue
        seen.append(f"{platform.get('os')}/{platform.get('architecture')}")
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            found.append(desc)
    if not found:
        raise ImageError(
            f"{label}: no image for linux/{arch} in the index (it has {', '.join(seen) or 'none'})"
        )
    return found[0]


def _from_layout(source: Source) -> tuple[list[Layer], Any]:
    label = source.label
    _read_json(source, "oci-layout", None)
    index = _read_json(source, "index.json", None)
    manifest: Any = index
    # An index may point at an index (multi-platform); a manifest has layers.
    for _ in range(4):
        if not isinstance(manifest, dict):
            raise ImageError(f"{label}: an index or manifest is not a JSON object")
        if "layers" in manifest and "manifests" not in manifest:
            break
        desc = _pick(manifest.get("manifests"), label)
        rel, digest, _ = _blob(desc, label)
        manifest = _read_json(source, rel, digest)
    else:
        raise ImageError(f"{label}: image indexes nested too deeply")
    if not isinstance(manifest, dict) or manifest.get("mediaType") in _INDEX_TYPES:
        raise ImageError(f"{label}: no image manifest found")
    crel, cdigest, _ = _blob(manifest.get("config"), label)
    config = _read_json(source, crel, cdigest)
    descs = manifest.get("layers")
    if not isinstance(descs, list):
        raise ImageError(f"{label}: the manifest has no layer list")
    diffs = _diff_ids(config, len(descs), label)
    layers = []
    for desc, diff in zip(descs, diffs, strict=True):
        rel, digest, size = _blob(desc, label)
        if not source.exists(rel):
            raise ImageError(f"{label}: blob {':'.join(digest)} is missing from the layout")
        if size is not None:
            with source.open(rel) as f:
                if _size(f) != size:
                    raise ImageError(f"{label}: blob {':'.join(digest)} has the wrong size")
        layers.append(Layer(rel, digest, diff))
    return layers, config


def _digest_in_name(rel: str) -> Digest | None:
    """Docker names blobs after their digest: blobs/sha256/<hex> or (older) <hex>.json."""
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return _digest(f"{parts[1]}:{parts[2]}", rel)
        except ImageError:
            return None
    stem = parts[-1].removesuffix(".json")
    if len(parts) == 1 and len(stem) == 64 and set(stem) <= _HEXDIGITS:
        return ("sha256", stem)
    return None


def _from_docker(source: Source) -> tuple[list[Layer], Any]:
    label = source.label
    entries = _read_json(source, "manifest.json", None)
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{label}: manifest.json lists no image")
    if len(entries) > 1:
        tags = [t for e in entries if isinstance(e, dict) for t in e.get("RepoTags") or ()]
        raise ImageError(
            f"{label}: the archive holds {len(entries)} images ({', '.join(map(str, tags))}); "
            "save one image per archive"
        )
    entry = entries[0]
    if not isinstance(entry, dict):
        raise ImageError(f"{label}: manifest.json entry is not a JSON object")
    crel = _rel(entry.get("Config"), label)
    config = _read_json(source, crel, _digest_in_name(crel))
    rels = entry.get("Layers")
    if not isinstance(rels, list):
        raise ImageError(f"{label}: manifest.json has no Layers list")
    diffs = _diff_ids(config, len(rels), label)
    layers = []
    for path, diff in zip(rels, diffs, strict=True):
        rel = _rel(path, label)
        try:
            layers.append(Layer(rel, _digest_in_name(rel), diff))
        except ImageError as e:
            raise ImageError(f"{label}: {e}") from None
    return layers, config


def import_image(
    source: Source, rootfs: str, progress: Progress | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Apply the image in source onto the empty directory rootfs; return (defaults, warnings)."""
    layers, config = read_image(source)
    warnings = _apply_layers(source, layers, rootfs, progress)
    return config_defaults(config, source.label), warnings


def read_image(source: Source) -> tuple[list[Layer], Any]:
    """The layers (bottom first) and the raw config of the image in source."""
    if source.exists("oci-layout") and source.exists("index.json"):
        return _from_layout(source)
    if source.exists("manifest.json"):
        return _from_docker(source)
    raise ImageError(f"{source.label}: neither an OCI layout nor a docker archive")


def layer_size(source: Source, layer: Layer) -> int:
    with source.open(layer.rel) as f:
        return _size(f)


def extract_layer(
    source: Source,
    layer: Layer,
    dest: str,
    progress: Progress | None = None,
    base: int = 0,
    total: int = 0,
) -> list[str]:
    """Extract one layer on its own into the empty directory dest, whiteouts kept in
    overlayfs's form; progress(base + bytes read, total). Returns the warnings."""
    warnings: list[str] = []
    ticker = Ticker(progress, lambda: 0, total, base=base)
    _apply_layer(source, layer, dest, ticker, warnings, overlay=True)
    return warnings


def import_dir(
    path: str, rootfs: str, progress: Progress | None = None
) -> tuple[dict[str, Any], list[str]]:
    return import_image(DirSource(path), rootfs, progress)


def import_tar(
    tar: tarfile.TarFile, label: str, rootfs: str, progress: Progress | None = None
) -> tuple[dict[str, Any], list[str]]:
    return import_image(TarSource(tar, label), rootfs, progress)
