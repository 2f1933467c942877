"""Host escapes, performed for real from inside boxes (issue 10): a cwd through a leaked
descriptor, our own processes inspected through /proc while they enter a box, the operator's
session keyring, and mount targets swapped for symlinks while a box is set up.

Each test does what an attacker would and fails if it works; each was seen failing against
the runtime before these defences (see the commit that added this file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TB, mountinfo, unique
from tests.integration.actions_helpers import assert_no_cgroup, cgpath
from tests.integration.test_image_boxes import OCI_CONFIG, make_oci_layout

pytestmark = pytest.mark.root

SECRET = "TUIBOX_TEST_SECRET"


def host_marker(tmp_path: Path) -> tuple[Path, Path]:
    """(a host file the box must not read, a host path it must not create)."""
    marker = tmp_path / "host-secret"
    marker.write_text("host-only-content\n")
    return marker, tmp_path / "written-from-a-box"


def escape_script(marker: Path, written: Path) -> str:
    # Climb as far as `..` goes, then use paths relative to the cwd: absolute paths would be
    # resolved in the box's root, relative ones from wherever the cwd really is.
    return (
        "cd ../../../../../../../../../../../.. 2>/dev/null; "
        f"cat .{marker} 2>/dev/null; echo pwned > .{written} 2>/dev/null; pwd; true"
    )


# ---- 1. a cwd of /proc/self/fd/N -------------------------------------------------------------


@pytest.mark.parametrize("fd", range(3, 11))
def test_cwd_through_a_descriptor_of_the_init_stays_in_the_box(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path, fd: int
) -> None:
    marker, written = host_marker(tmp_path)
    bundle = make_bundle(
        args=["/bin/sh", "-c", escape_script(marker, written)],
        process={"cwd": f"/proc/self/fd/{fd}"},
    )
    name = unique("cwd")
    proc = tb("run", "--bundle", str(bundle), name, check=False)
    assert "host-only-content" not in proc.stdout, proc.stdout
    assert not written.exists()
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tuibox: error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"/proc/self/fd/{fd}" in errors[0]
    assert tb.names() == []
    assert_no_cgroup(cgpath(tb, name))


def test_exec_workdir_and_process_file_through_a_descriptor(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    marker, written = host_marker(tmp_path)
    name = unique("cwdx")
    tb("run", "-d", "--bundle", str(make_bundle(args=["sleep", "600"])), name)
    script = escape_script(marker, written)
    for fd in range(3, 9):
        proc = tb("exec", "-w", f"/proc/self/fd/{fd}", name, "sh", "-c", script, check=False)
        assert "host-only-content" not in proc.stdout and "Traceback" not in proc.stderr
        process = {
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": f"/proc/self/fd/{fd}",
            "user": {"uid": 0, "gid": 0},
        }
        pfile = tmp_path / f"process-{fd}.json"
        pfile.write_text(json.dumps(process))
        proc = tb("exec", "--process", str(pfile), name, check=False)
        assert "host-only-content" not in proc.stdout and "Traceback" not in proc.stderr
    assert not written.exists()


def test_image_working_dir_through_a_descriptor(tb: TB, tmp_path: Path) -> None:
    marker, written = host_marker(tmp_path)
    config = json.loads(json.dumps(OCI_CONFIG))
    config["config"].update(
        Cmd=["sh", "-c", escape_script(marker, written)], User="", WorkingDir="/proc/self/fd/3"
    )
    make_oci_layout(tmp_path / "layout", tmp_path, config)
    tb("image", "import", str(tmp_path / "layout"), "evilcwd")
    for _ in range(2):
        proc = tb("run", "--image", "evilcwd", unique("img"), check=False)
        assert "host-only-content" not in proc.stdout, proc.stdout
        assert "Traceback" not in proc.stderr
    assert not written.exists()
    assert tb.names() == []


def test_non_root_user_and_a_box_without_proc_still_start(
    tb: TB, make_bundle: Callable[..., Path], busybox_rootfs: Path
) -> None:
    # The init waits for `start` on a descriptor it opened as root before pivot_root: no
    # reopen through /proc, so neither the user nor a missing /proc changes anything.
    user = make_bundle(args=["id", "-u"], process={"user": {"uid": 1000, "gid": 1000}})
    assert tb("run", "--bundle", str(user), unique("u")).stdout == "1000\n"
    no_proc = make_bundle(
        args=["sh", "-c", "ls /proc | wc -l"],
        mounts=[{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
        linux={"namespaces": [{"type": "pid"}, {"type": "mount"}], "maskedPaths": []},
    )
    name = unique("np")
    tb("create", "--bundle", str(no_proc), name)
    assert tb.state(name)["status"] == "created"
    tb("start", name)
    tb("wait", name, check=False)
    assert tb("logs", name).stdout == "0\n"


# ---- 2. our processes seen through /proc from inside the box --------------------------------

# A busy loop in the box: whenever it finds a process whose comm is python (ours, before its
# execve), it tries what an attacker would and writes what worked to /tmp/hits.
SCANNER = r"""
while [ ! -e /tmp/stop ]; do
  for d in /proc/[0-9]*; do
    case "$(cat $d/comm 2>/dev/null)" in
      python*)
        echo "$d" >> /tmp/seen
        hit() { echo "$1 $d" >> /tmp/hits; }
        tr '\0' '\n' < $d/environ 2>/dev/null | grep -q SECRET_NAME && hit environ
        tr '\0' '\n' < $d/cmdline 2>/dev/null | grep -q -- --data-root && hit cmdline
        case "$(readlink $d/exe 2>/dev/null)" in *python*) hit exe;; esac
        fds="$(ls -l $d/fd/ 2>/dev/null | tr '\n' ' ')"
        # only if it is still ours: after its execve the box program's own pipes show there
        case "$(cat $d/comm 2>/dev/null)" in python*) ;; *) fds="";; esac
        case "$fds" in *pipe:*|*socket:*|*mnt:*|*pytest-of*) hit "fd $fds";; esac
        ;;
    esac
  done
done
""".replace("SECRET_NAME", SECRET)


@pytest.fixture
def scanner_box(tb: TB, make_bundle: Callable[..., Path]) -> Iterator[str]:
    name = unique("scan")
    tb("run", "-d", "--bundle", str(make_bundle(args=["sh", "-c", SCANNER])), name)
    yield name
    tb("exec", name, "touch", "/tmp/stop", check=False)


def _read_box_file(tb: TB, name: str, path: str) -> str:
    return tb("exec", name, "sh", "-c", f"cat {path} 2>/dev/null; true").stdout


def _env_with_secret() -> dict[str, str]:
    return dict(os.environ, **{SECRET: "hunter2-" + unique("s")})


def test_exec_children_cannot_be_inspected_from_the_box(tb: TB, scanner_box: str) -> None:
    env = _env_with_secret()
    for _ in range(100):
        subprocess.run(
            tb.argv("exec", "-d", scanner_box, "/bin/true"),
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    hits = _read_box_file(tb, scanner_box, "/tmp/hits")
    seen = _read_box_file(tb, scanner_box, "/tmp/seen").split()
    assert hits == "", hits
    # The race must have been run for real: the scanner saw our children before their execve.
    assert seen, "the scanner never saw an exec child: the test proved nothing"


def test_a_box_joining_a_pid_namespace_cannot_be_inspected_by_its_owner(
    tb: TB, scanner_box: str, make_bundle: Callable[..., Path]
) -> None:
    init_a = tb.state(scanner_box)["pid"]
    ns = [{"type": "pid", "path": f"/proc/{init_a}/ns/pid"}, {"type": "mount"}, {"type": "ipc"}]
    env = _env_with_secret()
    for _ in range(5):
        name = unique("join")
        bundle = make_bundle(args=["true"], linux={"namespaces": ns})
        subprocess.run(
            tb.argv("create", "--bundle", str(bundle), name),
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        time.sleep(0.5)  # created: its init waits for `start`, in box A's PID namespace
        tb("destroy", "--force", name)
    hits = _read_box_file(tb, scanner_box, "/tmp/hits")
    seen = _read_box_file(tb, scanner_box, "/tmp/seen").split()
    assert hits == "", hits
    assert seen, "box A never saw box B's init: the test proved nothing"


# ---- 3. session keyrings ----------------------------------------------------------------------

# Runs tuibox with a private session keyring holding one possessor-only key, so the host's
# own keyrings are untouched and the key is visible only to processes that possess it.
KEYRING_WRAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
KEYCTL = 250
if libc.syscall(KEYCTL, 1, None) < 0:  # KEYCTL_JOIN_SESSION_KEYRING, anonymous
    sys.exit("join: " + os.strerror(ctypes.get_errno()))
# add_key("user", name, payload, 7, KEY_SPEC_SESSION_KEYRING)
key = libc.syscall(248, b"user", sys.argv[1].encode(), b"payload", 7, ctypes.c_int(-3))
if key < 0:
    sys.exit("add_key: " + os.strerror(ctypes.get_errno()))
if libc.syscall(KEYCTL, 5, ctypes.c_long(key), ctypes.c_uint(0x3F000000)) < 0:  # SETPERM
    sys.exit("setperm: " + os.strerror(ctypes.get_errno()))
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def _run_with_key(tb: TB, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KEYRING_WRAPPER, key, *tb.argv(*args)[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_boxes_get_a_session_keyring_of_their_own(tb: TB, make_bundle: Callable[..., Path]) -> None:
    key = unique("tuibox-key")
    # /proc/keys is masked by default: this bundle leaves it visible to look.
    bundle = make_bundle(args=["cat", "/proc/keys"], linux={"maskedPaths": []})
    own = _run_with_key(tb, key, "run", "--bundle", str(bundle), unique("k"))
    assert own.returncode == 0, own.stderr
    assert key not in own.stdout
    shared = _run_with_key(tb, key, "run", "--no-new-keyring", "--bundle", str(bundle), unique("k"))
    assert shared.returncode == 0, shared.stderr
    assert key in shared.stdout  # the check above can fail: the key is visible when shared
    # exec follows the box's choice
    for opt, visible in (((), False), (("--no-new-keyring",), True)):
        name = unique("kx")
        sleeper = make_bundle(args=["sleep", "600"], linux={"maskedPaths": []})
        started = _run_with_key(tb, key, "run", "-d", *opt, "--bundle", str(sleeper), name)
        assert started.returncode == 0, started.stderr
        out = _run_with_key(tb, key, "exec", name, "cat", "/proc/keys")
        assert out.returncode == 0, out.stderr
        assert (key in out.stdout) is visible, out.stdout
        tb("destroy", "--force", name)


# ---- 4. mount targets ---------------------------------------------------------------------------


@pytest.fixture
def private_rootfs(tmp_path: Path, busybox_rootfs: Path) -> Path:
    root = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    return root


def test_a_mount_destination_symlinked_to_the_host_stays_in_the_box(
    tb: TB, make_bundle: Callable[..., Path], private_rootfs: Path, tmp_path: Path
) -> None:
    host = tmp_path / "host-target"
    host.mkdir()
    (host / "file").write_text("host\n")
    (private_rootfs / "mnt/evil").symlink_to(host)
    host2 = tmp_path / "host-target2"
    host2.mkdir()
    (private_rootfs / "mnt/evil-rel").symlink_to("../../../../../../../.." + str(host2))
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/mnt/evil", "type": "tmpfs", "source": "evil-tmpfs"},
        {"destination": "/mnt/evil-rel/sub", "type": "tmpfs", "source": "evil-tmpfs2"},
    ]
    bundle = make_bundle(
        args=["sh", "-c", "grep -c evil-tmpfs /proc/self/mountinfo"],
        root={"path": str(private_rootfs)},
        mounts=mounts,
    )
    before = mountinfo()
    assert tb("run", "--bundle", str(bundle), unique("sym")).stdout == "2\n"
    assert mountinfo() == before
    assert sorted(os.listdir(host)) == ["file"] and (host / "file").read_text() == "host\n"
    assert os.listdir(host2) == []
    # both landed inside the rootfs, where the symlinks point when read inside it
    assert (private_rootfs / str(host).lstrip("/")).is_dir()
    assert (private_rootfs / str(host2).lstrip("/") / "sub").is_dir()


FLIPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mnt, host, stop = sys.argv[1:4]
a, spare = (mnt + "/a").encode(), (mnt + "/spare").encode()
os.mkdir(a)
os.symlink(host, spare)
# /mnt/a swaps between a real directory and a symlink to the host, atomically each time
while not os.path.exists(stop):
    for _ in range(200):
        if libc.renameat2(-100, a, -100, spare, 2) != 0:  # RENAME_EXCHANGE
            sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
"""


def test_mount_targets_raced_with_symlinks_never_reach_the_host(
    tb: TB, make_bundle: Callable[..., Path], private_rootfs: Path, tmp_path: Path
) -> None:
    host = tmp_path / "host-target"
    host.mkdir()
    (host / "file").write_text("host\n")
    stop = tmp_path / "stop"
    mnt = private_rootfs / "mnt"
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/mnt/a/b/c", "type": "tmpfs", "source": "raced-tmpfs"},
        {"destination": "/mnt/a/f", "type": "bind", "source": str(tmp_path / "src"),
         "options": ["bind"]},
    ]  # fmt: skip
    (tmp_path / "src").write_text("bound\n")
    bundle = make_bundle(
        args=["sh", "-c", "grep -c raced-tmpfs /proc/self/mountinfo"],
        root={"path": str(private_rootfs)},
        mounts=mounts,
    )
    before = mountinfo()
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(mnt), str(host), str(stop)])
    ok = 0
    try:
        for _ in range(30):
            proc = tb("run", "--bundle", str(bundle), unique("race"), check=False)
            assert "Traceback" not in proc.stderr, proc.stderr
            if proc.returncode == 0:
                assert proc.stdout == "1\n", proc.stdout  # the tmpfs is in the box
                ok += 1
            assert mountinfo() == before
            assert sorted(os.listdir(host)) == ["file"], os.listdir(host)
            assert (host / "file").read_text() == "host\n"
    finally:
        stop.touch()
        flipper.wait(10)
    assert ok, "no box could be created while racing: the test proved nothing"


def test_a_cwd_outside_the_root_is_refused_after_chdir(tmp_path: Path) -> None:
    # The last line of defence, on its own: a process whose cwd is outside its root (what a
    # leaked directory fd gives) is stopped by the getcwd check, not run there.
    from tuibox.runtime.linux.paths import enter_cwd

    root = tmp_path / "root"
    root.mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.chdir(tmp_path)
            os.chroot(root)  # the cwd stays outside, as with a leaked fd
            enter_cwd(".")
            os.write(w, b"entered")
        except OSError as e:
            os.write(w, str(e).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        assert f.read() == "[Errno 20] .: not a directory inside the box"


def test_mount_options_still_apply_through_descriptors(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    # Remount flags and propagation go onto the new mount (a fresh descriptor of it), not the
    # directory beneath; a file bind lands on a file.
    src = tmp_path / "vol"
    src.mkdir()
    (tmp_path / "one-file").write_text("file-content\n")
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/vol", "type": "bind", "source": str(src),
         "options": ["rbind", "ro", "nosuid", "runbindable"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "noexec", "size=1m"]},
        {"destination": "/etc/one-file", "type": "bind", "source": str(tmp_path / "one-file"),
         "options": ["bind", "ro"]},
    ]  # fmt: skip
    script = (
        "grep -E ' /(vol|scratch|etc/one-file) ' /proc/self/mountinfo; cat /etc/one-file; "
        "touch /vol/x 2>/dev/null || echo vol-ro"
    )
    out = tb("run", "--bundle", str(make_bundle(args=["sh", "-c", script], mounts=mounts)),
             unique("opts")).stdout  # fmt: skip
    lines = {ln.split()[4]: ln for ln in out.splitlines() if ln.count(" ") > 5}
    assert lines["/vol"].split()[5].startswith("ro,nosuid") and "unbindable" in lines["/vol"]
    assert "nosuid" in lines["/scratch"] and "noexec" in lines["/scratch"]
    assert lines["/etc/one-file"].split()[5].startswith("ro")
    assert "file-content" in out and "vol-ro" in out
    assert os.listdir(src) == []


def test_a_mount_of_the_wrong_kind_is_one_line_and_leaves_nothing(
    tb: TB, make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    # The target's type is checked on the descriptor: a file cannot go onto a directory.
    (tmp_path / "a-file").write_text("x\n")
    mounts = [{"destination": "/etc", "type": "bind", "source": str(tmp_path / "a-file"),
               "options": ["bind"]}]  # fmt: skip
    name = unique("kind")
    err = tb.fails("run", "--bundle", str(make_bundle(mounts=mounts)), name)
    assert "mount /etc: is a directory" in err
    assert tb.names() == []
    assert_no_cgroup(cgpath(tb, name))
