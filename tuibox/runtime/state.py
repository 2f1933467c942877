"""The state root: one directory per box, its state.json written atomically under a lock.

Layout of <root>/<name>/:
    state.json   the box's record (written with a temp file + fsync + rename)
    lock         flock'ed around every read-modify-write
    exec.fifo    exists while the box is created but not started
    exit         the init's exit status, written by whoever reaped it
    config.json  the spec the box was created from (a copy, for details and restart)
    box.log      stdout/stderr of a detached box
    hostname, hosts, resolv.conf   bind-mounted into the box
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuibox.runtime.errors import BoxExists, BoxNotFound, InvalidName, TuiboxError
from tuibox.runtime.linux import proc

DEFAULT_ROOT = "/run/tuibox"
MAX_NAME = 64
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


def default_root() -> Path:
    return Path(os.environ.get("TUIBOX_ROOT") or DEFAULT_ROOT)


def check_name(name: str) -> str:
    """Box ids: what runc accepts, minus anything that could be a path."""
    if not name:
        raise InvalidName("box name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidName(f"box name {name[:16]!r}...: longer than {MAX_NAME} characters")
    if name[0] not in _NAME_FIRST or any(c not in _NAME_REST for c in name):
        raise InvalidName(
            f"invalid box name {name!r}: use letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class BoxRecord:
    """What state.json holds. Status is the last one written; `Box.refresh` checks the kernel."""

    id: str
    status: str
    bundle: str
    rootfs: str
    pid: int = 0
    starttime: int | None = None
    created: str = ""
    started: str | None = None
    finished: str | None = None
    exit_status: int | None = None
    command: list[str] = field(default_factory=list)
    hostname: str = ""
    terminal: bool = False
    image: str | None = None
    namespaces: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    own_pid_ns: bool = True
    detached: bool = False
    # Filled by later stages (network, cgroups, overlay); free-form so each owns its key.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoxRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class StateRoot:
    """The directory holding every box; injectable so tests use their own."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.path = Path(root) if root is not None else default_root()

    def box_dir(self, name: str) -> Path:
        return self.path / check_name(name)

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if not e.startswith(".") and (self.path / e).is_dir())

    def make_box_dir(self, name: str) -> Path:
        """Claim a name: mkdir is atomic, so two creates of one name cannot both win."""
        d = self.box_dir(name)
        self.path.mkdir(mode=0o711, parents=True, exist_ok=True)
        try:
            d.mkdir(mode=0o711)
        except FileExistsError:
            raise BoxExists(name) from None
        return d

    def read(self, name: str) -> BoxRecord:
        d = self.box_dir(name)
        try:
            raw = (d / "state.json").read_bytes()
        except FileNotFoundError:
            raise BoxNotFound(name) from None
        try:
            return BoxRecord.from_json(json.loads(raw))
        except (ValueError, TypeError) as e:
            raise TuiboxError(f"state of box {name!r} is corrupt: {d / 'state.json'}") from e

    def write(self, record: BoxRecord) -> None:
        data = json.dumps(asdict(record), indent=1).encode()
        atomic_write(self.box_dir(record.id) / "state.json", data)

    @contextmanager
    def locked(self, name: str) -> Iterator[Path]:
        d = self.box_dir(name)
        try:
            fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise BoxNotFound(name) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield d
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.box_dir(name), ignore_errors=True)


def read_exit_status(box_dir: Path) -> int | None:
    try:
        return int((box_dir / "exit").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def live_status(record: BoxRecord, box_dir: Path) -> str:
    """The box's status from kernel facts: the init's pid + start time, and the exec fifo."""
    if record.status in ("creating", "created", "running", "paused") and proc.is_alive(
        record.pid, record.starttime
    ):
        if record.status == "creating":
            return "creating"
        if os.path.lexists(box_dir / "exec.fifo"):
            return "created"
        if record.extra.get("cgroup") and _frozen(record):
            return "paused"
        return "running"
    return "stopped"


def _frozen(record: BoxRecord) -> bool:
    # Late import: the freezer lives with the cgroups code, which most verbs do not need.
    try:
        from tuibox.runtime.cgroups import is_frozen
    except ImportError:
        return False
    return bool(is_frozen(record))
