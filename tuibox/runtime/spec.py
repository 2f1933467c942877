"""config.json -> a validated `Spec` (spec_model.py); no side effects.

`load_spec` reads a file, `parse_spec` checks already-decoded JSON, `starter_spec` writes the
dict `tuibox spec` saves (what `runc spec` would). Every error is a `SpecError` of one line that
names the file and the JSON field: `config.json: process.cwd: must be an absolute path`.

Fields of the OCI runtime spec that tuibox does not implement are never silently dropped.
Those whose absence would weaken isolation are refused, naming the field (`REFUSED_FIELDS`:
fail closed); the others land, by dotted name, in `Spec.unsupported` for the caller to warn
about (`UNSUPPORTED_FIELDS` lists the known ones). docs/SPEC_FIELDS.md has the table. What
only the host can tell (is AppArmor on, is a namespace path the host's own) and whether a
path exists are not checked here; the runtime does that when it uses them.

On `tuibox run`'s start-up path: C modules and our own lean ones only (no json, pathlib, re,
typing or dataclasses at run time; see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
import resource

from tuibox.runtime import defaults, fastjson
from tuibox.runtime.defaults import CAPABILITY_NAMES
from tuibox.runtime.errors import SpecError
from tuibox.runtime.spec_model import (
    Capabilities,
    Device,
    Hook,
    IdMapping,
    Linux,
    Mount,
    Namespace,
    Process,
    Rlimit,
    Root,
    Spec,
    User,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    StrPath = str | os.PathLike[str]

# The newest runtime-spec minor version whose fields this module knows. Newer 1.x files load
# with a warning: their new fields show up in `unsupported` rather than being misread.
KNOWN_MINOR = 3

# Spec fields tuibox reads but does not act on, none of which weakens isolation when left
# undone (docs/SPEC_FIELDS.md has the table, field by field, with what runc does): they are
# listed in `Spec.unsupported` and warned about.
UNSUPPORTED_FIELDS: tuple[str, ...] = (
    "solaris",
    "windows",
    "zos",
    "process.commandLine",
    "process.ioPriority",
    "process.scheduler",
    "process.execCPUAffinity",
    "process.user.username",
    "linux.personality",
    "linux.memoryPolicy",
    "linux.netDevices",
)

# Fields tuibox cannot honour and whose absence would leave the box, or the host, less
# protected than the file asks: refused with one line naming the field (fail closed), never
# run with a warning. Why each one weakens isolation is the message itself.
REFUSED_FIELDS: dict[str, str] = {
    "vm": "tuibox runs boxes as containers, not in a virtual machine, which isolates less",
    "linux.intelRdt": (
        "Intel RDT cache and memory-bandwidth allocation is not implemented; without it the "
        "box would share the host's whole cache and bandwidth"
    ),
    "linux.timeOffsets": "needs a time namespace, which tuibox does not create",
    "linux.namespaces.time": "time namespaces are not implemented (runc 1.1 refuses them too)",
    "mounts.uidMappings": (
        "idmapped mounts are not implemented; without the mapping the box would read and "
        "write the host's files under its own ids"
    ),
    "mounts.gidMappings": (
        "idmapped mounts are not implemented; without the mapping the box would read and "
        "write the host's files under its own ids"
    ),
}

# linux.sysctl keys the kernel keeps per namespace (runc's list, libcontainer/configs/
# validate): these need a private ipc namespace, as does fs.mqueue.*; net.* needs a private
# network namespace, kernel.domainname a private uts one. Anything else is host-wide.
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)

# The keys each object may hold that tuibox implements; anything else present is unsupported.
_TOP_KEYS = frozenset(
    {
        "ociVersion",
        "root",
        "process",
        "hostname",
        "domainname",
        "mounts",
        "linux",
        "annotations",
        "hooks",
    }
)
# runtime-spec's hook kinds, in the order of the lifecycle (prestart: deprecated, still sent
# by docker for its network set-up).
HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
_HOOK_KEYS = frozenset({"path", "args", "env", "timeout"})
_ROOT_KEYS = frozenset({"path", "readonly"})
_PROCESS_KEYS = frozenset(
    {
        "args",
        "env",
        "cwd",
        "terminal",
        "consoleSize",
        "user",
        "rlimits",
        "noNewPrivileges",
        "capabilities",
        "oomScoreAdj",
        "apparmorProfile",
        "selinuxLabel",
    }
)
_USER_KEYS = frozenset({"uid", "gid", "umask", "additionalGids"})
_CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
_CAP_KEYS = frozenset(_CAP_SETS)
_RLIMIT_KEYS = frozenset({"type", "soft", "hard"})
_CONSOLE_KEYS = frozenset({"height", "width"})
_MOUNT_KEYS = frozenset({"destination", "type", "source", "options"})
_LINUX_KEYS = frozenset(
    {
        "namespaces",
        "devices",
        "maskedPaths",
        "readonlyPaths",
        "rootfsPropagation",
        "cgroupsPath",
        "resources",
        "sysctl",
        "mountLabel",
        "uidMappings",
        "gidMappings",
        "seccomp",
    }
)
_NAMESPACE_KEYS = frozenset({"type", "path"})
_DEVICE_KEYS = frozenset({"path", "type", "major", "minor", "fileMode", "uid", "gid"})

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
# Every namespace type is either implemented or refused (time: REFUSED_FIELDS).
_UNSUPPORTED_NAMESPACES: frozenset[str] = frozenset()
_MAPPING_KEYS = frozenset({"containerID", "hostID", "size"})
_ID_SPACE = 2**32  # a mapped range must stay within 32-bit ids
_MAX_MAP_LINES = 340  # the kernel's limit on lines in one uid_map / gid_map
DEVICE_TYPES = ("c", "b", "u", "p")
PROPAGATIONS = (
    "shared",
    "slave",
    "private",
    "unbindable",
    "rshared",
    "rslave",
    "rprivate",
    "runbindable",
)

_CAPABILITY_SET = frozenset(CAPABILITY_NAMES)

# Spec name -> resource number. The numbers in the second column are the generic Linux ones,
# used only where Python's resource module lacks the constant (it has no RLIMIT_LOCKS).
RLIMITS: dict[str, int] = {
    name: int(getattr(resource, name, number))
    for name, number in (
        ("RLIMIT_CPU", 0),
        ("RLIMIT_FSIZE", 1),
        ("RLIMIT_DATA", 2),
        ("RLIMIT_STACK", 3),
        ("RLIMIT_CORE", 4),
        ("RLIMIT_RSS", 5),
        ("RLIMIT_NPROC", 6),
        ("RLIMIT_NOFILE", 7),
        ("RLIMIT_MEMLOCK", 8),
        ("RLIMIT_AS", 9),
        ("RLIMIT_LOCKS", 10),
        ("RLIMIT_SIGPENDING", 11),
        ("RLIMIT_MSGQUEUE", 12),
        ("RLIMIT_NICE", 13),
        ("RLIMIT_RTPRIO", 14),
        ("RLIMIT_RTTIME", 15),
    )
}
# The spec writes "unlimited" as the kernel's RLIM_INFINITY, an all-ones u64.
_RLIM_MAX = 2**64 - 1
_ID_MAX = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel, never a real id
_HOSTNAME_MAX = 64  # HOST_NAME_MAX, also the kernel's limit for a domain name
_OOM_SCORE_ADJ = 1000  # OOM_SCORE_ADJ_MAX; OOM_SCORE_ADJ_MIN is its negative
_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


class _Invalid(Exception):
    """A field at fault; parse_spec adds the file name and makes it a SpecError."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem


# ---- public API ------------------------------------------------------------------------------


def load_spec(config_path: StrPath, bundle: StrPath | None = None) -> Spec:
    """Read and validate config.json; `bundle` defaults to the file's directory."""
    path = os.path.abspath(os.fspath(config_path))
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SpecError(f"{name}: no such file: {path}") from None
    except IsADirectoryError:
        raise SpecError(f"{name}: is a directory: {path}") from None
    except OSError as e:
        raise SpecError(f"{name}: cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        raise SpecError(f"{name}: not valid UTF-8 (byte {e.start})") from None
    try:
        data = fastjson.loads(text)
    except ValueError as e:
        # fastjson re-parses with the json package on error, so this is a JSONDecodeError.
        line, col, msg = getattr(e, "lineno", 0), getattr(e, "colno", 0), getattr(e, "msg", e)
        raise SpecError(f"{name}: invalid JSON at line {line} column {col}: {msg}") from None
    except RecursionError:
        raise SpecError(f"{name}: invalid JSON: nested too deeply") from None
    return parse_spec(data, bundle if bundle is not None else os.path.dirname(path), name)


def parse_spec(data: object, bundle: StrPath, filename: str = "config.json") -> Spec:
    """Validate decoded JSON; relative root.path is taken against `bundle`."""
    try:
        return _Parser(os.path.abspath(os.fspath(bundle)), filename).spec(data)
    except _Invalid as e:
        where = f"{e.field}: " if e.field else ""
        raise SpecError(f"{filename}: {where}{e.problem}") from None


def starter_spec(
    args: list[str],
    rootfs: str = "rootfs",
    hostname: str | None = None,
    terminal: bool = False,
    seccomp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config.json like `runc spec` writes, with tuibox's defaults spelled out;
    `seccomp`: the linux.seccomp object to write (seccomp/profile.py's default_profile)."""
    caps = list(defaults.CAPABILITIES)
    process: dict[str, Any] = {
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": list(args),
        "env": list(defaults.DEFAULT_ENV),
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "noNewPrivileges": True,
    }
    data: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": False},
    }
    if hostname is not None:
        data["hostname"] = hostname
    data["mounts"] = [
        {
            "destination": m.destination,
            "type": m.type,
            "source": m.source,
            "options": list(m.options),
        }
        for m in defaults.MOUNTS
    ]
    data["linux"] = {
        "namespaces": [
            {"type": ns.type} if ns.path is None else {"type": ns.type, "path": ns.path}
            for ns in defaults.NAMESPACES
        ],
        "maskedPaths": list(defaults.MASKED_PATHS),
        "readonlyPaths": list(defaults.READONLY_PATHS),
    }
    if seccomp is not None:
        data["linux"]["seccomp"] = seccomp
    return data


# ---- checks of single values -----------------------------------------------------------------


def _obj(value: object, field: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Invalid(field, "must be an object")
    return value


def _list(value: object, field: str, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _Invalid(field, f"must be a list of {what}")
    return value


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(field, "must be a string")
    return value


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(field, "must be true or false")
    return value


def _uint(value: object, field: str, maximum: int) -> int:
    # bool is an int subclass; `true` is not a number in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(field, "must be a non-negative integer")
    if value < 0:
        raise _Invalid(field, f"must be a non-negative integer, not {value}")
    if value > maximum:
        raise _Invalid(field, f"must be at most {maximum}, not {value}")
    return value


def _str_list(value: object, field: str) -> tuple[str, ...]:
    items = _list(value, field, "strings")
    for item in items:
        if not isinstance(item, str):
            raise _Invalid(field, "must be a list of strings")
    return tuple(items)  # type: ignore[arg-type]  # every item checked above


def _abs_path(value: object, field: str) -> str:
    path = _str(value, field)
    if not path.startswith("/"):
        raise _Invalid(field, "must be an absolute path")
    if "\0" in path:
        raise _Invalid(field, "must not contain a NUL byte")
    return path


def _abs_paths(value: object, field: str) -> tuple[str, ...]:
    paths = _str_list(value, field)
    for i, path in enumerate(paths):
        _abs_path(path, f"{field}[{i}]")
    return paths


def _str_map(value: object, field: str) -> dict[str, str]:
    obj = _obj(value, field)
    for key, item in obj.items():
        if not isinstance(item, str):
            raise _Invalid(f"{field}.{key}", "must be a string")
    return dict(obj)  # type: ignore[arg-type]  # every value checked above


def _one_of(value: object, field: str, allowed: tuple[str, ...]) -> str:
    text = _str(value, field)
    if text not in allowed:
        raise _Invalid(field, f"{text!r} is not one of {', '.join(allowed)}")
    return text


def _present(value: object) -> bool:
    # An empty object or list asks nothing of the runtime, so it is not worth a warning.
    return value is not None and value != {} and value != []


def _version(value: object) -> tuple[str, str | None]:
    """The version and, for a 1.x newer than tuibox knows, a warning."""
    text = _str(value, "ociVersion")
    core = text.partition("-")[0].partition("+")[0]
    parts = core.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise _Invalid("ociVersion", f"{text!r} is not a version like 1.0.2")
    major, minor = int(parts[0]), int(parts[1])
    if major != 1:
        raise _Invalid("ociVersion", f"version {text} is not supported (tuibox reads 1.x)")
    if minor > KNOWN_MINOR:
        return text, (
            f"ociVersion {text} is newer than 1.{KNOWN_MINOR}, the newest tuibox knows; "
            "fields it does not know are ignored"
        )
    return text, None


def _hostname(value: object, field: str = "hostname") -> str | None:
    name = _str(value, field)
    if not name:
        return None  # as runc: an empty hostname leaves the box's uts name alone
    if len(name) > _HOSTNAME_MAX:
        raise _Invalid(field, f"must be at most {_HOSTNAME_MAX} characters")
    if not _HOSTNAME_CHARS.issuperset(name):
        raise _Invalid(field, f"{name!r} may hold only letters, digits, '-' and '.'")
    if name[0] in "-." or name[-1] == "-" or ".." in name:
        raise _Invalid(field, f"{name!r} is not a valid {field}")
    return name


def _oom_score_adj(value: object) -> int:
    field = "process.oomScoreAdj"
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(field, "must be an integer")
    if not -_OOM_SCORE_ADJ <= value <= _OOM_SCORE_ADJ:
        raise _Invalid(field, f"must be from -{_OOM_SCORE_ADJ} to {_OOM_SCORE_ADJ}, not {value}")
    return value


def _label(value: object, field: str) -> str | None:
    text = _str(value, field)
    if "\0" in text or "\n" in text:
        raise _Invalid(field, "must not contain a NUL byte or a newline")
    return text or None  # empty: none asked for, as runc reads it


def sysctl_namespace(key: str) -> str | None:
    """The namespace type that owns a sysctl key, or None for a host-wide one."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key == "kernel.domainname":
        return "uts"
    return None


def _sysctl_key(key: str) -> None:
    """Only a dotted name of plain components: it becomes a path under /proc/sys."""
    field = f"linux.sysctl.{key}"
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise _Invalid(field, "is not a sysctl name (printable ASCII, no spaces)")
    # An empty component rules out "..", and without "/" nothing can leave /proc/sys. (runc
    # also reads the "net/ipv4/conf/eth0.100/rp_filter" spelling; tuibox does not.)
    if "/" in key or "" in key.split("."):
        raise _Invalid(field, "is not a sysctl name like net.ipv4.ip_forward")


# ---- the walk over the document --------------------------------------------------------------


class _Parser:
    def __init__(self, bundle: str, filename: str) -> None:
        self.bundle = bundle
        self.filename = filename
        # dict as an ordered set: file order, each name once (mounts repeat their keys)
        self.unsupported: dict[str, None] = {}

    def _extra(self, obj: dict[str, object], known: frozenset[str], prefix: str) -> None:
        for key, value in obj.items():
            if key not in known and _present(value):
                name = f"{prefix}{key}"
                if name in REFUSED_FIELDS:
                    raise _Invalid(name, REFUSED_FIELDS[name])
                self.unsupported[name] = None

    def spec(self, data: object) -> Spec:
        if not isinstance(data, dict):
            raise _Invalid("", "must be a JSON object")
        top: dict[str, object] = data
        self._extra(top, _TOP_KEYS, "")
        if "ociVersion" not in top:
            raise _Invalid("ociVersion", "is required")
        version, warning = _version(top["ociVersion"])
        root = self.root(top.get("root"))
        if "process" not in top:
            raise _Invalid("process", "is required")
        process = self.process(top["process"])
        hostname = _hostname(top["hostname"]) if top.get("hostname") is not None else None
        domainname = (
            _hostname(top["domainname"], "domainname")
            if top.get("domainname") is not None
            else None
        )
        if top.get("mounts") is None:
            mounts, default_mounts = defaults.MOUNTS, True
        else:
            mounts, default_mounts = self.mounts(top["mounts"]), False
        linux, default_ns, default_dev = self.linux(top.get("linux"))
        if domainname and not any(ns.type == "uts" for ns in linux.namespaces):
            raise _Invalid("domainname", "needs a uts namespace of its own")
        hooks = self.hooks(top["hooks"]) if top.get("hooks") is not None else {}
        annotations = (
            _str_map(top["annotations"], "annotations")
            if top.get("annotations") is not None
            else {}
        )
        return Spec(
            oci_version=version,
            root=root,
            process=process,
            hostname=hostname,
            mounts=mounts,
            linux=linux,
            annotations=annotations,
            bundle=self.bundle,
            unsupported=tuple(self.unsupported),
            warnings=(f"{self.filename}: {warning}",) if warning else (),
            default_mounts=default_mounts,
            default_namespaces=default_ns,
            default_devices=default_dev,
            domainname=domainname,
            hooks=hooks,
        )

    def hooks(self, value: object) -> dict[str, tuple[Hook, ...]]:
        obj = _obj(value, "hooks")
        self._extra(obj, frozenset(HOOK_KINDS), "hooks.")
        out: dict[str, tuple[Hook, ...]] = {}
        for kind in HOOK_KINDS:
            if obj.get(kind) is None:
                continue
            found = []
            for i, item in enumerate(_list(obj[kind], f"hooks.{kind}", "objects")):
                field = f"hooks.{kind}[{i}]"
                hook = _obj(item, field)
                self._extra(hook, _HOOK_KEYS, f"hooks.{kind}.")
                if "path" not in hook:
                    raise _Invalid(f"{field}.path", "is required")
                timeout = None
                if hook.get("timeout") is not None:
                    timeout = _uint(hook["timeout"], f"{field}.timeout", 2**31 - 1)
                    if timeout == 0:
                        raise _Invalid(f"{field}.timeout", "must be greater than zero")
                found.append(
                    Hook(
                        path=_abs_path(hook["path"], f"{field}.path"),
                        args=_str_list(hook["args"], f"{field}.args")
                        if hook.get("args") is not None
                        else (),
                        env=_str_list(hook["env"], f"{field}.env")
                        if hook.get("env") is not None
                        else (),
                        timeout=timeout,
                    )
                )
            if found:
                out[kind] = tuple(found)
        return out

    def root(self, value: object) -> Root:
        if value is None:
            raise _Invalid("root", "is required")
        obj = _obj(value, "root")
        self._extra(obj, _ROOT_KEYS, "root.")
        if "path" not in obj:
            raise _Invalid("root.path", "is required")
        path = _str(obj["path"], "root.path")
        if not path:
            raise _Invalid("root.path", "must not be empty")
        if "\0" in path:
            raise _Invalid("root.path", "must not contain a NUL byte")
        readonly = _bool(obj["readonly"], "root.readonly") if "readonly" in obj else False
        return Root(os.path.normpath(os.path.join(self.bundle, path)), readonly)

    def process(self, value: object) -> Process:
        obj = _obj(value, "process")
        self._extra(obj, _PROCESS_KEYS, "process.")
        if "args" not in obj:
            raise _Invalid("process.args", "is required")
        args = _str_list(obj["args"], "process.args")
        if not args:
            raise _Invalid("process.args", "must not be empty")
        if not args[0]:
            raise _Invalid("process.args[0]", "must not be empty")
        env: tuple[str, ...] = ()
        if obj.get("env") is not None:
            env = _str_list(obj["env"], "process.env")
            for i, item in enumerate(env):
                if item.partition("=")[0] == "" or "=" not in item:
                    raise _Invalid(f"process.env[{i}]", f"{item!r} is not KEY=VALUE")
        cwd = _abs_path(obj["cwd"], "process.cwd") if "cwd" in obj else "/"
        terminal = _bool(obj["terminal"], "process.terminal") if "terminal" in obj else False
        nnp = obj.get("noNewPrivileges")
        oom = obj.get("oomScoreAdj")
        apparmor = obj.get("apparmorProfile")
        selinux = obj.get("selinuxLabel")
        return Process(
            args=args,
            env=env,
            cwd=cwd,
            terminal=terminal,
            user=self.user(obj["user"]) if obj.get("user") is not None else User(),
            rlimits=self.rlimits(obj["rlimits"]) if obj.get("rlimits") is not None else (),
            no_new_privileges=_bool(nnp, "process.noNewPrivileges") if nnp is not None else False,
            capabilities=(
                self.capabilities(obj["capabilities"])
                if obj.get("capabilities") is not None
                else None
            ),
            console_size=(
                self.console_size(obj["consoleSize"])
                if obj.get("consoleSize") is not None
                else None
            ),
            oom_score_adj=_oom_score_adj(oom) if oom is not None else None,
            apparmor_profile=(
                _label(apparmor, "process.apparmorProfile") if apparmor is not None else None
            ),
            selinux_label=_label(selinux, "process.selinuxLabel") if selinux is not None else None,
        )

    def user(self, value: object) -> User:
        obj = _obj(value, "process.user")
        self._extra(obj, _USER_KEYS, "process.user.")
        gids: list[int] = []
        if obj.get("additionalGids") is not None:
            items = _list(obj["additionalGids"], "process.user.additionalGids", "integers")
            for i, gid in enumerate(items):
                gids.append(_uint(gid, f"process.user.additionalGids[{i}]", _ID_MAX))
        umask = obj.get("umask")
        return User(
            uid=_uint(obj["uid"], "process.user.uid", _ID_MAX) if "uid" in obj else 0,
            gid=_uint(obj["gid"], "process.user.gid", _ID_MAX) if "gid" in obj else 0,
            additional_gids=tuple(gids),
            umask=_uint(umask, "process.user.umask", 0o777) if umask is not None else None,
        )

    def rlimits(self, value: object) -> tuple[Rlimit, ...]:
        out: list[Rlimit] = []
        seen: set[str] = set()
        for i, item in enumerate(_list(value, "process.rlimits", "objects")):
            field = f"process.rlimits[{i}]"
            obj = _obj(item, field)
            self._extra(obj, _RLIMIT_KEYS, "process.rlimits.")
            for key in ("type", "soft", "hard"):
                if key not in obj:
                    raise _Invalid(f"{field}.{key}", "is required")
            kind = _str(obj["type"], f"{field}.type")
            if kind not in RLIMITS:
                raise _Invalid(f"{field}.type", f"unknown limit {kind!r}")
            if kind in seen:
                raise _Invalid(f"{field}.type", f"{kind} is given twice")
            seen.add(kind)
            soft = _uint(obj["soft"], f"{field}.soft", _RLIM_MAX)
            hard = _uint(obj["hard"], f"{field}.hard", _RLIM_MAX)
            if soft > hard:
                raise _Invalid(field, f"{kind} soft limit {soft} is above its hard limit {hard}")
            out.append(Rlimit(kind, RLIMITS[kind], _rlim(soft), _rlim(hard)))
        return tuple(out)

    def capabilities(self, value: object) -> Capabilities:
        obj = _obj(value, "process.capabilities")
        self._extra(obj, _CAP_KEYS, "process.capabilities.")
        sets: dict[str, tuple[str, ...]] = {}
        for name in _CAP_SETS:
            if obj.get(name) is None:
                continue
            field = f"process.capabilities.{name}"
            caps = _str_list(obj[name], field)
            for cap in caps:
                if cap not in _CAPABILITY_SET:
                    raise _Invalid(field, f"unknown capability {cap!r}")
            sets[name] = caps
        return Capabilities(**sets)

    def console_size(self, value: object) -> tuple[int, int]:
        obj = _obj(value, "process.consoleSize")
        self._extra(obj, _CONSOLE_KEYS, "process.consoleSize.")
        for key in ("height", "width"):
            if key not in obj:
                raise _Invalid(f"process.consoleSize.{key}", "is required")
        return (
            _uint(obj["height"], "process.consoleSize.height", 0xFFFF),
            _uint(obj["width"], "process.consoleSize.width", 0xFFFF),
        )

    def mounts(self, value: object) -> tuple[Mount, ...]:
        out: list[Mount] = []
        for i, item in enumerate(_list(value, "mounts", "objects")):
            field = f"mounts[{i}]"
            obj = _obj(item, field)
            self._extra(obj, _MOUNT_KEYS, "mounts.")
            if "destination" not in obj:
                raise _Invalid(f"{field}.destination", "is required")
            opts = obj.get("options")
            out.append(
                Mount(
                    destination=_abs_path(obj["destination"], f"{field}.destination"),
                    type=_str(obj["type"], f"{field}.type") if "type" in obj else "",
                    source=_str(obj["source"], f"{field}.source") if "source" in obj else "",
                    options=_str_list(opts, f"{field}.options") if opts is not None else (),
                )
            )
        return tuple(out)

    def linux(self, value: object) -> tuple[Linux, bool, bool]:
        obj = _obj(value, "linux") if value is not None else {}
        self._extra(obj, _LINUX_KEYS, "linux.")
        # No `linux` section (box's own minimal configs): box's isolation. A `linux` section
        # without `namespaces`: inherit them, as runtime-spec says, all but the mount one:
        # tuibox sets the root up in a mount namespace of the box's own, always (runc would
        # chroot inside the caller's). docs/SPEC_FIELDS.md, "linux.namespaces".
        if value is None:
            namespaces, default_ns = defaults.NAMESPACES, True
        else:
            given = obj.get("namespaces")
            namespaces = self.namespaces(given) if given is not None else ()
            default_ns = False
            if not any(ns.type == "mount" for ns in namespaces):
                namespaces = (*namespaces, Namespace("mount"))
        devices: tuple[Device, ...] = ()
        if obj.get("devices") is None:
            default_dev = True
        else:
            devices, default_dev = self.devices(obj["devices"]), False
        masked = obj.get("maskedPaths")
        readonly = obj.get("readonlyPaths")
        propagation = obj.get("rootfsPropagation")
        cgroups_path = obj.get("cgroupsPath")
        resources = obj.get("resources")
        sysctl = obj.get("sysctl")
        mount_label = obj.get("mountLabel")
        uid_maps = self.mappings(obj.get("uidMappings"), "linux.uidMappings")
        gid_maps = self.mappings(obj.get("gidMappings"), "linux.gidMappings")
        _check_user_namespace(namespaces, uid_maps, gid_maps)
        seccomp = None
        if obj.get("seccomp") is not None:
            # Imported only for a spec that has one: `tuibox run` of a plain bundle pays nothing.
            from tuibox.runtime.seccomp.profile import parse as parse_seccomp

            seccomp, unknown = parse_seccomp(obj["seccomp"])
            self.unsupported.update(dict.fromkeys(unknown))
        linux = Linux(
            namespaces=namespaces,
            devices=devices,
            masked_paths=(
                _abs_paths(masked, "linux.maskedPaths")
                if masked is not None
                else defaults.MASKED_PATHS
            ),
            readonly_paths=(
                _abs_paths(readonly, "linux.readonlyPaths")
                if readonly is not None
                else defaults.READONLY_PATHS
            ),
            rootfs_propagation=(
                _one_of(propagation, "linux.rootfsPropagation", PROPAGATIONS)
                if propagation is not None
                else None
            ),
            cgroups_path=(
                _str(cgroups_path, "linux.cgroupsPath") if cgroups_path is not None else None
            ),
            # checked by the cgroup code, which knows what each controller accepts
            resources=dict(_obj(resources, "linux.resources")) if resources is not None else {},
            sysctl=self.sysctl(sysctl, namespaces) if sysctl is not None else {},
            mount_label=_label(mount_label, "linux.mountLabel")
            if mount_label is not None
            else None,
            uid_mappings=uid_maps,
            gid_mappings=gid_maps,
            seccomp=seccomp,
        )
        return linux, default_ns, default_dev

    def sysctl(self, value: object, namespaces: tuple[Namespace, ...]) -> dict[str, str]:
        """Only keys a private namespace of the box owns: any other would change the host.
        (That a namespace given by path is not the host's own is checked at create.)"""
        out = _str_map(value, "linux.sysctl")
        kinds = {ns.type for ns in namespaces}
        for key in out:
            _sysctl_key(key)
            field = f"linux.sysctl.{key}"
            if key == "kernel.hostname":
                raise _Invalid(field, "set the hostname field instead (runc refuses it too)")
            kind = sysctl_namespace(key)
            if kind is None:
                raise _Invalid(
                    field, "is not namespaced: setting it would change the host (refused)"
                )
            if kind not in kinds:
                raise _Invalid(
                    field, f"needs a private {kind} namespace, or it would change the host's"
                )
        return out

    def namespaces(self, value: object) -> tuple[Namespace, ...]:
        out: list[Namespace] = []
        seen: set[str] = set()
        for i, item in enumerate(_list(value, "linux.namespaces", "objects")):
            field = f"linux.namespaces[{i}]"
            obj = _obj(item, field)
            self._extra(obj, _NAMESPACE_KEYS, "linux.namespaces.")
            if "type" not in obj:
                raise _Invalid(f"{field}.type", "is required")
            kind = _one_of(obj["type"], f"{field}.type", NAMESPACE_TYPES)
            if kind in seen:
                raise _Invalid(f"{field}.type", f"{kind} is given twice")
            seen.add(kind)
            path = obj.get("path")
            # runc reads an empty path as "make a new one", and so do we
            ns_path = _abs_path(path, f"{field}.path") if path not in (None, "") else None
            if f"linux.namespaces.{kind}" in REFUSED_FIELDS:
                raise _Invalid(f"{field}.type", REFUSED_FIELDS[f"linux.namespaces.{kind}"])
            if kind in _UNSUPPORTED_NAMESPACES:
                self.unsupported[f"linux.namespaces.{kind}"] = None
                continue
            out.append(Namespace(kind, ns_path))
        return tuple(out)

    def mappings(self, value: object, field: str) -> tuple[IdMapping, ...]:
        if value is None:
            return ()
        items = _list(value, field, "objects")
        if len(items) > _MAX_MAP_LINES:
            raise _Invalid(field, f"at most {_MAX_MAP_LINES} ranges (the kernel's limit)")
        out: list[IdMapping] = []
        for i, item in enumerate(items):
            where = f"{field}[{i}]"
            obj = _obj(item, where)
            self._extra(obj, _MAPPING_KEYS, f"{field}.")
            for key in ("containerID", "hostID", "size"):
                if key not in obj:
                    raise _Invalid(f"{where}.{key}", "is required")
            inside = _uint(obj["containerID"], f"{where}.containerID", _ID_SPACE - 1)
            outside = _uint(obj["hostID"], f"{where}.hostID", _ID_SPACE - 1)
            size = _uint(obj["size"], f"{where}.size", _ID_SPACE)
            if size == 0:
                raise _Invalid(f"{where}.size", "must be at least 1")
            for start, name in ((inside, "containerID"), (outside, "hostID")):
                if start + size > _ID_SPACE:
                    raise _Invalid(where, f"{name} {start} + size {size} goes past 32-bit ids")
            m = IdMapping(inside, outside, size)
            for j, other in enumerate(out):
                for name, a, b in (
                    ("containerID", m.container_id, other.container_id),
                    ("hostID", m.host_id, other.host_id),
                ):
                    if a < b + other.size and b < a + m.size:
                        raise _Invalid(where, f"its {name} range overlaps {field}[{j}]")
            out.append(m)
        return tuple(out)

    def devices(self, value: object) -> tuple[Device, ...]:
        out: list[Device] = []
        for i, item in enumerate(_list(value, "linux.devices", "objects")):
            field = f"linux.devices[{i}]"
            obj = _obj(item, field)
            self._extra(obj, _DEVICE_KEYS, "linux.devices.")
            for key in ("path", "type"):
                if key not in obj:
                    raise _Invalid(f"{field}.{key}", "is required")
            path = _abs_path(obj["path"], f"{field}.path")
            kind = _one_of(obj["type"], f"{field}.type", DEVICE_TYPES)
            major = minor = 0
            if kind != "p":  # a fifo has no device number
                for key in ("major", "minor"):
                    if key not in obj:
                        raise _Invalid(f"{field}.{key}", f"is required for type {kind!r}")
                # the kernel's dev_t: 12 bits of major, 20 of minor
                major = _uint(obj["major"], f"{field}.major", 0xFFF)
                minor = _uint(obj["minor"], f"{field}.minor", 0xFFFFF)
            mode, uid, gid = obj.get("fileMode"), obj.get("uid"), obj.get("gid")
            out.append(
                Device(
                    path=path,
                    type=kind,
                    major=major,
                    minor=minor,
                    # may carry the S_IFCHR/S_IFBLK bits, as podman writes it
                    file_mode=_uint(mode, f"{field}.fileMode", 0o177777)
                    if mode is not None
                    else None,
                    uid=_uint(uid, f"{field}.uid", _ID_MAX) if uid is not None else None,
                    gid=_uint(gid, f"{field}.gid", _ID_MAX) if gid is not None else None,
                )
            )
        return tuple(out)


def _check_user_namespace(
    namespaces: tuple[Namespace, ...],
    uid_maps: tuple[IdMapping, ...],
    gid_maps: tuple[IdMapping, ...],
) -> None:
    user = next((ns for ns in namespaces if ns.type == "user"), None)
    for field, maps in (("linux.uidMappings", uid_maps), ("linux.gidMappings", gid_maps)):
        if user is None and maps:
            raise _Invalid(field, "needs a user namespace (linux.namespaces type user)")
        if user is not None and user.path is not None and maps:
            raise _Invalid(field, "a joined user namespace (with a path) has its own mappings")
        if user is not None and user.path is None and not maps:
            # Without a map the box's root would be nobody and could not even mount /proc.
            raise _Invalid(field, "a new user namespace needs uid and gid mappings")


def _rlim(value: int) -> int:
    return resource.RLIM_INFINITY if value == _RLIM_MAX else value
