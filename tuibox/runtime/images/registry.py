"""Pull and push through a registry with skopeo (Debian's `skopeo`).

skopeo implements the distribution spec, auth files (registries.conf, auth.json), mirrors
and signature policies; tuibox only drives it:

    pull   skopeo inspect  docker://REF                (fails fast; gives the layer sizes)
           skopeo copy     docker://REF  oci:<data>/pulls/<key>:latest
           then the layout is imported layer by layer (layers.py) and removed
    push   the image is written as an OCI layout (uncompressed layers, made reproducibly
           from the stored trees) into a temp dir, then  skopeo copy oci:DIR docker://REF

The download layout of a pull survives an interrupted or timed-out pull (only then) and
holds the blobs that arrived whole: skopeo reuses a blob already in an OCI destination, so a
retry fetches only the rest. A successful pull, or one refused by the registry, removes it;
`tuibox gc` removes one no pull is using.

skopeo's errors are mapped to one line each (missing image, refused auth, unreachable
registry, plain http without --tls-verify=false); the raw message follows a colon.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time

from tuibox.runtime import fastjson
from tuibox.runtime.errors import ImageError, Unsupported
from tuibox.runtime.images.reference import Reference, parse_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from tuibox.runtime.images.store import ImageInfo, ImageStore

    # (phase, done, total): phase "download" (bytes of blobs arrived) then "extract"
    PullProgress = Callable[[str, int, int], None]

SKOPEO = "skopeo"
DEFAULT_TIMEOUT = 120.0
PULLS = "pulls"
PUSH_PREFIX = ".push-"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
_OCI = "application/vnd.oci.image"


def host_arch() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


class SkopeoError(ImageError):
    """skopeo refused; `reason` is one of missing, auth, unreachable, tls, other."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _classify(ref: Reference, stderr: str, timed_out: bool, timeout: float = 0) -> SkopeoError:
    text = " ".join(stderr.split()).replace('\\"', '"')
    low = text.lower()
    # skopeo prefixes its own words; the cause is the tail after the last "time=..." line.
    detail = text.rsplit('msg="', 1)[-1].rstrip('"') if 'msg="' in text else text
    detail = detail[-300:]
    host = ref.registry
    if timed_out or "context deadline exceeded" in low or "i/o timeout" in low:
        within = f" within {timeout:g} s" if timeout else " in time"
        return SkopeoError(f"registry {host} did not answer{within}", "unreachable")
    if "http response to https client" in low:
        return SkopeoError(
            f"registry {host} speaks plain http: pass --tls-verify=false to use it", "tls"
        )
    if "x509" in low or "certificate" in low or "tls:" in low:
        return SkopeoError(f"registry {host}: TLS failed: {detail}", "tls")
    if "dial tcp" in low:
        detail = text[low.index("dial tcp") :].rstrip('"')
    if any(
        w in low
        for w in (
            "connection refused",
            "no such host",
            "network is unreachable",
            "no route to host",
            "connection reset",
            "dial tcp",
        )
    ):
        return SkopeoError(f"registry {host} is unreachable: {detail}", "unreachable")
    if any(w in low for w in ("unauthorized", "authentication required", "denied", "forbidden")):
        # skopeo's chain of contexts ends with the registry's own words.
        said = ": ".join(detail.split(": ")[-2:])
        return SkopeoError(
            f"registry {host} refused access to {ref} (log in, or check the name): {said}",
            "auth",
        )
    if any(
        w in low
        for w in (
            "manifest unknown",
            "name unknown",
            "not found",
            "no image found",
            "does not exist",
        )
    ):
        return SkopeoError(f"image {ref} was not found in registry {host}", "missing")
    return SkopeoError(f"skopeo failed for {ref}: {detail or 'no message'}", "other")


def _skopeo_argv(timeout: float, arch: bool = True) -> list[str]:
    argv = [SKOPEO, "--command-timeout", f"{max(int(timeout), 1)}s"]
    if arch:
        argv += ["--override-os", "linux", "--override-arch", host_arch()]
    return argv


def _run(
    argv: list[str],
    ref: Reference,
    timeout: float,
    tick: Callable[[], None] | None = None,
) -> str:
    """Run skopeo; its stdout, or a SkopeoError. Our own deadline backs up skopeo's."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a ^C reaches us; we stop skopeo ourselves
        )
    except FileNotFoundError:
        raise Unsupported(
            "skopeo is not installed (Debian: apt-get install skopeo); pull and push need it"
        ) from None
    import threading

    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for t in readers:
        t.start()
    deadline = time.monotonic() + timeout + 5
    timed_out = False
    try:
        while True:
            try:
                proc.wait(0.2)
                break
            except subprocess.TimeoutExpired:
                if tick is not None:
                    tick()
                if time.monotonic() > deadline:
                    timed_out = True
                    proc.kill()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    for t in readers:
        t.join()
    stdout = b"".join(out).decode(errors="replace")
    stderr = b"".join(err).decode(errors="replace")
    if proc.returncode != 0 or timed_out:
        raise _classify(ref, stderr, timed_out, timeout)
    return stdout


def _tls(tls_verify: bool, side: str) -> list[str]:
    return [] if tls_verify else [f"--{side}-tls-verify=false"]


def remote_manifest(
    ref: Reference,
    tls_verify: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    authfile: str | None = None,
) -> dict[str, Any]:
    """The image manifest for this host (an index is resolved by platform): `skopeo inspect
    --raw`, which fetches only manifests. Fails fast on a missing image or registry."""
    tls = [] if tls_verify else ["--tls-verify=false"]
    if authfile:
        tls += ["--authfile", authfile]
    current = ref
    for _ in range(3):
        raw = _run(
            [*_skopeo_argv(timeout), "inspect", "--raw", *tls, current.transport()], ref, timeout
        )
        try:
            data = fastjson.loads(raw)
        except ValueError:
            raise ImageError(f"registry {ref.registry}: unreadable manifest for {ref}") from None
        if not isinstance(data, dict):
            raise ImageError(f"registry {ref.registry}: unreadable manifest for {ref}")
        if not isinstance(data.get("manifests"), list):
            return data
        found = _platform(data["manifests"])
        if found is None:
            raise ImageError(f"image {ref} has no linux/{host_arch()} variant")
        current = Reference(ref.registry, ref.repository, digest=found)
    raise ImageError(f"image {ref}: image indexes nested too deeply")


def _platform(manifests: list[Any]) -> str | None:
    arch = host_arch()
    for m in manifests:
        p = m.get("platform") if isinstance(m, dict) else None
        if isinstance(p, dict) and p.get("os") == "linux" and p.get("architecture") == arch:
            return str(m.get("digest"))
    if len(manifests) == 1 and isinstance(manifests[0], dict):
        return str(manifests[0].get("digest"))
    return None


def _pull_dir(store: ImageStore, ref: Reference) -> str:
    key = hashlib.sha256(str(ref).encode()).hexdigest()[:20]
    return os.path.join(store.data_root, PULLS, key)


def _dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                continue
    return total


def pull(
    store: ImageStore,
    text: str,
    name: str | None = None,
    progress: PullProgress | None = None,
    warn: Callable[[str], None] | None = None,
    tls_verify: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    authfile: str | None = None,
) -> ImageInfo:
    """Pull REF (docker's syntax) into the store as a layered image named `name` (default:
    the reference's last component, see Reference.local_name)."""
    from tuibox.runtime.images.safefs import remove_tree
    from tuibox.runtime.images.store import check_image_name

    ref = parse_reference(text)
    name = check_image_name(name or ref.local_name())
    if store.exists(name):
        raise ImageError(f"image {name!r} already exists (remove it, or pull with another name)")
    authfile = _check_authfile(authfile)
    manifest = remote_manifest(ref, tls_verify, timeout, authfile)
    layers = manifest.get("layers") or manifest.get("fsLayers") or ()
    total = sum(int(x.get("size") or 0) for x in layers if isinstance(x, dict))
    work = _pull_dir(store, ref)
    os.makedirs(os.path.dirname(work), 0o700, exist_ok=True)
    os.makedirs(work, 0o700, exist_ok=True)
    lock = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    keep = False
    layout = os.path.join(work, "layout")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)  # that pull's dir is its own: leave it alone
        raise ImageError(f"{ref} is being pulled by another process") from None
    try:

        def tick() -> None:
            if progress is not None:
                got = _dir_bytes(layout)
                progress("download", min(got, total) if total else got, total)

        argv = [
            *_skopeo_argv(timeout),
            "copy",
            "--quiet",
            "--retry-times",
            str(retries),
            *_tls(tls_verify, "src"),
            *(["--src-authfile", authfile] if authfile else []),
            ref.transport(),
            f"oci:{layout}:latest",
        ]
        try:
            _run(argv, ref, timeout, tick)
        except SkopeoError as e:
            # Blobs that arrived whole make a retry cheaper; a refusal leaves nothing.
            keep = e.reason in ("unreachable", "other") and _has_blobs(layout)
            raise
        if progress is not None:
            progress("download", total, total)
        digest = _manifest_digest(layout)

        def extracted(done: int, all_: int) -> None:
            if progress is not None:
                progress("extract", done, all_)

        return store.import_layered(
            layout,
            name,
            extracted,
            warn,
            reference=str(ref),
            digest=digest,
        )
    except KeyboardInterrupt:
        keep = _has_blobs(layout)  # during the download or the extraction: blobs are whole
        raise
    finally:
        if not keep:
            remove_tree(work)
            try:
                os.rmdir(os.path.dirname(work))
            except OSError:
                pass
        os.close(lock)


def _check_authfile(path: str | None) -> str | None:
    """skopeo's auth file (`skopeo login --authfile` or podman's auth.json); without one,
    skopeo reads $REGISTRY_AUTH_FILE, then ${XDG_RUNTIME_DIR}/containers/auth.json."""
    if not path:
        return None
    if not os.path.isfile(path):
        raise ImageError(f"--authfile {path}: no such file")
    return os.path.abspath(path)


def _has_blobs(layout: str) -> bool:
    try:
        return bool(os.listdir(os.path.join(layout, "blobs", "sha256")))
    except OSError:
        return False


def _manifest_digest(layout: str) -> str:
    try:
        with open(os.path.join(layout, "index.json"), "rb") as f:
            index = fastjson.loads(f.read())
        return str(index["manifests"][0]["digest"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return ""


def stale_transfers(store: ImageStore) -> list[str]:
    """Download layouts of interrupted pulls and layouts of killed pushes that no process
    holds any more."""
    from tuibox.runtime.images.layers import held

    base = os.path.join(store.data_root, PULLS)
    found = [os.path.join(base, e) for e in _entries(base)]
    found += [
        os.path.join(store.data_root, e)
        for e in _entries(store.data_root)
        if e.startswith(PUSH_PREFIX)
    ]
    return [p for p in found if not held(p)]


def _entries(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def sweep_pulls(store: ImageStore) -> list[str]:
    """Remove what stale_transfers finds; return the paths removed."""
    from tuibox.runtime.images.safefs import remove_tree

    out = stale_transfers(store)
    for path in out:
        remove_tree(path)
    return out


# ---- push ------------------------------------------------------------------------------------


def push(
    store: ImageStore,
    name: str,
    text: str,
    tls_verify: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    tick: Callable[[], None] | None = None,
    authfile: str | None = None,
) -> str:
    """Push image `name` to REF; returns the reference pushed."""
    import tempfile

    from tuibox.runtime.images.boxspec import resolve_image
    from tuibox.runtime.images.safefs import remove_tree

    ref = parse_reference(text)
    authfile = _check_authfile(authfile)
    info = resolve_image(store, name)  # "busybox" is built on first use, as for run
    os.makedirs(store.data_root, 0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=PUSH_PREFIX, dir=store.data_root)
    # Held while we work: gc removes a push dir only once its process is gone.
    lock = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        write_layout(store, info, tmp)
        argv = [
            *_skopeo_argv(timeout, arch=False),
            "copy",
            "--quiet",
            "--retry-times",
            str(retries),
            *_tls(tls_verify, "dest"),
            *(["--dest-authfile", authfile] if authfile else []),
            f"oci:{tmp}:latest",
            ref.transport(),
        ]
        _run(argv, ref, timeout, tick)
    finally:
        remove_tree(tmp)
        os.close(lock)
    return str(ref)


def write_layout(store: ImageStore, info: ImageInfo, out: str) -> None:
    """The image as an OCI layout in the empty dir `out`: one uncompressed layer per stored
    tree (whiteouts turned back into .wh. files), the config (the pulled one, with the new
    diff_ids, or one made from image.json), a manifest and index.json."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    roots: list[str] = list(reversed(store.roots(info.name)))  # bottom first
    layers: list[dict[str, Any]] = []
    overlay = bool(info.layers)
    for root in roots:

        def fill(f: Any, r: str = root) -> None:
            export_tree(r, f, overlay)

        digest, size = _write_blob(blobs, fill)
        layers.append({"mediaType": f"{_OCI}.layer.v1.tar", "digest": digest, "size": size})
    config = store.config(info.name)
    if not isinstance(config, dict):
        config = _config_from_info(info)
    config = dict(config)
    config["rootfs"] = {"type": "layers", "diff_ids": [x["digest"] for x in layers]}
    history = config.get("history")
    if isinstance(history, list):
        # history counts only non-empty layers against diff_ids; keep it only when it still fits.
        real = [h for h in history if isinstance(h, dict) and not h.get("empty_layer")]
        if len(real) != len(layers):
            config.pop("history")
    cdata = fastjson.dumps(config).encode()
    cdigest, csize = _write_blob(blobs, lambda f: f.write(cdata))
    manifest = {
        "schemaVersion": 2,
        "mediaType": f"{_OCI}.manifest.v1+json",
        "config": {"mediaType": f"{_OCI}.config.v1+json", "digest": cdigest, "size": csize},
        "layers": layers,
    }
    mdata = fastjson.dumps(manifest).encode()
    mdigest, msize = _write_blob(blobs, lambda f: f.write(mdata))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": f"{_OCI}.manifest.v1+json",
                "digest": mdigest,
                "size": msize,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(fastjson.dumps(index).encode())
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion": "1.0.0"}')


def _config_from_info(info: ImageInfo) -> dict[str, Any]:
    c: dict[str, Any] = {}
    if info.env:
        c["Env"] = info.env
    if info.cmd:
        c["Cmd"] = info.cmd
    if info.entrypoint:
        c["Entrypoint"] = info.entrypoint
    if info.workdir:
        c["WorkingDir"] = info.workdir
    if info.user:
        c["User"] = info.user
    if info.ports:
        c["ExposedPorts"] = {p: {} for p in info.ports}
    if info.labels:
        c["Labels"] = info.labels
    return {"architecture": host_arch(), "os": "linux", "config": c}


class _Hashing:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)


def _write_blob(blobs: str, fill: Callable[[Any], object]) -> tuple[str, int]:
    tmp = os.path.join(blobs, ".partial")
    with open(tmp, "wb") as f:
        w = _Hashing(f)
        fill(w)
    digest = w.h.hexdigest()
    os.rename(tmp, os.path.join(blobs, digest))
    return f"sha256:{digest}", w.size


def export_tree(root: str, out: Any, overlay: bool) -> None:
    """A reproducible tar of a tree: sorted names, numeric owners, no user names, PAX.

    overlay: the tree is a stored layer; its whiteouts (0/0 character devices) become
    `.wh.NAME` and an opaque directory gets `.wh..wh..opq`. Device nodes, fifos and sockets
    are left out (an importer skips them: a box gets /dev from the runtime)."""
    import stat
    import tarfile

    from tuibox.runtime.images.safefs import OPAQUE_XATTR

    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def base(name: str, st: os.stat_result) -> tarfile.TarInfo:
            ti = tarfile.TarInfo(name)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = st.st_uid, st.st_gid
            ti.uname = ti.gname = ""
            ti.mtime = int(st.st_mtime)
            return ti

        def walk(path: str, rel: str) -> None:
            for entry in sorted(os.listdir(path)):
                full = os.path.join(path, entry)
                name = f"{rel}{entry}"
                st = os.lstat(full)
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    ti = base(name, st)
                    ti.type = tarfile.DIRTYPE
                    tar.addfile(ti)
                    if overlay and _opaque(full, OPAQUE_XATTR):
                        wh = base(f"{name}/.wh..wh..opq", st)
                        wh.mode = 0
                        tar.addfile(wh)
                    walk(full, name + "/")
                elif stat.S_ISREG(mode):
                    ti = base(name, st)
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in links:
                        ti.type = tarfile.LNKTYPE
                        ti.linkname = links[key]
                        tar.addfile(ti)
                        continue
                    links[key] = name
                    ti.size = st.st_size
                    with open(full, "rb") as f:
                        tar.addfile(ti, f)
                elif stat.S_ISLNK(mode):
                    ti = base(name, st)
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = os.readlink(full)
                    tar.addfile(ti)
                elif overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
                    ti = base(f"{rel}.wh.{entry}", st)
                    ti.mode = 0
                    tar.addfile(ti)

        walk(root, "")


def _opaque(path: str, attr: str) -> bool:
    try:
        return os.getxattr(path, attr, follow_symlinks=False) == b"y"
    except OSError:
        return False
