"""Image references as docker writes them, normalised as docker does.

    alpine                      -> docker.io/library/alpine:latest
    alpine:3.19                 -> docker.io/library/alpine:3.19
    user/app                    -> docker.io/user/app:latest
    host:5000/x/y:tag           -> host:5000/x/y:tag
    x@sha256:<64 hex>           -> docker.io/library/x@sha256:...

The first component is a registry when it holds a '.' or a ':' or is `localhost` (docker's
rule). The grammar is the distribution spec's (reference/regexp.go), checked by hand so that a
bad reference is one line before skopeo is ever started.
"""

from __future__ import annotations

from tuibox.runtime.errors import ImageError
from tuibox.runtime.plain import Plain

DEFAULT_REGISTRY = "docker.io"
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_TAG_REST = _TAG_FIRST | frozenset(".-")
_HOST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-")
_HEX = frozenset("0123456789abcdef")
_DIGEST_LEN = {"sha256": 64, "sha512": 128}


class Reference(Plain):
    """registry, repository (path), and a tag or a digest (exactly one is set after parse)."""

    __slots__ = ("digest", "registry", "repository", "tag")

    registry: str
    repository: str
    tag: str
    digest: str

    def __init__(self, registry: str, repository: str, tag: str = "", digest: str = "") -> None:
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    def __str__(self) -> str:
        tail = f"@{self.digest}" if self.digest else f":{self.tag}"
        return f"{self.registry}/{self.repository}{tail}"

    def transport(self) -> str:
        """skopeo's name for it."""
        return f"docker://{self}"

    def local_name(self) -> str:
        """The store name a pull gives by default: the last path component, then `-TAG`
        for a tag other than latest, or `-` and 12 hex digits of a digest. Image names in
        the store are directory names (no '/' or ':'), so a full reference cannot be one."""
        base = self.repository.rsplit("/", 1)[-1]
        if self.digest:
            base += "-" + self.digest.split(":", 1)[1][:12]
        elif self.tag != "latest":
            base += "-" + self.tag.lower()
        name = "".join(c if c in _LOWER or c in "_.-" else "-" for c in base)[:64]
        return name.lstrip("_.-") or "image"


def _bad(text: str, why: str) -> ImageError:
    return ImageError(f"invalid image reference {text!r}: {why}")


def _check_component(text: str, part: str) -> None:
    # [a-z0-9]+ separated by '.', '_', '__' or runs of '-'
    if not part:
        raise _bad(text, "empty path component")
    if part[0] not in _LOWER or part[-1] not in _LOWER:
        raise _bad(text, f"path component {part!r} must start and end with a-z or 0-9")
    i = 0
    while i < len(part):
        c = part[i]
        if c in _LOWER:
            i += 1
            continue
        if c == "-":
            while i < len(part) and part[i] == "-":
                i += 1
            continue
        if c in "._":
            j = i
            while j < len(part) and part[j] in "._":
                j += 1
            if part[i:j] not in (".", "_", "__"):
                raise _bad(text, f"path component {part!r} has the separator {part[i:j]!r}")
            i = j
            continue
        raise _bad(text, f"path component {part!r} may hold only a-z, 0-9, '.', '_' and '-'")


def _check_host(text: str, host: str) -> None:
    name, colon, port = host.partition(":")
    if not name or not set(name) <= _HOST or name[0] in ".-" or name[-1] in ".-":
        raise _bad(text, f"registry {host!r} is not a host name")
    if colon and (not port.isdigit() or not 0 < int(port) < 65536):
        raise _bad(text, f"registry {host!r} has an invalid port")


def parse_reference(text: str) -> Reference:
    if not text or len(text) > 255 * 2:
        raise _bad(text, "empty" if not text else "too long")
    if any(c.isspace() for c in text) or "://" in text:
        raise _bad(text, "it holds a space or a transport prefix")
    rest, at, digest = text.partition("@")
    if at:
        alg, colon, hexpart = digest.partition(":")
        if not colon or len(hexpart) != _DIGEST_LEN.get(alg, -1) or not set(hexpart) <= _HEX:
            raise _bad(text, "the digest must be sha256:<64 hex digits>")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
        _check_host(text, registry)
    else:
        registry, path = DEFAULT_REGISTRY, rest
    name, colon, tag = path.rpartition(":")
    if not colon:
        name, tag = path, ""
    elif "/" in tag:
        raise _bad(text, "a tag cannot hold '/'")
    if colon and (
        not tag or len(tag) > 128 or tag[0] not in _TAG_FIRST or not set(tag) <= _TAG_REST
    ):
        raise _bad(text, f"tag {tag!r} must be 1-128 of A-Z a-z 0-9 _ . - (not first . -)")
    if registry in (DEFAULT_REGISTRY, "index.docker.io"):
        registry = DEFAULT_REGISTRY
        if "/" not in name:
            name = "library/" + name
    for part in name.split("/"):
        _check_component(text, part)
    if len(name) > 255:
        raise _bad(text, "the repository name is longer than 255 characters")
    if not tag and not at:
        tag = "latest"
    return Reference(registry, name, tag, digest if at else "")
