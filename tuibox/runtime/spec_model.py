"""The validated shape of an OCI runtime-spec config.json, as the runtime uses it.

Plain value classes (see plain.py for why not dataclasses): `spec.load_spec` builds them and
checks every field; everything after that trusts them. Paths are already made absolute where
the spec allows a relative one (root.path is resolved against the bundle directory). Paths are
plain `str`: pathlib is kept off the start-up path (docs/ARCHITECTURE.md). Treat instances as
immutable: change them with `.replace(...)`.
"""

from __future__ import annotations

from tuibox.runtime.plain import Plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class User(Plain):
    __slots__ = ("additional_gids", "gid", "uid", "umask")

    def __init__(
        self,
        uid: int = 0,
        gid: int = 0,
        additional_gids: tuple[int, ...] = (),
        umask: int | None = None,
    ) -> None:
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids
        self.umask = umask


class Rlimit(Plain):
    __slots__ = ("hard", "resource", "soft", "type")

    def __init__(self, type: str, resource: int, soft: int, hard: int) -> None:
        self.type = type  # "RLIMIT_NOFILE" as written in the spec
        self.resource = resource  # the resource.RLIMIT_* number
        self.soft = soft
        self.hard = hard


class Capabilities(Plain):
    __slots__ = ("ambient", "bounding", "effective", "inheritable", "permitted")

    def __init__(
        self,
        bounding: tuple[str, ...] = (),
        effective: tuple[str, ...] = (),
        permitted: tuple[str, ...] = (),
        inheritable: tuple[str, ...] = (),
        ambient: tuple[str, ...] = (),
    ) -> None:
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient


class Process(Plain):
    __slots__ = (
        "apparmor_profile",
        "args",
        "capabilities",
        "console_size",
        "cwd",
        "env",
        "no_new_privileges",
        "oom_score_adj",
        "rlimits",
        "selinux_label",
        "terminal",
        "user",
    )

    def __init__(
        self,
        args: tuple[str, ...],
        env: tuple[str, ...] = (),
        cwd: str = "/",
        terminal: bool = False,
        user: User | None = None,
        rlimits: tuple[Rlimit, ...] = (),
        no_new_privileges: bool = False,
        capabilities: Capabilities | None = None,
        console_size: tuple[int, int] | None = None,
        oom_score_adj: int | None = None,
        apparmor_profile: str | None = None,
        selinux_label: str | None = None,
    ) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.terminal = terminal
        self.user = user if user is not None else User()
        self.rlimits = rlimits
        self.no_new_privileges = no_new_privileges
        self.capabilities = capabilities  # None: the runtime's default set
        self.console_size = console_size  # (height, width)
        self.oom_score_adj = oom_score_adj  # None: inherited from tuibox
        self.apparmor_profile = apparmor_profile  # None: the runtime's own (unconfined here)
        self.selinux_label = selinux_label


class Root(Plain):
    __slots__ = ("path", "readonly")

    def __init__(self, path: str, readonly: bool = False) -> None:
        self.path = path  # absolute
        self.readonly = readonly


class Mount(Plain):
    __slots__ = ("destination", "options", "source", "type")

    def __init__(
        self, destination: str, type: str, source: str, options: tuple[str, ...] = ()
    ) -> None:
        self.destination = destination  # absolute path inside the box
        self.type = type  # "bind", "proc", "tmpfs", ...; "" when absent
        self.source = source
        self.options = options


class Hook(Plain):
    """One OCI hook: a program the runtime runs at a point of the lifecycle (hooks.py)."""

    __slots__ = ("args", "env", "path", "timeout")

    def __init__(
        self,
        path: str,
        args: tuple[str, ...] = (),
        env: tuple[str, ...] = (),
        timeout: int | None = None,
    ) -> None:
        self.path = path  # absolute, on the host (startContainer: inside the box)
        self.args = args  # argv, argv[0] included (execv); empty: [path]
        self.env = env  # the whole environment ("KEY=value")
        self.timeout = timeout  # seconds; None: no limit


class Namespace(Plain):
    __slots__ = ("path", "type")

    def __init__(self, type: str, path: str | None = None) -> None:
        self.type = type  # pid, network, mount, ipc, uts, user, cgroup, time
        self.path = path


class Device(Plain):
    __slots__ = ("file_mode", "gid", "major", "minor", "path", "type", "uid")

    def __init__(
        self,
        path: str,
        type: str,
        major: int = 0,
        minor: int = 0,
        file_mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        self.path = path
        self.type = type  # c, b, u, p
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid


class IdMapping(Plain):
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size


class SeccompArg(Plain):
    __slots__ = ("index", "op", "value", "value_two")

    def __init__(self, index: int, value: int, op: str, value_two: int = 0) -> None:
        self.index = index  # 0..5
        self.value = value
        self.value_two = value_two
        self.op = op  # "SCMP_CMP_EQ", ...


class SeccompRule(Plain):
    __slots__ = ("action", "args", "errno_ret", "names")

    def __init__(
        self,
        names: tuple[str, ...],
        action: str,
        errno_ret: int | None = None,
        args: tuple[SeccompArg, ...] = (),
    ) -> None:
        self.names = names
        self.action = action  # "SCMP_ACT_ERRNO", ...
        self.errno_ret = errno_ret
        self.args = args


class Seccomp(Plain):
    """linux.seccomp, checked (runtime/seccomp/profile.py); compiled by seccomp/stage.py."""

    __slots__ = (
        "architectures",
        "default_action",
        "default_errno_ret",
        "flags",
        "listener_metadata",
        "listener_path",
        "syscalls",
    )

    def __init__(
        self,
        default_action: str,
        default_errno_ret: int | None = None,
        architectures: tuple[str, ...] = (),
        flags: tuple[str, ...] = (),
        syscalls: tuple[SeccompRule, ...] = (),
        listener_path: str | None = None,
        listener_metadata: str = "",
    ) -> None:
        self.default_action = default_action
        self.default_errno_ret = default_errno_ret
        self.architectures = architectures  # "SCMP_ARCH_X86_64", ...
        self.flags = flags  # "SECCOMP_FILTER_FLAG_LOG", ...
        self.syscalls = syscalls
        # the seccomp agent's unix socket; set only when some rule is SCMP_ACT_NOTIFY
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    def notifies(self) -> bool:
        return any(r.action == "SCMP_ACT_NOTIFY" for r in self.syscalls)


class Linux(Plain):
    __slots__ = (
        "cgroups_path",
        "devices",
        "gid_mappings",
        "masked_paths",
        "mount_label",
        "namespaces",
        "readonly_paths",
        "resources",
        "rootfs_propagation",
        "seccomp",
        "sysctl",
        "uid_mappings",
    )

    def __init__(
        self,
        namespaces: tuple[Namespace, ...],
        devices: tuple[Device, ...] = (),
        masked_paths: tuple[str, ...] = (),
        readonly_paths: tuple[str, ...] = (),
        rootfs_propagation: str | None = None,
        cgroups_path: str | None = None,
        resources: dict[str, Any] | None = None,
        sysctl: dict[str, str] | None = None,
        mount_label: str | None = None,
        uid_mappings: tuple[IdMapping, ...] = (),
        gid_mappings: tuple[IdMapping, ...] = (),
        seccomp: Seccomp | None = None,
    ) -> None:
        self.namespaces = namespaces
        self.devices = devices
        self.masked_paths = masked_paths
        self.readonly_paths = readonly_paths
        self.rootfs_propagation = rootfs_propagation
        self.cgroups_path = cgroups_path
        self.resources = resources if resources is not None else {}  # raw, checked
        # key -> value, keys checked (syntax, and a private namespace that owns them)
        self.sysctl = sysctl if sysctl is not None else {}
        self.mount_label = mount_label  # SELinux context= for the box's new filesystems
        # written to the user namespace's uid_map / gid_map by the runtime
        self.uid_mappings = uid_mappings
        self.gid_mappings = gid_mappings
        self.seccomp = seccomp  # None: no filter (as runc without the field)


class Spec(Plain):
    __slots__ = (
        "annotations",
        "bundle",
        "default_devices",
        "default_mounts",
        "default_namespaces",
        "domainname",
        "hooks",
        "hostname",
        "linux",
        "mounts",
        "oci_version",
        "process",
        "root",
        "unsupported",
        "warnings",
    )

    def __init__(
        self,
        oci_version: str,
        root: Root,
        process: Process,
        hostname: str | None,
        mounts: tuple[Mount, ...],
        linux: Linux,
        annotations: dict[str, str] | None = None,
        bundle: str | None = None,
        unsupported: tuple[str, ...] = (),
        warnings: tuple[str, ...] = (),
        default_mounts: bool = False,
        default_namespaces: bool = False,
        default_devices: bool = False,
        domainname: str | None = None,
        hooks: dict[str, tuple[Hook, ...]] | None = None,
    ) -> None:
        self.oci_version = oci_version
        self.root = root
        self.process = process
        self.hostname = hostname
        self.mounts = mounts
        self.linux = linux
        self.annotations = annotations if annotations is not None else {}
        self.bundle = bundle if bundle is not None else (root.path.rpartition("/")[0] or "/")
        # fields present in the file that tuibox does not implement; warned about once
        self.unsupported = unsupported
        self.warnings = warnings
        # True where the file gave no mounts / namespaces / devices and defaults were used
        self.default_mounts = default_mounts
        self.default_namespaces = default_namespaces
        self.default_devices = default_devices
        self.domainname = domainname  # NIS domain name of the box's uts namespace
        # kind (prestart, createRuntime, ...) -> hooks in order; only kinds that have some
        self.hooks = hooks if hooks is not None else {}

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.linux.namespaces:
            if ns.type == kind:
                return ns
        return None
