"""The user-namespace Stage: a box whose root is an unprivileged host uid.

Loaded only for boxes with a user namespace (`linux.namespaces` type user, or `--userns auto`).

Creation order with a new user namespace (docs/ARCHITECTURE.md):

1. prepare (CLI): with `--userns auto`, lease a private range of 65536 ids and write it into
   the spec's mappings; make a probe user namespace with those maps (the kernel checks them
   here, before anything runs); for an image box, build the root as a detached overlay whose
   lower layer is an idmapped mount of the image (files owned by 0 appear owned by the box's
   root), and for a bundle with `--userns auto` an idmapped copy of the bundle's root tree.
2. fork: `clone(CLONE_NEWUSER | CLONE_NEWPID)`; the child is pid 1 of a pid namespace its
   user namespace owns, and still our child. We write its uid_map and gid_map and send `ok`
   (or the kernel's refusal, which the child reports as its own error).
3. init: waits for `ok`, becomes root of the user namespace (setresgid/setresuid 0), then
   unshares mount, uts, ipc, network, cgroup: all owned by the new user namespace, so /proc,
   sysfs and mqueue mount. Its `rootfs` step attaches the detached root (move_mount).

A user namespace joined by path is entered first of all (setns) by the init; a new pid
namespace cannot then be owned by it, so that combination is refused.
"""

from __future__ import annotations

import errno
import fcntl
import os

from tuibox.runtime.errors import SpecError, TuiboxError
from tuibox.runtime.linux import syscalls as sc
from tuibox.runtime.linux import userns as kernel
from tuibox.runtime.spec_model import IdMapping, Namespace
from tuibox.runtime.stages.base import SetupContext, Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.box import Runtime
    from tuibox.runtime.process.init import InitPlan
    from tuibox.runtime.request import CreateRequest
    from tuibox.runtime.spec_model import Mount, Spec
    from tuibox.runtime.state import BoxRecord

# ---- id ranges for --userns auto ---------------------------------------------------------------

BLOCK = 65536  # ids per box, as podman's --userns auto gives by default
# Without /etc/subuid and /etc/subgid entries for root: 2^31 .. 2^31 + 2^30, 16384 boxes.
# Far above any uid a distribution hands out, and below (uid_t)-1.
FALLBACK_START = 2**31
FALLBACK_BLOCKS = 2**14
LEASE_DIR = ".userns"  # under the state root; dot-named, so never taken for a box


def subordinate_blocks(text: str, names: tuple[str, ...] = ("root", "0")) -> list[int]:
    """Starts of whole BLOCK-sized ranges that /etc/subuid (or subgid) gives to root."""
    starts: list[int] = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        try:
            first, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if first < 1 or count < BLOCK or first + count > 2**32 - 1:
            continue
        starts.extend(range(first, first + count - BLOCK + 1, BLOCK))
    # Overlapping lines in the file must not yield overlapping blocks.
    out: list[int] = []
    for start in sorted(set(starts)):
        if not out or start >= out[-1] + BLOCK:
            out.append(start)
    return out


def pools(subuid: str | None, subgid: str | None) -> tuple[list[int], list[int]]:
    """(uid block starts, gid block starts): root's subordinate ids, else the fixed range."""
    uids = subordinate_blocks(subuid) if subuid else []
    gids = subordinate_blocks(subgid) if subgid else []
    if not uids or not gids:
        fixed = [FALLBACK_START + i * BLOCK for i in range(FALLBACK_BLOCKS)]
        return fixed, list(fixed)
    return uids, gids


def pick(uids: list[int], gids: list[int], taken: list[tuple[int, int]]) -> tuple[int, int]:
    """The first (uid start, gid start) pair that no lease holds."""
    used_u = {u for u, _ in taken}
    used_g = {g for _, g in taken}
    for u, g in zip(uids, gids, strict=False):
        if u not in used_u and g not in used_g:
            return u, g
    raise TuiboxError(f"--userns auto: all {min(len(uids), len(gids))} id ranges are in use")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _lease_path(root: str, name: str) -> str:
    return os.path.join(root, LEASE_DIR, f"{name}.lease")


def lease(root: str, name: str) -> tuple[int, int]:
    """Lease a range for box `name` (its state dir must exist already); crash-safe enough:
    a lease whose box dir is gone is reclaimed here. A box started again keeps its own
    (recreate.py): its writable layer's files are owned by those ids."""
    d = os.path.join(root, LEASE_DIR)
    os.makedirs(d, 0o700, exist_ok=True)
    lock = os.open(os.path.join(d, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        own = (_read(_lease_path(root, name)) or "").split()
        if len(own) == 2 and own[0].isdigit() and own[1].isdigit():
            return int(own[0]), int(own[1])
        taken: list[tuple[int, int]] = []
        for entry in os.listdir(d):
            if not entry.endswith(".lease"):
                continue
            owner = entry[: -len(".lease")]
            path = os.path.join(d, entry)
            if not os.path.isdir(os.path.join(root, owner)):
                _unlink(path)  # its box is gone (a crash between create and destroy)
                continue
            words = (_read(path) or "").split()
            if len(words) == 2 and words[0].isdigit() and words[1].isdigit():
                taken.append((int(words[0]), int(words[1])))
        uids, gids = pools(_read("/etc/subuid"), _read("/etc/subgid"))
        uid, gid = pick(uids, gids, taken)
        fd = os.open(
            _lease_path(root, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, f"{uid} {gid}\n".encode())
        finally:
            os.close(fd)
        return uid, gid
    finally:
        os.close(lock)


def release(root: str, name: str) -> None:
    _unlink(_lease_path(root, name))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---- what the init needs -----------------------------------------------------------------------


def _maps(maps: tuple[IdMapping, ...]) -> tuple[tuple[int, int, int], ...]:
    return tuple((m.container_id, m.host_id, m.size) for m in maps)


def to_host(maps: tuple[tuple[int, int, int], ...], inside: int) -> int | None:
    for first, outside, size in maps:
        if first <= inside < first + size:
            return outside + inside - first
    return None


_FD_PREFIX = "/proc/self/fd/"


class UsernsSetup:
    """Carried in InitPlan.userns: used by process/monitor.spawn_init (parent) and the init's steps.

    The init works as the box's root, a host uid that may not search the state root (0700)
    or the bundle's parents. So the parent hands it fds, never host paths: the box's root
    as a detached mount, the directory to attach it on, and the files bound into /etc."""

    def __init__(
        self,
        uid_maps: tuple[tuple[int, int, int], ...],
        gid_maps: tuple[tuple[int, int, int], ...],
        join_fd: int | None,
    ) -> None:
        self.uid_maps = uid_maps
        self.gid_maps = gid_maps
        self.join_fd = join_fd  # a user namespace joined by path; None: a new one
        self.go_r, self.go_w = (-1, -1) if join_fd is not None else os.pipe2(os.O_CLOEXEC)
        self.root_fd: int | None = None  # the box's root, a detached mount
        self.target_fd: int | None = None  # O_PATH of the directory it is attached on
        self.file_fds: list[int] = []  # O_PATH of the /etc files, opened at fork time

    def fds(self) -> set[int]:
        fds = {self.go_r, self.go_w, self.join_fd, self.root_fd, self.target_fd, *self.file_fds}
        return {fd for fd in fds if fd is not None and fd >= 0}

    def close(self) -> None:
        for fd in self.fds():
            try:
                os.close(fd)
            except OSError:
                pass
        self.go_r = self.go_w = -1
        self.join_fd = self.root_fd = self.target_fd = None
        self.file_fds = []

    # parent side (the CLI, or the detached box's monitor)

    def fork(self, plan: InitPlan, pid_flags: int) -> int:
        # Every stage has added its /etc files by now (the network stage its resolv.conf).
        for dest, source in list(plan.etc_files.items()):
            fd = kernel.clone_tree(source, recursive=False)
            self.file_fds.append(fd)
            plan.keep_fds.add(fd)
            plan.etc_files[dest] = f"{_FD_PREFIX}{fd}"
        if self.join_fd is not None:
            return os.fork()
        from tuibox.runtime.process import warmer

        # A raw clone runs none of os.fork's hooks: no warmer thread may run across it.
        warmer.before_fork()
        pid = kernel.clone(sc.CLONE_NEWUSER | pid_flags)
        if pid != 0:
            warmer.after_fork()
        return pid

    def after_fork(self, pid: int) -> None:
        for fd in self.file_fds:
            os.close(fd)
        self.file_fds = []
        if self.join_fd is not None:
            return
        try:
            kernel.write_maps(pid, kernel.map_text(self.uid_maps), kernel.map_text(self.gid_maps))
            msg = b"ok"
        except OSError as e:
            msg = str(e.strerror or e).encode()[:512]
        try:
            os.write(self.go_w, msg)
        except OSError:
            pass  # the child died already; its parent learns that from the channel

    # child side (the init, before any other namespace)

    def enter(self) -> None:
        if self.target_fd is not None:
            # The mount namespace we unshare next carries our cwd over into its copy of the
            # mounts: that is where the root gets attached, with no path walked.
            os.fchdir(self.target_fd)
            os.close(self.target_fd)
            self.target_fd = None
        if self.join_fd is not None:
            try:
                sc.setns(self.join_fd, sc.CLONE_NEWUSER)
            except OSError as e:
                raise OSError(e.errno, f"join user namespace: {e.strerror}") from None
        else:
            os.close(self.go_w)
            msg = os.read(self.go_r, 1024)
            os.close(self.go_r)
            if msg != b"ok":
                raise OSError(errno.EINVAL, msg.decode(errors="replace") or "no id maps")
        # Root of the namespace, when it has one: files it makes (mount points, devices)
        # are then the box root's, and the box's own user is set by the `user` step.
        if to_host(self.gid_maps, 0) is not None or self.join_fd is not None:
            os.setresgid(0, 0, 0)
        if to_host(self.uid_maps, 0) is not None or self.join_fd is not None:
            os.setresuid(0, 0, 0)

    def attach_root(self, plan: InitPlan) -> bool:
        """Attach the box's root on our cwd; from here on the init reaches it as
        /proc/self/fd/N, the root of that mount (a magic link: no host directory on the way
        is searched)."""
        if self.root_fd is None:
            return False
        kernel.attach(self.root_fd, ".")
        plan.rootfs = f"{_FD_PREFIX}{self.root_fd}"
        return True

    def attach_file(self, source: str, target_fd: int) -> bool:
        """Attach an /etc file that fork() made a detached mount of onto `target_fd` (an
        O_PATH descriptor opened inside the root)."""
        if not source.startswith(_FD_PREFIX):
            return False
        fd = int(source[len(_FD_PREFIX) :])
        kernel.attach(fd, "", target_fd)
        os.close(fd)
        return True


# ---- the stage ---------------------------------------------------------------------------------


def _wanted(req: CreateRequest) -> bool:
    return "userns" in req.options


def auto_spec(spec: Spec) -> Spec:
    """`--userns auto`: a new user namespace; its mappings come from the lease at create."""
    if spec.namespace("user") is not None:
        raise SpecError("--userns auto: the config already has a user namespace")
    linux = spec.linux.replace(namespaces=(*spec.linux.namespaces, Namespace("user")))
    return spec.replace(linux=linux)


def _devpts_gid(spec: Spec, gid_maps: tuple[tuple[int, int, int], ...]) -> Spec:
    # devpts refuses gid=N when N has no mapping; drop the option then (as runc does).
    changed: list[Mount] = []
    for m in spec.mounts:
        gids = [o for o in m.options if o.startswith("gid=")]
        if m.type == "devpts" and gids:
            try:
                unmapped = to_host(gid_maps, int(gids[0][4:])) is None
            except ValueError:
                unmapped = False
            if unmapped:
                m = m.replace(options=tuple(o for o in m.options if not o.startswith("gid=")))
        changed.append(m)
    return spec.replace(mounts=tuple(changed))


def _prepare(ctx: SetupContext) -> None:
    req, plan = ctx.request, ctx.plan
    spec = req.spec
    auto = bool((req.options.get("userns") or {}).get("auto"))
    user = spec.namespace("user")
    if user is None:
        return
    pid_ns = spec.namespace("pid")
    if user.path is not None:
        if pid_ns is not None and pid_ns.path is None:
            raise SpecError(
                "config.json: linux.namespaces: a joined user namespace cannot own a new "
                "pid namespace; join the pid namespace too (give it a path)"
            )
        setup = UsernsSetup((), (), os.open(user.path, os.O_RDONLY | os.O_CLOEXEC))
        _register(ctx, setup)
        ctx.record.extra["userns"] = {"path": user.path}
        _detached_root(ctx, setup, None, False)
        return
    if auto:
        uid, gid = lease(ctx.runtime.root.path, req.name)
        ctx.undo.callback(release, ctx.runtime.root.path, req.name)
        linux = spec.linux.replace(
            uid_mappings=(IdMapping(0, uid, BLOCK),), gid_mappings=(IdMapping(0, gid, BLOCK),)
        )
        spec = spec.replace(linux=linux)
    uid_maps, gid_maps = _maps(spec.linux.uid_mappings), _maps(spec.linux.gid_mappings)
    spec = _devpts_gid(spec, gid_maps)
    req.spec = plan.spec = spec
    setup = UsernsSetup(uid_maps, gid_maps, None)
    _register(ctx, setup)
    ctx.record.extra["userns"] = {
        "uidMappings": [list(m) for m in uid_maps],
        "gidMappings": [list(m) for m in gid_maps],
        "auto": auto,
    }
    try:
        probe = kernel.probe_userns(kernel.map_text(uid_maps), kernel.map_text(gid_maps))
    except OSError as e:
        raise SpecError(f"config.json: {e.strerror}") from None
    try:
        _detached_root(ctx, setup, probe, auto)
    finally:
        os.close(probe)


def _register(ctx: SetupContext, setup: UsernsSetup) -> None:
    ctx.plan.userns = setup
    ctx.undo.callback(setup.close)


def _detached_root(ctx: SetupContext, setup: UsernsSetup, probe: int | None, auto: bool) -> None:
    """The box's root as a detached mount; idmapped (files owned by 0 appear owned by the
    box's root) for an image and for --userns auto."""
    plan, d = ctx.plan, ctx.box_dir
    root_uid = to_host(setup.uid_maps, 0)
    root_gid = to_host(setup.gid_maps, 0)
    if plan.overlay is not None:
        # A layered image's lowerdir names several layers, top first.
        lowers = str(ctx.record.extra["image_rootfs"]).split(":")
        layer = str(ctx.record.extra.get("layer", d))
        lower_fds: list[int] = []
        try:
            if probe is not None:
                for lower in lowers:
                    try:
                        lower_fds.append(kernel.idmapped_tree(lower, probe, recursive=False))
                    except OSError as e:
                        raise TuiboxError(
                            f"--userns: this kernel or file system cannot give {lower} an "
                            f"idmapped mount ({e.strerror}); run the box without --userns"
                        ) from None
            if root_uid is not None and root_gid is not None:
                # The upper dir's owner is the owner of the box's "/".
                os.chown(os.path.join(layer, "upper"), root_uid, root_gid)
            setup.root_fd = kernel.overlay_mount(
                [f"/proc/self/fd/{fd}" for fd in lower_fds] if lower_fds else lowers,
                os.path.join(layer, "upper"),
                os.path.join(layer, "work"),
            )
        finally:
            for fd in lower_fds:
                os.close(fd)
        plan.overlay = None  # attached by the init's rootfs step instead
    elif auto and probe is not None:
        try:
            setup.root_fd = kernel.idmapped_tree(plan.rootfs, probe, recursive=True)
        except OSError as e:
            raise TuiboxError(
                f"--userns auto: cannot give the bundle's root {plan.rootfs} an idmapped "
                f"mount ({e.strerror}); give the config uid/gid mappings and a rootfs "
                "owned by the mapped ids instead"
            ) from None
    else:
        setup.root_fd = kernel.clone_tree(plan.rootfs)
    setup.target_fd = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    plan.keep_fds.update(setup.fds())


def _attach(ctx: SetupContext) -> None:
    # The init has its copies; ours are no longer needed.
    if ctx.plan.userns is not None:
        ctx.plan.userns.close()


def _teardown(runtime: Runtime, record: BoxRecord, box_dir: str) -> None:
    if (record.extra.get("userns") or {}).get("auto"):
        release(runtime.root.path, record.id)


def check_namespace_paths(spec: Spec) -> None:
    """Refuse a namespace path that is not a namespace of its entry's type."""
    for ns in spec.linux.namespaces:
        if ns.path is None or ns.type not in sc.NAMESPACE_FLAGS:
            continue
        try:
            kernel.check_namespace_path(ns.type, ns.path)
        except OSError as e:
            raise SpecError(f"config.json: linux.namespaces: {e.strerror}") from None


STAGE = Stage("userns", _wanted, _prepare, _attach, _teardown)
