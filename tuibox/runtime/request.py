"""What `Runtime.create` and `Runtime.run` take, and how to build it.

A `BoxRequest` (alias of `CreateRequest`) is a loaded spec plus what the caller adds. Build
one from a bundle, a root file system or an image with one of the class methods; each takes
the same keyword options and validates everything before returning (a bad value raises a
one-line SpecError/ImageError/NetworkError; nothing is created on disk):

    BoxRequest.from_bundle(name, bundle=None, *, config=None, **options)
    BoxRequest.from_rootfs(name, rootfs, command=None, **options)
    BoxRequest.from_image(name, image, command=None, *, data_root=None, root=None, **options)

options (all keyword-only, all optional):
    detach=True        output to box.log and a monitor reaps the init (False: `Runtime.run`
                       in the foreground)
    command            the program and its arguments (a bundle's replaces process.args; an
                       image's replaces its Cmd and keeps its Entrypoint)
    hostname, env      env: "KEY=VALUE" strings (a bare "KEY" takes this process's value),
                       or a dict
    workdir, user      user: "UID[:GID]" or (uid, gid)
    terminal, read_only
    memory, memory_swap, cpus, cpu_shares, cpuset_cpus, cpuset_mems, pids_limit
                       as docker's flags: "256m", "1g", "-1" (no limit), cpus "0.5"
    network            a network's name ("default", "none", or one of `network ls`)
    netconf            a netconf.json path (instead of network)
    publish            ports: "[IP:]HOST:BOX[/PROTO]" strings (alone: the default network)
    seccomp            None (default profile for a rootfs or image, the spec's own for a
                       bundle), "unconfined", or a profile's path
    userns             "auto" (a private range of 65536 ids) or "host" (the default)
    no_new_keyring     share the caller's session keyring
    console_socket     send the terminal's master fd to this unix socket (needs terminal)
    log_max_size       a detached box's log cap: "10m" (the default), "1g"; "-1" or "0" for
                       no cap. At the cap box.log becomes box.log.1 (at most ~2x on disk)
    engine             runc's create (engine mode, docs/OCI_CLI.md): the init keeps the
                       caller's fds 0-2, no monitor: the caller's subreaper reaps it
    preserve_fds       N: the caller's fds 3 .. 3+N-1 reach the box program (runc's)
    no_pivot           MS_MOVE + chroot instead of pivot_root (runc's --no-pivot)
    pid_file           write the init's host pid there (atomically) before create returns
    restart            "no", "on-failure[:N]", "always" or "unless-stopped" (docker's
                       policies; needs detach): the box's monitor restarts its program
    names              how errors name each option: {"memory": "--memory", ...}; default
                       the option's own name (the CLI passes its flags)

`req.warnings` lists what the caller should show (spec fields this host ignores).

With a network, a single-threaded caller forks the netlink worker at once, so its import of
pyroute2 overlaps with loading the spec and creating the box; a threaded caller (the TUI,
validating a form) forks nothing here. On `tuibox run`'s start-up path: no typing or
dataclasses at run time; the heavy parts are imported only when an option needs them.
"""

from __future__ import annotations

import os
import sys

from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.spec_model import Spec, User

# The options every builder takes, as keyword arguments (see the module docstring).
OPTIONS = (
    "detach",
    "hostname",
    "env",
    "workdir",
    "user",
    "terminal",
    "read_only",
    "memory",
    "memory_swap",
    "cpus",
    "cpu_shares",
    "cpuset_cpus",
    "cpuset_mems",
    "pids_limit",
    "network",
    "netconf",
    "publish",
    "seccomp",
    "userns",
    "no_new_keyring",
    "console_socket",
    "log_max_size",
    "engine",
    "preserve_fds",
    "no_pivot",
    "pid_file",
    "restart",
    "names",
)
# What a stopped box is started again from (`recipe`): every option but those that name the
# creating caller's own fds, files or role (docs/RELIABILITY.md, "Starting a stopped box").
_NOT_RECORDED = frozenset({"detach", "engine", "preserve_fds", "pid_file", "names"})
LIMITS = ("memory", "memory_swap", "cpus", "cpu_shares", "cpuset_cpus", "cpuset_mems", "pids_limit")


class CreateRequest:
    """A box to make: the loaded spec plus what the caller adds."""

    def __init__(
        self,
        name: str,
        spec: Spec,
        detach: bool = True,
        image: str | None = None,
        overlay: tuple[str, str] | None = None,
        options: dict[str, Any] | None = None,
        stdio: tuple[int, int, int] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.detach = detach  # output to box.log, a monitor reaps the init
        self.image = image
        self.overlay = overlay  # (image rootfs, data root: the writable layer goes there)
        # Free-form options for stages (network, ports, cgroup limits), keyed by stage.
        self.options: dict[str, Any] = options if options is not None else {}
        self.stdio = stdio  # explicit stdio for the box
        # Engine mode (runc's create): the caller's stdio, no monitor (box.py `_launch`).
        self.engine = False
        self.warnings: list[str] = []  # for the caller to show: what this host ignores
        # A restart policy's state (restart_policy.py), kept as the record's extra["restart"].
        self.restart: dict[str, Any] | None = None
        # How the builder was called, for starting the box again once stopped (box.py writes
        # it to request.json, recreate.py reads it); None: built by hand, not restartable.
        self.recipe: dict[str, Any] | None = None
        # Where linux.seccomp came from, for `inspect`: "default", "config.json" or a file.
        self.seccomp_profile = "config.json"

    # ---- builders ------------------------------------------------------------------------

    @classmethod
    def from_bundle(
        cls, name: str, bundle: str | None = None, *, config: str | None = None, **options: Any
    ) -> CreateRequest:
        """A box from an OCI bundle: `config` (default BUNDLE/config.json, or ./config.json
        without a bundle), its root.path relative to the bundle."""
        from tuibox.runtime.spec import load_spec

        config_path = _config_path(bundle, config)
        return _build(
            name,
            options,
            lambda: (load_spec(config_path, _real(bundle)), None, None),
            generated=False,
            recipe={
                "kind": "bundle",
                "bundle": _real(bundle) or os.path.dirname(os.path.abspath(config_path)),
                "config": os.path.abspath(config_path),
            },
        )

    @classmethod
    def from_rootfs(
        cls,
        name: str,
        rootfs: str,
        command: list[str] | tuple[str, ...] | None = None,
        **options: Any,
    ) -> CreateRequest:
        """A box running `command` (default /bin/sh) in the directory `rootfs`, with the spec
        `tuibox spec` would write."""
        from tuibox.runtime import spec as spec_mod

        def load() -> tuple[Spec, None, None]:
            path = os.path.abspath(rootfs)
            data = spec_mod.starter_spec(list(command or ["/bin/sh"]), rootfs=path)
            return spec_mod.parse_spec(data, os.getcwd(), "generated spec"), None, None

        recipe = {"kind": "rootfs", "rootfs": os.path.abspath(rootfs)}
        return _build(name, {**options, "command": command}, load, generated=True, recipe=recipe)

    @classmethod
    def from_image(
        cls,
        name: str,
        image: str,
        command: list[str] | tuple[str, ...] | None = None,
        *,
        data_root: str | None = None,
        root: str | None = None,
        **options: Any,
    ) -> CreateRequest:
        """A box from an image of the store under `data_root` (None: TUIBOX_DATA, else
        /var/lib/tuibox; "busybox" is built on first use). `root` is the state root the box
        will be created in (its overlay lives there). The image's Env, Entrypoint, Cmd,
        WorkingDir and User apply; `command` replaces its Cmd."""
        from tuibox.runtime.images.boxspec import spec_for_image

        def load() -> tuple[Spec, str | None, tuple[str, str] | None]:
            return spec_for_image(image, list(command or ()), data_root, root)

        recipe = {"kind": "image", "image": image, "command": list(command or ())}
        return _build(name, options, load, generated=True, image_command=True, recipe=recipe)


def _config_path(bundle: str | None, config: str | None) -> str:
    if config:
        return config
    return os.path.join(bundle, "config.json") if bundle else "config.json"


def _real(bundle: str | None) -> str | None:
    return os.path.realpath(bundle) if bundle else None


def _build(
    name: str,
    options: dict[str, Any],
    load: Any,
    generated: bool,
    image_command: bool = False,
    recipe: dict[str, Any] | None = None,
) -> CreateRequest:
    from tuibox.runtime.state import check_name

    unknown = sorted(set(options) - {*OPTIONS, "command"})
    if unknown:
        raise TypeError(f"unknown request option {unknown[0]!r}")
    opt = options.get
    names: dict[str, str] = opt("names") or {}

    def shown(field: str) -> str:
        return names.get(field, field)

    name = check_name(name)
    warnings: list[str] = []
    # First: with a network this forks the netlink worker, whose import of pyroute2 then
    # overlaps with loading the spec and creating the box.
    net = network_option(
        opt("network"), opt("netconf"), list(opt("publish") or ()), shown, warnings
    )
    try:
        spec, image, overlay = load()
        spec = apply_process(spec, options, shown)
        spec = apply_limits(spec, {k: str(v) for k in LIMITS if (v := opt(k)) is not None}, names)
        from tuibox.runtime.seccomp.choice import apply_seccomp

        spec = apply_seccomp(spec, opt("seccomp"), generated, shown("seccomp"))
        command = opt("command")
        if command and not image_command:
            # (An image's spec already has the words after its Entrypoint.)
            spec = spec.replace(process=spec.process.replace(args=tuple(command)))
        warnings.extend(spec.warnings)
        if spec.unsupported:
            warnings.append("config.json: not implemented, ignored: " + ", ".join(spec.unsupported))
        detach = bool(opt("detach", True))
        req = CreateRequest(name=name, spec=spec, detach=detach, image=image, overlay=overlay)
        req.warnings = warnings
        choice = opt("seccomp")
        if choice is None:
            req.seccomp_profile = "default" if generated else "config.json"
        elif choice != "unconfined":
            req.seccomp_profile = os.path.abspath(choice)
        userns = opt("userns") or "host"
        if userns == "auto":
            from tuibox.runtime.userns import auto_spec

            req.spec = auto_spec(spec)
            req.options["userns"] = {"auto": True}  # the userns stage leases the range
        elif userns != "host":
            raise SpecError(f"{shown('userns')} {userns!r}: must be auto or host")
        socket_path = opt("console_socket")
        if socket_path:
            if not spec.process.terminal:
                raise SpecError(
                    f"{shown('console_socket')}: the box has no terminal "
                    f"(use {names.get('terminal', 'terminal=True')})"
                )
            # The console stage (runtime/console.py) connects and sends the pty master there.
            req.options["console"] = {"socket": os.path.abspath(socket_path)}
        if net is not None:
            req.options["network"] = net  # the network stage (runtime/network/stage.py)
        log_max_size = opt("log_max_size")
        if log_max_size is not None:
            from tuibox.runtime.units import parse_size

            # Read by box.py (`_plan`): the monitor's pump and the keeper cap the log at it.
            cap = parse_size(str(log_max_size), shown("log_max_size"))
            req.options["log_max_size"] = max(cap, -1)
        if opt("no_new_keyring"):
            req.options["no_new_keyring"] = True  # box.py: remembered for exec too
        req.engine = bool(opt("engine")) and detach
        if req.engine and req.spec.process.terminal and not socket_path:
            # No monitor would keep the pty: runc refuses this too.
            raise SpecError(
                f"process.terminal needs {shown('console_socket')} in engine mode (runc's create)"
            )
        if opt("no_pivot"):
            req.options["no_pivot"] = True
        pid_file = opt("pid_file")
        if pid_file:
            req.options["pid_file"] = os.path.abspath(str(pid_file))
        preserve = opt("preserve_fds")
        if preserve:
            req.options["preserve_fds"] = check_preserve_fds(preserve, shown("preserve_fds"))
        restart = opt("restart")
        if restart is not None and restart != "no":
            from tuibox.runtime.restart_policy import parse_policy

            req.restart = parse_policy(str(restart), shown("restart"))
            if not detach or req.engine:
                what = "a detached box (-d)" if not detach else "a box of tuibox's own"
                raise SpecError(
                    f"{shown('restart')} {restart!r}: needs {what}: its monitor restarts it"
                )
        if recipe is not None:
            if overlay is not None:
                recipe["data_root"] = overlay[1]  # the store the image was found in
            recipe["options"] = recorded_options(options)
            req.recipe = recipe
    except BaseException:
        if net is not None and net.get("worker") is not None:
            net["worker"].finish()
        raise
    return req


def recorded_options(options: dict[str, Any]) -> dict[str, Any]:
    """The builder's options as JSON that rebuilds the same request: env with this
    process's values for bare keys, paths absolute, a user tuple as "UID:GID"."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _NOT_RECORDED or value is None or value == [] or value is False:
            continue
        if key == "env":
            items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, dict) else value
            value = [i if "=" in i else f"{i}={os.environ.get(i, '')}" for i in items]
        elif key == "user" and isinstance(value, tuple):
            value = f"{value[0]}:{value[1]}"
        elif key in ("netconf", "console_socket") or (key == "seccomp" and value != "unconfined"):
            value = os.path.abspath(str(value))
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def check_preserve_fds(value: object, what: str = "preserve_fds") -> int:
    """N of runc's --preserve-fds: fds 3 .. 3+N-1 of this process, each open."""
    try:
        n = int(str(value))
    except ValueError:
        raise SpecError(f"{what} {value!r}: must be a number of descriptors") from None
    if n < 0:
        raise SpecError(f"{what} {value!r}: must not be negative")
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            raise SpecError(f"{what} {n}: descriptor {fd} is not open") from None
    return n


def apply_process(spec: Spec, options: dict[str, Any], shown: Any) -> Spec:
    """hostname, env, workdir, user, terminal and read_only laid over the spec."""
    opt = options.get
    process = spec.process
    given_env = opt("env") or ()
    if isinstance(given_env, dict):
        given_env = [f"{k}={v}" for k, v in given_env.items()]
    if given_env:
        env: dict[str, str] = {}
        for item in process.env:
            key, eq, value = item.partition("=")
            env[key] = value if eq else os.environ.get(key, "")
        for item in given_env:
            key, eq, value = item.partition("=")
            if not key:
                raise SpecError(f"{shown('env')} {item!r}: must be KEY=VALUE")
            env[key] = value if eq else os.environ.get(key, "")
        process = process.replace(env=tuple(f"{k}={v}" for k, v in env.items()))
    workdir = opt("workdir")
    if workdir:
        if not workdir.startswith("/"):
            raise SpecError(f"{shown('workdir')}: must be an absolute path")
        process = process.replace(cwd=workdir)
    user = opt("user")
    if user is not None and user != "":
        process = process.replace(user=parse_user(user, process.user, shown("user")))
    if opt("terminal"):
        process = process.replace(terminal=True)
    spec = spec.replace(process=process)
    if opt("hostname"):
        spec = spec.replace(hostname=opt("hostname"))
    if opt("read_only"):
        spec = spec.replace(root=spec.root.replace(readonly=True))
    return spec


def parse_user(value: str | tuple[int, int], current: User, what: str = "user") -> User:
    """'UID' or 'UID:GID' (numbers; the gid defaults to the uid), or (uid, gid)."""
    if isinstance(value, tuple):
        uid, gid = value
        text = f"{uid}:{gid}"
    else:
        text = value
        uid_s, _, gid_s = text.partition(":")
        try:
            uid = int(uid_s)
            gid = int(gid_s) if gid_s else uid
        except ValueError:
            raise SpecError(f"{what} {text!r}: must be UID or UID:GID (numbers)") from None
    if uid < 0 or gid < 0:
        raise SpecError(f"{what} {text!r}: ids must not be negative")
    return current.replace(uid=uid, gid=gid)


def apply_limits(spec: Spec, given: dict[str, str], names: dict[str, str]) -> Spec:
    """The spec with the limits laid over linux.resources, validated now (one-line errors
    before anything is created); fields this host does not apply added to unsupported."""
    from tuibox.runtime.cgroups.resources import flags_to_raw, merge_raw, parse_resources

    # Field-worded unless the caller says how to name them (the CLI: its flags).
    shown = {k: names.get(k, k) for k in LIMITS}
    flags = flags_to_raw(given, shown)
    resources = merge_raw(spec.linux.resources, flags) if flags else spec.linux.resources
    res = parse_resources(resources)
    if flags:
        spec = spec.replace(linux=spec.linux.replace(resources=resources))
    if res.unsupported:
        spec = spec.replace(unsupported=(*spec.unsupported, *res.unsupported))
    return spec


def network_option(
    name: str | None, conf: str | None, ports: list[str], shown: Any, warnings: list[str]
) -> dict[str, Any] | None:
    """What the network stage reads from req.options["network"], or None for no network:
    `conf` (a netconf.json), else the network `name`; ports alone mean the default network."""
    if conf and name not in (None, "none"):
        raise SpecError(f"use either {shown('netconf')} or {shown('network')}, not both")
    if name == "none":
        if ports:
            raise SpecError(f"{shown('publish')} needs a network (not {shown('network')} none)")
        return None
    if conf is None and name is None and not ports:
        return None
    worker = _early_worker()
    try:
        if conf is not None:
            from tuibox.runtime.network.netconf import load_netconf

            # Parsed now: a bad file is reported before anything is created.
            parsed = load_netconf(os.path.abspath(conf))
            if parsed.unsupported:
                warnings.append(
                    f"{conf}: not implemented, ignored: {', '.join(parsed.unsupported)}"
                )
            return {"netconf": parsed, "ports": ports, "worker": worker}
        from tuibox.runtime.network.netconf import parse_ports

        parse_ports(ports)  # one-line errors before anything exists
    except BaseException:
        if worker is not None:
            worker.finish()
        raise
    return {"name": name or "default", "ports": ports, "worker": worker}


def _early_worker() -> Any:
    """The netlink worker, forked now when this process is single-threaded (the CLI); else
    None: the network stage forks it at create, which a threaded caller may not call anyway."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return None
    from tuibox.runtime.network.helper import Helper

    return Helper.start()
