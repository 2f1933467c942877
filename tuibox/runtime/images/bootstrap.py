"""Images built by a distribution's bootstrap tool: `tuibox image bootstrap debian NAME`.

debootstrap writes straight into the store's temp dir, so the image is committed atomically
like any import. It runs in a private mount namespace (`unshare --mount`): it mounts /proc
and /sys (and sometimes binds /dev) inside its target, and if it dies half-way those mounts
must vanish with it. Otherwise the clean-up of the temp dir would walk into them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.store import check_image_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.images.store import ImageInfo, ImageStore

# distro -> (tool, Debian package that provides it, default command of the image)
DISTROS: dict[str, tuple[str, str, list[str]]] = {
    "debian": ("debootstrap", "debootstrap", ["/bin/bash"]),
}
DEBIAN_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def tool_path(distro: str) -> str | None:
    return shutil.which(DISTROS[distro][0])


def bootstrap(
    store: ImageStore,
    distro: str,
    name: str,
    suite: str = "bookworm",
    mirror: str | None = None,
    variant: str = "minbase",
    stdout: int | None = None,
) -> ImageInfo:
    """Build image `name` with the distro's tool; its output goes to `stdout` (default:
    our stderr, so a pipe of `tuibox image bootstrap` gets only the name)."""
    if distro not in DISTROS:
        raise ImageError(f"cannot bootstrap {distro!r}: only {', '.join(DISTROS)}")
    tool, package, cmd = DISTROS[distro]
    check_image_name(name)
    exe = tool_path(distro)
    if exe is None:
        raise ImageError(
            f"{tool} is not installed: apt-get install {package}, or import a root "
            "filesystem tarball with 'tuibox image import'"
        )
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ImageError(
            "unshare (util-linux) is not installed: it keeps debootstrap's mounts private"
        )
    for label, value in (("suite", suite), ("variant", variant), ("mirror", mirror or "x")):
        # Passed as words to debootstrap: an option-looking value would change its meaning.
        if not value or value.startswith("-"):
            raise ImageError(f"bootstrap: invalid {label} {value!r}")
    if store.exists(name):
        raise ImageError(f"image {name!r} already exists")

    def fill(tmp: str, rootfs: str) -> tuple[dict[str, Any], list[str]]:
        argv = [unshare, "--mount", "--propagation", "private", exe, f"--variant={variant}"]
        argv += [suite, rootfs]
        if mirror:
            argv.append(mirror)
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else 2,
            stderr=stdout if stdout is not None else 2,
            check=False,
        )
        if proc.returncode != 0:
            raise ImageError(
                f"{tool} {suite} failed with exit status {proc.returncode} (its output is above)"
            )
        if not os.path.isdir(os.path.join(rootfs, "etc")):
            raise ImageError(f"{tool} {suite} finished but left no root filesystem")
        return {"env": list(DEBIAN_ENV), "cmd": list(cmd)}, []

    return store._build(name, f"{tool}:{suite}", fill, None)
