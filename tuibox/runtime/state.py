"""The state root: one directory per box, its state.json written atomically under a lock.

Layout of <root>/<name>/:
    state.json   the box's record (written with a temp file + fsync + rename)
    lock         flock'ed around every read-modify-write
    exec.fifo    exists while the box is created but not started
    exit         the init's exit status, written by whoever reaped it
    (a detached box's output, box.log and box.log.1, is under the data root: extra["log"])
    hostname, hosts, resolv.conf   bind-mounted into the box

This module is on every verb's start-up path: plain str paths and fastjson, no pathlib or json.
"""

from __future__ import annotations

import os

from tuibox.runtime import fastjson
from tuibox.runtime.errors import BoxExists, BoxNotFound, CorruptRecord, InvalidName
from tuibox.runtime.linux import proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/tuibox"
MAX_NAME = 64
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


def default_root() -> str:
    return os.environ.get("TUIBOX_ROOT") or DEFAULT_ROOT


def check_identifier(
    kind: str, name: str, first: frozenset[str], rest: frozenset[str], letters: str
) -> str:
    """A name that becomes a directory: never empty, a path, hidden or over MAX_NAME."""
    if not name:
        raise InvalidName(f"{kind} name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{kind} name {name[:16]!r}...: longer than {MAX_NAME} characters")
    if name[0] not in first or any(c not in rest for c in name):
        raise InvalidName(
            f"invalid {kind} name {name!r}: use {letters}, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def check_name(name: str) -> str:
    """Box ids: what runc accepts, minus anything that could be a path."""
    return check_identifier("box", name, _NAME_FIRST, _NAME_REST, "letters")


_RECORD_DEFAULTS: dict[str, Any] = {
    "pid": 0,
    "starttime": None,
    "created": "",
    "started": None,
    "finished": None,
    "exit_status": None,
    "oom_killed": False,
    "command": [],
    "hostname": "",
    "terminal": False,
    "image": None,
    "namespaces": [],
    "annotations": {},
    "own_pid_ns": True,
    "detached": False,
    "extra": {},
}


_NONE = type(None)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "pid": (int,),
    "starttime": (int, _NONE),
    "created": (str,),
    "started": (str, _NONE),
    "finished": (str, _NONE),
    "exit_status": (int, _NONE),
    "oom_killed": (bool,),
    "command": (list,),
    "hostname": (str,),
    "terminal": (bool,),
    "image": (str, _NONE),
    "namespaces": (list,),
    "annotations": (dict,),
    "own_pid_ns": (bool,),
    "detached": (bool,),
    "extra": (dict,),
}
_KIND_WORDS = {
    key: " or ".join(
        {int: "an integer", str: "a string", list: "a list", dict: "an object"}.get(t, "")
        or ("a boolean" if t is bool else "null")
        for t in kinds
    )
    for key, kinds in _FIELD_TYPES.items()
}


def _type_problem(key: str, value: object, wanted: str, present: bool) -> str:
    if not present:
        return f"field {key!r} is missing"
    shown = repr(value)
    if len(shown) > 20:
        shown = shown[:17] + "..."
    return f"field {key!r} is {shown}, it must be {wanted}"


class BoxRecord:
    """What state.json holds. Status is the last one written; `Runtime.get` checks the kernel.

    `extra` is free-form so each later stage (network, cgroups, overlay) owns its own key."""

    id: str
    status: str
    bundle: str
    rootfs: str
    pid: int
    starttime: int | None
    created: str
    started: str | None
    finished: str | None
    exit_status: int | None
    oom_killed: bool
    command: list[str]
    hostname: str
    terminal: bool
    image: str | None
    namespaces: list[str]
    annotations: dict[str, str]
    own_pid_ns: bool
    detached: bool
    extra: dict[str, Any]

    def __init__(self, id: str, status: str, bundle: str, rootfs: str, **fields: Any) -> None:
        self.id = id
        self.status = status
        self.bundle = bundle
        self.rootfs = rootfs
        for key, default in _RECORD_DEFAULTS.items():
            value = fields.pop(key, default)
            # mutable defaults must not be shared between records
            setattr(self, key, value.copy() if isinstance(value, (list, dict)) else value)
        if fields:
            raise TypeError(f"unknown box record field {next(iter(fields))!r}")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoxRecord:
        """A record whose every known field has its type; ValueError names the first bad one.

        Unknown keys are ignored (a newer tuibox may add some)."""
        if not isinstance(data, dict):
            raise ValueError(f"not a JSON object but {type(data).__name__}")
        for key in ("id", "status", "bundle", "rootfs"):
            if not isinstance(data.get(key), str):
                raise ValueError(_type_problem(key, data.get(key), "a string", key in data))
        known = {}
        for key, kinds in _FIELD_TYPES.items():
            if key not in data:
                continue
            value = data[key]
            # bool is an int in Python; a pid of `true` is as wrong as one of "x"
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ValueError(_type_problem(key, value, _KIND_WORDS[key], True))
            known[key] = value
        return cls(data["id"], data["status"], data["bundle"], data["rootfs"], **known)

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "status": self.status, "bundle": self.bundle, "rootfs": self.rootfs}
        for key in _RECORD_DEFAULTS:
            out[key] = getattr(self, key)
        return out

    def summary(self, root: str) -> dict[str, Any]:
        """The public view of a box, as `tuibox list --format json` prints it and the TUI reads
        it; `root` is the state root (an older record's log lived in the box's dir there)."""
        extra = self.extra
        return {
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "image": self.image,
            "command": self.command,
            "hostname": self.hostname,
            "created": self.created,
            "started": self.started,
            "exit_status": self.exit_status,
            "oom_killed": self.oom_killed,
            "terminal": self.terminal,
            # keeper (attach works), socket (--console-socket owns it), foreground, or None
            "console": extra.get("console"),
            "address": extra.get("address"),
            "ports": extra.get("ports", []),
            # box.log under the data root (box.log.1 beside it once rotated); an engine's box
            # (docs/OCI_CLI.md) writes to the engine's pipes, not to a log.
            "log": None
            if extra.get("engine")
            else extra.get("log") or os.path.join(root, self.id, "box.log"),
            "namespaces": self.namespaces,
            "cgroup": extra.get("cgroup"),
            "limits": extra.get("limits", {"memory": None, "cpus": None, "pids": None}),
            "problem": extra.get("problem"),  # why the status is unknown
            "restart": _restart_summary(extra.get("restart")),
        }


def _restart_summary(policy: object) -> dict[str, Any] | None:
    """A restart policy's public part (restart_policy.py): None for a box without one."""
    if not isinstance(policy, dict):
        return None
    keys = ("policy", "max", "count", "last_exit", "user_stopped", "error")
    return {k: policy.get(k) for k in keys}


def atomic_write(path: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
    """Replace `path` by `data` whole, or leave it as it was.

    write(2) may write less than asked (a full disk gives a short count before ENOSPC), so
    every byte is written before the fsync and the rename; on any failure the temp file goes
    and the old file stays. The error names the file.

    The rename alone makes the replacement whole for every reader and across a crash of the
    writer; the fsync makes it so across a power cut too. `durable=False` skips it, for files
    whose content means nothing after a reboot (docs/RELIABILITY.md, "What an fsync is for")."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OSError(
            e.errno, f"cannot write {path}: {os.strerror(e.errno or 0).lower()}"
        ) from None


def remove_tree(path: str) -> None:
    """rmtree without importing shutil; never follows symlinks; ignores what is already gone.

    A box's monitor may still be writing its `exit` file while a destroy removes the
    directory, so a directory that refills is swept again a few times."""
    for _ in range(50):
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return
        except NotADirectoryError:
            os.unlink(path)
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != 39:  # ENOTEMPTY: something was written meanwhile
                raise
    os.rmdir(path)


class _Lock:
    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.fd = -1

    def __enter__(self) -> str:
        try:
            self.fd = os.open(
                os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except FileNotFoundError:
            raise BoxNotFound(self.name) from None
        import fcntl  # here: `state` and `list` never lock

        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class StateRoot:
    """The directory holding every box; injectable so tests use their own."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(root) if root is not None else default_root()

    def box_dir(self, name: str) -> str:
        return os.path.join(self.path, check_name(name))

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(
            e
            for e in entries
            if not e.startswith(".") and os.path.isdir(os.path.join(self.path, e))
        )

    def make_box_dir(self, name: str) -> str:
        """Claim a name: mkdir is atomic, so two creates of one name cannot both win."""
        d = self.box_dir(name)
        # 0700 all the way: a box's writable layer and its records live below, and a setuid
        # file a box made must not be reachable by the host's unprivileged users.
        os.makedirs(self.path, 0o700, exist_ok=True)
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            raise BoxExists(name) from None
        return d

    def read(self, name: str) -> BoxRecord:
        """The box's record. BoxNotFound when there is no box dir; CorruptRecord when the dir
        exists but its record is missing, empty, not JSON, wrongly typed or of another box."""
        d = self.box_dir(name)
        try:
            with open(os.path.join(d, "state.json"), "rb") as f:
                raw = f.read()
        except NotADirectoryError:
            raise BoxNotFound(name) from None
        except FileNotFoundError:
            if not os.path.isdir(d):
                raise BoxNotFound(name) from None
            raise CorruptRecord(name, "no state.json") from None
        except OSError as e:
            raise CorruptRecord(name, f"cannot read state.json: {e.strerror}") from None
        if not raw.strip():
            raise CorruptRecord(name, "state.json is empty")
        try:
            data = fastjson.loads(raw)
        except ValueError:
            raise CorruptRecord(name, "state.json is not JSON") from None
        try:
            record = BoxRecord.from_json(data)
        except ValueError as e:
            raise CorruptRecord(name, str(e)) from None
        if record.id != name:
            raise CorruptRecord(name, f"state.json names another box, {record.id[:64]!r}")
        return record

    def write(self, record: BoxRecord) -> None:
        """The record, whole (temp file + rename). fsync'ed only for a box that can outlive
        the process that made it (`detached`): a foreground run's box dies with its CLI, so
        after a power cut its dir is debris whatever the file holds (old, new, empty or
        missing: each is `debris`, `stopped` with `remove`, or `unknown`, and `gc` or
        `destroy --force` undo it from names alone). docs/RELIABILITY.md."""
        data = fastjson.dumps(record.to_json(), indent=1).encode()
        # An engine's box is never started again, has no layer on disk, and its cgroups and
        # processes die with a power loss: no reader of its record needs it to survive one
        # (runc does not fsync its state either).
        durable = record.detached and not record.extra.get("engine")
        atomic_write(os.path.join(self.box_dir(record.id), "state.json"), data, durable=durable)

    def locked(self, name: str) -> _Lock:
        return _Lock(self.box_dir(name), name)

    def remove(self, name: str) -> None:
        remove_tree(self.box_dir(name))


def record_exit(box_dir: str, code: int, attempts: int = 1, durable: bool = True) -> bool:
    """Write the init's exit status; on a write error (a full state disk) retry `attempts`
    times with a growing pause, so a reaper that outlives the CLI (monitor, keeper) keeps
    it in memory until there is room. False if it could not be written (or the box is gone).

    A SIGKILL is checked against the memory cgroup's OOM count now, while the cgroup is
    sure to exist: `137 oom` then."""
    import time

    text = f"{code}\n"
    if code == 137 and _oom_now(box_dir):
        text = f"{code} oom\n"
    delay = 0.05
    for i in range(attempts):
        if not os.path.isdir(box_dir):
            return False  # destroyed: nobody will ask
        try:
            atomic_write(os.path.join(box_dir, "exit"), text.encode(), durable=durable)
            return True
        except OSError:
            if i + 1 < attempts:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
    return False


def _oom_now(box_dir: str) -> bool:
    try:
        with open(os.path.join(box_dir, "state.json"), "rb") as f:
            record = BoxRecord.from_json(fastjson.loads(f.read()))
        from tuibox.runtime.cgroups import oom_killed

        return oom_killed(record)
    except Exception:  # a reaper records the exit whatever this says
        return False


def read_oom_killed(box_dir: str) -> bool:
    try:
        with open(os.path.join(box_dir, "exit")) as f:
            return f.read().split()[1:2] == ["oom"]
    except (OSError, ValueError):
        return False


def read_exit_status(box_dir: str) -> int | None:
    try:
        with open(os.path.join(box_dir, "exit")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_boot_id: list[str] = []


def boot_id() -> str:
    """This boot's id (cached): a record made in another boot names pids that may have been
    reused since, so its box is `stopped` whatever they say."""
    if not _boot_id:
        try:
            with open(BOOT_ID_PATH) as f:
                _boot_id.append(f.read().strip())
        except OSError:
            _boot_id.append("")
    return _boot_id[0]


def live_status(record: BoxRecord, box_dir: str) -> str:
    """The box's status from kernel facts: the init's pid + start time, and the exec fifo."""
    # A stopped box being started again (recreate.py) whose starter died is still a box,
    # stopped: its next start or destroy releases what the dead start made.
    dead_actor = "stopped" if record.extra.get("recreate") else "debris"
    made_in = record.extra.get("boot_id")
    if isinstance(made_in, str) and made_in and boot_id() and made_in != boot_id():
        # Also for creating/destroying: that creator pid is from the other boot too.
        if record.status == "creating":
            return dead_actor
        return "stopped" if record.status != "destroying" else "debris"
    if record.status in ("creating", "destroying"):
        # Written before any side effect (intent): the box is being made (or torn down) while
        # the process doing it lives; once that one is dead it is debris for destroy --force
        # or gc.
        actor = record.extra.get("creator" if record.status == "creating" else "destroyer")
        if isinstance(actor, list) and len(actor) == 2:
            if proc.is_alive(actor[0], actor[1]):
                return record.status
            return dead_actor if record.status == "creating" else "debris"
    if record.status in ("creating", "created", "running", "paused") and proc.is_alive(
        record.pid, record.starttime
    ):
        if record.status == "creating":
            return "creating"
        if os.path.lexists(os.path.join(box_dir, "exec.fifo")):
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
