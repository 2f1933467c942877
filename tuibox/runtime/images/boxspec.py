"""A box made from an image (`BoxRequest.from_image`, hence `run --image`): the image's
config turned into a box's spec.

The spec is what `runc spec` writes (runtime/spec.py's starter_spec), then the image config
on top: its Env merged over the defaults, Entrypoint + Cmd (words after NAME replace Cmd),
WorkingDir, and User, a name being resolved through the image's own /etc/passwd and
/etc/group. The box's root is an overlay of the image (box.py mounts it inside the box's
mount namespace), so nothing of the image is copied and nothing is mounted on the host.

This is on `run --image`'s start-up path: C modules and our own lean ones only (no json,
pathlib or re; see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os

from tuibox.runtime import defaults
from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.store import BUSYBOX, ImageStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.images.store import ImageInfo
    from tuibox.runtime.spec_model import Spec

DEFAULT_COMMAND = ("/bin/sh",)
# /etc/passwd and /etc/group are read in full; an image's are a few KB, and a hostile one
# must not make a box's start read gigabytes.
_MAX_DB = 4 << 20
# overlayfs splits its mount data at ',' and its lowerdir at ':'; such a path cannot be given.
_OVERLAY_UNSAFE = (",", ":", "\\")


def resolve_image(store: ImageStore, name: str) -> ImageInfo:
    """The image's info; the default image is built from the host's busybox on first use."""
    if name == BUSYBOX:
        return store.ensure_busybox()
    return store.get(name)


def spec_for_image(
    name: str, command: list[str], data_root: str | None, root: str | None
) -> tuple[Spec, str, tuple[str, str]]:
    """(spec, image name for the box record, overlay) for a box made from image `name`.

    `data_root` holds the images (None: TUIBOX_DATA, else /var/lib/tuibox); `root` is the
    state root the box's overlay will live in (None: the default)."""
    from tuibox.runtime.spec import parse_spec, starter_spec
    from tuibox.runtime.state import default_root

    store = ImageStore(data_root)
    info = resolve_image(store, name)
    lower = store.lower(info.name)
    roots = store.roots(info.name)
    rootfs = os.path.abspath(roots[0])
    # A layered image's lowerdir is ':'-joined on purpose; its paths live in the data root.
    where = rootfs if not info.layers else store.data_root
    for label, path in (("data root", where), ("state root", root or default_root())):
        bad = [c for c in _OVERLAY_UNSAFE if c in os.path.abspath(path)]
        if bad:
            raise ImageError(
                f"{label} {path}: overlayfs cannot use a path containing {bad[0]!r}; "
                "choose another directory"
            )
    data = starter_spec(process_args(info, command), rootfs=rootfs)
    process: dict[str, Any] = data["process"]
    env = merge_env(defaults.DEFAULT_ENV, info.env)
    if info.workdir:
        # Docker reads a relative WorkingDir against /; the spec wants it absolute.
        process["cwd"] = os.path.normpath(os.path.join("/", info.workdir))
    home = "/root"
    if info.user:
        uid, gid, extra, home = resolve_user(roots, info.user, info.name)
        user: dict[str, Any] = {"uid": uid, "gid": gid}
        if extra:
            user["additionalGids"] = list(extra)
        process["user"] = user
    if not any(item.startswith("HOME=") for item in env):
        # As docker does: programs (shells, ssh, git) expect HOME; the image may not set it.
        env.append(f"HOME={home}")
    process["env"] = env
    if info.labels:
        # Docker gives a container its image's labels; a box's equivalent is annotations.
        data["annotations"] = {**info.labels, **(data.get("annotations") or {})}
    # The image dir as the bundle: relative paths of the generated spec (there are none)
    # would resolve there, and `state` shows where the box came from.
    spec = parse_spec(data, store.image_dir(info.name), f"image {info.name!r}")
    return spec, info.name, (lower if info.layers else rootfs, store.data_root)


def process_args(info: ImageInfo, command: list[str]) -> list[str]:
    """Entrypoint + Cmd, the command line's words replacing Cmd (docker's rule)."""
    args = list(info.entrypoint) + (list(command) or list(info.cmd))
    return args or list(DEFAULT_COMMAND)


def merge_env(base: tuple[str, ...] | list[str], image: list[str]) -> list[str]:
    """KEY=VALUE lists merged by key, the image's winning; order: base first, then new keys.

    An image entry without '=' has no value to give (docker passes it through from the
    client's environment, which a box must not depend on), so it is skipped."""
    merged: dict[str, str] = {}
    for item in (*base, *image):
        key, eq, value = item.partition("=")
        if key and eq:
            merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


# ---- users -------------------------------------------------------------------------------------


def resolve_user(
    rootfs: str | list[str], text: str, image: str
) -> tuple[int, int, tuple[int, ...], str]:
    """The image config's User (name|uid[:group|gid]) -> (uid, gid, additional gids, home).

    Numbers are taken as they are (a uid missing from /etc/passwd is fine, as in docker; its
    group is then 0 unless given). A name must be in the image's /etc/passwd or /etc/group.
    Supplementary groups are those of /etc/group that list the user by name."""
    user_part, _, group_part = text.partition(":")
    passwd = _read_db(rootfs, "/etc/passwd")
    entry: list[str] | None = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if _int(e[2]) == uid), None)
    else:
        entry = next((e for e in passwd if e[0] == user_part), None)
        if entry is None or _int(entry[2]) is None:
            raise ImageError(f"image {image!r}: user {user_part!r} is not in its /etc/passwd")
        uid = int(entry[2])
    gid = _int(entry[3]) if entry is not None else None
    groups = _read_db(rootfs, "/etc/group") if group_part or entry is not None else []
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            found = next((e for e in groups if e[0] == group_part and _int(e[2]) is not None), None)
            if found is None:
                raise ImageError(f"image {image!r}: group {group_part!r} is not in its /etc/group")
            gid = int(found[2])
    if gid is None:
        gid = 0
    extra: list[int] = []
    if entry is not None:
        for e in groups:
            g = _int(e[2])
            if g is not None and g != gid and g not in extra and entry[0] in e[3].split(","):
                extra.append(g)
    home = entry[5] if entry is not None and entry[5].startswith("/") else "/"
    return uid, gid, tuple(extra), home


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _read_db(rootfs: str | list[str], path: str) -> list[list[str]]:
    """Colon-separated records of a file inside the image, padded to 7 fields.

    The path is resolved inside the rootfs (linux/paths.py): an image's /etc/passwd that is
    an absolute symlink must be read from the image, never from the host. A layered image
    gives its layers top first: the first that has the file (or a whiteout of it) wins."""
    import stat

    from tuibox.runtime.linux.paths import resolve_in_root

    fd = -1
    for root in [rootfs] if isinstance(rootfs, str) else rootfs:
        try:
            host = resolve_in_root(root, path)
            st = os.lstat(host)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return []  # whited out by an upper layer
        try:
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return []
        break
    if fd < 0:
        return []
    try:
        raw = os.read(fd, _MAX_DB)
    except OSError:
        return []  # a directory, a fifo: not a database
    finally:
        os.close(fd)
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        out.append(fields + [""] * (7 - len(fields)))
    return out
