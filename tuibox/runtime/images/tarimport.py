"""Extracting tarballs safely: plain, gzip, xz, bzip2 or zstd, told apart by magic bytes.

tarfile only parses here; it never writes. Each member's name is checked (no absolute path, no
`..` that climbs out), then written through `safefs.RootWriter`, which refuses a path that
goes through a symlink planted by an earlier member. Device nodes and fifos are skipped with a
warning: a box gets its devices from the runtime, and an image has no business carrying them.
OCI layers go through the same code with `layer=True`, which adds whiteouts.
"""

from __future__ import annotations

import os

from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.safefs import RootWriter

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    import tarfile
    import threading
    from collections.abc import Callable, Iterable
    from typing import Any, BinaryIO

    from tuibox.runtime.images.safefs import Parts, Readable

    Progress = Callable[[int, int], None]

MAX_DEPTH = 256  # keeps every later walk of the tree (size, removal) well inside recursion
PROGRESS_STEP = 1 << 18
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def sniff(head: bytes) -> str:
    """The compression of a stream from its first bytes; "tar" when none is recognised."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "tar"


def member_parts(name: str, what: str = "archive member") -> Parts:
    """The components of a member name inside the image root, or an error naming it."""
    if "\0" in name:
        raise ImageError(f"refusing {what} {name!r}: the name holds a NUL byte")
    if name.startswith("/"):
        raise ImageError(f"refusing {what} {name!r}: absolute path")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ImageError(f"refusing {what} {name!r}: it leads outside the image")
            parts.pop()
        else:
            parts.append(part)
    if len(parts) > MAX_DEPTH:
        raise ImageError(f"refusing {what} {name[:60]!r}...: deeper than {MAX_DEPTH} levels")
    return tuple(parts)


class CountingReader:
    """Counts (and optionally hashes) the bytes read through it: progress and digests."""

    def __init__(self, raw: Readable, hasher: Any = None) -> None:
        self.raw = raw
        self.count = 0
        self.hasher = hasher

    def read(self, size: int = -1, /) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    def drain(self) -> None:
        # Digests and gzip's CRC cover the bytes after the tar's end blocks too.
        while self.read(1 << 20):
            pass

    # tarfile and the decompressors declare these; a stream never needs them.
    def write(self, data: bytes, /) -> int:
        raise OSError("read-only stream")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise OSError("stream is not seekable")

    def close(self) -> None:
        pass


class _ZstdCommand:
    """`zstd -dc` fed from a thread: the source may be a member of another archive."""

    def __init__(self, src: Readable) -> None:
        import subprocess
        import threading

        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                ["zstd", "-dcq"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise ImageError(
                "zstd-compressed input, but neither the zstandard module nor the zstd command "
                "is installed"
            ) from None
        self.src = src
        self.error: BaseException | None = None
        self.thread: threading.Thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while True:
                data = self.src.read(1 << 16)
                if not data:
                    break
                stdin.write(data)
        except BrokenPipeError:
            pass  # zstd stopped reading: its exit status tells why
        except BaseException as e:
            self.error = e
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def read(self, size: int = -1, /) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.read(size)

    def close(self, ok: bool) -> None:
        if not ok:
            self.proc.kill()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        err = self.proc.stderr.read().decode(errors="replace").strip()
        self.proc.stderr.close()
        self.proc.wait()
        self.thread.join()
        if not ok:
            return
        if self.error is not None:
            raise self.error
        if self.proc.returncode != 0:
            raise ImageError(f"zstd failed: {err.splitlines()[-1] if err else 'no message'}")


class Decompressed:
    """The tar stream inside `raw`; closing it stops a zstd process if one was started."""

    def __init__(self, raw: CountingReader, kind: str) -> None:
        self._zstd: _ZstdCommand | None = None
        self.stream: Readable
        if kind == "tar":
            self.stream = raw
        elif kind == "gzip":
            import gzip

            self.stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "xz":
            import lzma

            self.stream = lzma.LZMAFile(raw)  # type: ignore[arg-type]  # noqa: SIM115
        elif kind == "bzip2":
            import bz2

            self.stream = bz2.BZ2File(raw)  # type: ignore[call-overload]  # only read()
        else:
            self.stream = self._open_zstd(raw)

    def _open_zstd(self, raw: CountingReader) -> Readable:
        import importlib

        try:
            zstandard: Any = importlib.import_module("zstandard")
        except ImportError:
            self._zstd = _ZstdCommand(raw)
            return self._zstd
        reader: Readable = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return reader

    def close(self, ok: bool = True) -> None:
        if self._zstd is not None:
            self._zstd.close(ok)


def decode_errors() -> tuple[type[BaseException], ...]:
    """What a corrupt or truncated archive raises, besides tarfile's own errors."""
    import tarfile
    import zlib

    found: list[type[BaseException]] = [tarfile.TarError, EOFError, zlib.error]
    for mod, name in (("lzma", "LZMAError"), ("gzip", "BadGzipFile")):
        module = __import__(mod)
        found.append(getattr(module, name))
    return tuple(found)


class TarInput:
    """An archive file opened for extraction.

    A plain tar is opened for random access: scanning its headers is cheap, so the caller can
    look at all the names first (an image archive or a rootfs?). A compressed one is read once,
    as a stream. `position()` is how far into the file on disk the reading is."""

    def __init__(self, path: str) -> None:
        import tarfile

        self.path = path
        try:
            self.file: BinaryIO = open(path, "rb")  # noqa: SIM115  # closed by close()
        except OSError as e:
            raise ImageError(f"cannot read {path}: {e.strerror}") from None
        self.decompressed: Decompressed | None = None
        try:
            self.total = os.fstat(self.file.fileno()).st_size
            self.kind = sniff(self.file.read(8))
            self.file.seek(0)
            self.seekable = self.kind == "tar"
            if self.seekable:
                self.tar = tarfile.open(fileobj=self.file, mode="r:")  # noqa: SIM115
                self.position: Callable[[], int] = self.file.tell
            else:
                raw = CountingReader(self.file)
                self.raw = raw
                self.decompressed = Decompressed(raw, self.kind)
                stream: Any = self.decompressed.stream  # tarfile's stub wants more than read()
                self.tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115
                self.position = lambda: raw.count
        except decode_errors() as e:
            self.close(ok=False)
            raise ImageError(f"{path}: not a valid {self._kind_name()} archive: {e}") from None
        except BaseException:
            self.close(ok=False)
            raise

    def names(self) -> list[str]:
        """Every member name (a plain tar only: it scans all headers)."""
        if not self.seekable:
            raise ValueError("names() would consume a compressed stream")
        try:
            names = self.tar.getnames()
        except decode_errors() as e:
            raise ImageError(f"{self.path}: corrupt or truncated archive: {e}") from None
        # The scan left the file at its end; progress is the file position, so rewind it.
        # tarfile seeks to each member's data itself, so this cannot confuse it.
        self.file.seek(0)
        return names

    def _kind_name(self) -> str:
        kind = getattr(self, "kind", "tar")
        return "tar" if kind == "tar" else f"{kind}-compressed tar"

    def finish(self) -> None:
        """After the last member: read to the end, so a truncated or corrupt tail is seen."""
        if self.decompressed is not None:
            drain(self.decompressed.stream)

    def close(self, ok: bool = True) -> None:
        if self.decompressed is not None:
            self.decompressed.close(ok)
            self.decompressed = None
        self.file.close()

    def __enter__(self) -> TarInput:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(ok=exc_type is None)


def drain(stream: Readable) -> None:
    while stream.read(1 << 20):
        pass


class Ticker:
    """Calls progress(done, total) as reading advances, at most every PROGRESS_STEP bytes."""

    def __init__(
        self, progress: Progress | None, position: Callable[[], int], total: int, base: int = 0
    ) -> None:
        self.progress = progress
        self.position = position
        self.total = total
        self.base = base
        self.last = -PROGRESS_STEP

    def __call__(self) -> None:
        if self.progress is None:
            return
        done = self.base + self.position()
        if done - self.last >= PROGRESS_STEP:
            self.last = done
            self.progress(min(done, self.total), self.total)

    def end(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)


def apply_members(
    tar: tarfile.TarFile,
    members: Iterable[tarfile.TarInfo],
    writer: RootWriter,
    tick: Callable[[], None],
    layer: bool = False,
    overlay: bool = False,
) -> list[str]:
    """Write every member through `writer`; return the warnings (skipped members).

    overlay: the layer is stored on its own, as an overlayfs lower layer: whiteouts become
    what overlayfs reads (a 0/0 character device, the trusted.overlay.opaque xattr) instead
    of being applied to the tree below."""
    warnings: list[str] = []
    created: set[Parts] = set()
    for m in members:
        parts = member_parts(m.name)
        mtime_ns = int(m.mtime * 1_000_000_000)
        try:
            if layer and parts and parts[-1].startswith(WHITEOUT):
                _whiteout(writer, m.name, parts, created, overlay)
                continue
            if m.isdir():
                writer.mkdir(parts, m.mode, m.uid, m.gid, mtime_ns)
            elif m.isreg():
                src = tar.extractfile(m)
                assert src is not None  # a regular member always has data
                writer.write_file(parts, src, m.mode, m.uid, m.gid, mtime_ns, tick)
            elif m.issym():
                if "\0" in m.linkname:
                    raise ImageError(f"refusing symlink {m.name!r}: its target holds a NUL byte")
                writer.symlink(parts, m.linkname, m.uid, m.gid, mtime_ns)
            elif m.islnk():
                target = _link_target(m)
                writer.hardlink(parts, target)
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = "fifo" if m.isfifo() else "device node"
                warnings.append(f"skipped {kind} {m.name!r}: the runtime provides /dev")
                continue
            else:
                warnings.append(f"skipped {m.name!r}: unsupported tar member type {m.type!r}")
                continue
        except OSError as e:
            raise ImageError(f"cannot extract {m.name!r}: {e.strerror or e}") from None
        except ValueError as e:  # a name the OS cannot take (surrogates, NUL)
            raise ImageError(f"cannot extract {m.name!r}: {e}") from None
        if layer:
            created.add(parts)
        tick()
    writer.finish()
    return warnings


def _link_target(m: tarfile.TarInfo) -> Parts:
    try:
        return member_parts(m.linkname, "hard link target")
    except ImageError:
        raise ImageError(
            f"refusing hard link {m.name!r}: its target {m.linkname!r} is outside the archive"
        ) from None


def _whiteout(
    writer: RootWriter, name: str, parts: Parts, created: set[Parts], overlay: bool = False
) -> None:
    """`.wh.NAME` deletes NAME from the layers below; `.wh..wh..opq` empties its directory of
    them. What this layer itself wrote stays (the spec scopes whiteouts to lower layers)."""
    leaf = parts[-1]
    parent = parts[:-1]
    if leaf == OPAQUE:
        if overlay:
            writer.opaque(parent)
            created.add(parent)
            return
        writer.clear_dir(parent, created)
        created.add(parent)
        return
    if leaf.startswith(WHITEOUT + WHITEOUT):
        return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to apply
    target = leaf[len(WHITEOUT) :]
    if target in ("", ".", ".."):
        raise ImageError(f"refusing whiteout {name!r}: it names no entry")
    victim = (*parent, target)
    if victim in created:
        return
    if overlay:
        writer.whiteout(victim)
    else:
        writer.remove(victim)


def extract_into(
    inp: TarInput, dest: str, progress: Progress | None = None, layer: bool = False
) -> list[str]:
    """Extract an opened archive into the existing directory dest; return warnings."""
    tick = Ticker(progress, inp.position, inp.total)
    try:
        with RootWriter(dest) as writer:
            warnings = apply_members(inp.tar, inp.tar, writer, tick, layer)
        inp.finish()
    except decode_errors() as e:
        raise ImageError(f"{inp.path}: corrupt or truncated archive: {e}") from None
    except ImageError as e:
        raise ImageError(f"{inp.path}: {e}") from None
    tick.end()
    return warnings


def extract(path: str, dest: str, progress: Progress | None = None) -> list[str]:
    """Extract the tarball at path (any supported compression) into dest; return warnings."""
    with TarInput(path) as inp:
        return extract_into(inp, dest, progress)
