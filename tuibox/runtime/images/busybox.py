"""A minimal rootfs from the host's static busybox: the default image and the tests' fixture.

It must stay cheap (the test suite builds one per session, the store on first use), so it
spawns busybox once for its applet list and writes everything else directly: no shutil, no
subprocess.
"""

from __future__ import annotations

import os
import stat

from tuibox.runtime.errors import ImageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

DEFAULT_BUSYBOX = "/bin/busybox"
_PT_INTERP = 3

# (path, mode): the directories a box expects; tmp is sticky, root's home private.
DIRS = (
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("mnt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
)

# The runtime bind-mounts its own hostname, hosts and resolv.conf over these at start; the
# files exist so the mount points do even in a read-only rootfs.
FILES = (
    (
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ),
    ("etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"),
    ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
    ("etc/resolv.conf", "# replaced by tuibox when a box starts\n"),
    ("etc/hostname", "busybox\n"),
)


def _missing(busybox: str) -> ImageError:
    return ImageError(f"busybox not found at {busybox}: install the busybox-static package")


def _check_static(busybox: str, head: bytes) -> None:
    """A dynamically linked busybox would find no libc inside the box: say so now."""
    if head[:4] != b"\x7fELF":
        raise ImageError(f"{busybox} is not an ELF executable: install the busybox-static package")
    is64 = head[4] == 2
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    if is64:
        phoff = int.from_bytes(head[32:40], order)
        phentsize = int.from_bytes(head[54:56], order)
        phnum = int.from_bytes(head[56:58], order)
    else:
        phoff = int.from_bytes(head[28:32], order)
        phentsize = int.from_bytes(head[42:44], order)
        phnum = int.from_bytes(head[44:46], order)
    for i in range(phnum):
        off = phoff + i * phentsize
        if int.from_bytes(head[off : off + 4], order) == _PT_INTERP:
            raise ImageError(
                f"{busybox} is dynamically linked, so it cannot run alone in a box: "
                "install the busybox-static package"
            )


def applets(busybox: str) -> list[str]:
    """`busybox --list-full`: paths such as bin/sh and usr/bin/awk."""
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(
            busybox,
            [busybox, "--list-full"],
            {},
            file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)],
        )
    except OSError as e:
        os.close(r)
        os.close(w)
        raise ImageError(f"cannot run {busybox}: {e.strerror}") from None
    os.close(w)
    chunks: list[bytes] = []
    try:
        while True:
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ImageError(f"{busybox} --list-full failed: is it a busybox binary?")
    out: list[str] = []
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        path = line.strip().lstrip("/")
        # Defensive: the list comes from a binary on the host, but it names paths we create.
        if path and ".." not in path.split("/"):
            out.append(path)
    return out


def _copy(src_fd: int, dest: str, size: int) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o700)
    try:
        left = size
        while left > 0:
            # copy_file_range shares extents where the filesystem can (reflink).
            n = os.copy_file_range(src_fd, fd, left)
            if n == 0:
                break
            left -= n
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)


def build_busybox_rootfs(
    dest: str | os.PathLike[str],
    busybox: str | os.PathLike[str] = DEFAULT_BUSYBOX,
    symlinks: bool = False,
) -> None:
    """Create a busybox rootfs at dest (absent or an empty directory).

    Applets are hard links to the rootfs's own bin/busybox unless `symlinks` (then each is a
    symlink to /bin/busybox). Busybox picks the applet from argv[0] either way; hard links are
    the default because they allocate no inode, and inodes are what is slow here: ~270
    symlinks took 75-200 ms on this machine's ext4 against 4 ms of hard links."""
    dest = os.fspath(dest)
    busybox = os.fspath(busybox)
    try:
        src_fd = os.open(busybox, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _missing(busybox) from None
    except OSError as e:
        raise ImageError(f"cannot read {busybox}: {e.strerror}") from None
    try:
        st = os.fstat(src_fd)
        if not stat.S_ISREG(st.st_mode):
            raise _missing(busybox)
        _check_static(busybox, os.pread(src_fd, 4096, 0))
        names = applets(busybox)
        try:
            os.mkdir(dest, 0o755)
        except FileExistsError:
            if os.listdir(dest):
                raise ImageError(f"{dest}: not empty, will not build a rootfs there") from None
        os.chmod(dest, 0o755)
        for path, mode in DIRS:
            full = os.path.join(dest, path)
            os.mkdir(full, mode)
            os.chmod(full, mode)  # mkdir's mode goes through the umask
        _copy(src_fd, os.path.join(dest, "bin/busybox"), st.st_size)
    finally:
        os.close(src_fd)
    made = {"", *(p for p, _ in DIRS)}
    binary = os.path.join(dest, "bin/busybox")
    for path in names:
        if path == "bin/busybox":
            continue
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(os.path.join(dest, parent), 0o755, exist_ok=True)
            made.add(parent)
        try:
            if symlinks:
                os.symlink("/bin/busybox", os.path.join(dest, path))
            else:
                os.link(binary, os.path.join(dest, path))
        except FileExistsError:
            pass  # an applet listed twice
    for path, text in FILES:
        fd = os.open(
            os.path.join(dest, path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )
        try:
            os.write(fd, text.encode())
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
