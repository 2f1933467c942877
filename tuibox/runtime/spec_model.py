"""The validated shape of an OCI runtime-spec config.json, as the runtime uses it.

Plain frozen dataclasses, no behaviour: `spec.load_spec` builds them and checks every field;
everything after that trusts them. Paths are already made absolute where the spec allows a
relative one (root.path is resolved against the bundle directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None


@dataclass(frozen=True)
class Rlimit:
    type: str  # "RLIMIT_NOFILE" as written in the spec
    resource: int  # the resource.RLIMIT_* number
    soft: int
    hard: int


@dataclass(frozen=True)
class Capabilities:
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    terminal: bool = False
    user: User = field(default_factory=User)
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    capabilities: Capabilities | None = None  # None: the runtime's default set
    console_size: tuple[int, int] | None = None  # (height, width)


@dataclass(frozen=True)
class Root:
    path: Path  # absolute
    readonly: bool = False


@dataclass(frozen=True)
class Mount:
    destination: str  # absolute path inside the box
    type: str  # "bind", "proc", "tmpfs", ...; "" when absent (bind implied by options)
    source: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Namespace:
    type: str  # pid, network, mount, ipc, uts, user, cgroup, time
    path: str | None = None


@dataclass(frozen=True)
class Device:
    path: str
    type: str  # c, b, u, p
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...]
    devices: tuple[Device, ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    rootfs_propagation: str | None = None
    cgroups_path: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)  # raw linux.resources, checked
    sysctl: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    oci_version: str
    root: Root
    process: Process
    hostname: str | None
    mounts: tuple[Mount, ...]
    linux: Linux
    annotations: dict[str, str] = field(default_factory=dict)
    bundle: Path = Path(".")
    # fields present in the file that tuibox does not implement; warned about once
    unsupported: tuple[str, ...] = ()
    # True where the file gave no mounts / namespaces / devices and box's defaults were used
    default_mounts: bool = False
    default_namespaces: bool = False
    default_devices: bool = False

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.linux.namespaces:
            if ns.type == kind:
                return ns
        return None
