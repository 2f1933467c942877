"""User namespaces on the real kernel: mapped ids, what the box's root can no longer do,
--userns auto's private ranges and idmapped roots, and bad input leaving nothing behind.

The box's root is a host uid here. The state root and the rootfs sit in a 0700 directory it
cannot search (the init gets them as fds); bind sources from a config are opened by path, so
the secret file sits in a 0711 directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, mountinfo, tb_at, unique
from tests.integration.test_network import Net, net  # noqa: F401 - the fixture
from tuibox.runtime.defaults import MOUNTS

pytestmark = pytest.mark.root

SHIFT = 100000
MAP = [{"containerID": 0, "hostID": SHIFT, "size": 65536}]


@pytest.fixture
def base() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tuibox-userns-", dir="/tmp"))
    d.chmod(0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def private(base: Path) -> Path:
    d = base / "private"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def tb(base: Path, private: Path) -> Iterator[TB]:
    """conftest's tb, with its roots where the boxes' mapped roots cannot search."""
    with tb_at(private / "state", private / "data", base) as t:
        yield t
    assert leases(t) == [], "id range leases left behind"


def leases(t: TB) -> list[str]:
    d = t.root / ".userns"
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".lease")) if d.is_dir() else []


@pytest.fixture
def shifted_rootfs(private: Path, busybox_rootfs: Path) -> Path:
    """A copy of the busybox rootfs owned by the mapped ids (+100000)."""
    dest = private / "rootfs"
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            st = os.lstat(name)
            os.lchown(name, st.st_uid + SHIFT, st.st_gid + SHIFT)
    return dest


@pytest.fixture
def secret(base: Path) -> Path:
    path = base / "secret"
    path.write_text("host root only\n")
    path.chmod(0o600)
    return path


def bundle(base: Path, rootfs: Path, args: list[str], **linux: Any) -> Path:
    b = base / unique("bundle")
    b.mkdir()
    b.chmod(0o711)
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs)},
        "process": {
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
        },
        "linux": {"namespaces": namespaces, **linux},
    }
    (b / "config.json").write_text(json.dumps(config))
    return b


def userns_bundle(base: Path, rootfs: Path, args: list[str], **extra: Any) -> Path:
    b = bundle(base, rootfs, args, uidMappings=MAP, gidMappings=MAP)
    config = json.loads((b / "config.json").read_text())
    config["linux"]["namespaces"].append({"type": "user"})
    config.update(extra)
    (b / "config.json").write_text(json.dumps(config))
    return b


def status_ids(pid: int) -> tuple[int, int]:
    lines = dict(
        ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in ln
    )
    return int(lines["Uid"].split()[0]), int(lines["Gid"].split()[0])


def record(t: TB, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((t.root / name / "state.json").read_text())
    return data


def cgroup_dirs(t: TB, name: str) -> list[str]:
    dirs = record(t, name)["extra"]["cgroup_dirs"]
    return [*dirs["v1"].values(), *([dirs["unified"]] if dirs.get("unified") else [])]


# ---- a bundle with mappings ------------------------------------------------------------------


def test_mapped_root_sees_its_maps_and_cannot_read_host_root_files(
    tb: TB, base: Path, shifted_rootfs: Path, secret: Path
) -> None:
    script = "cat /proc/self/uid_map /proc/self/gid_map; id; cat /secret; echo rc=$?"
    mounts = [
        *(
            {"destination": m.destination, "type": m.type, "source": m.source, "options": m.options}
            for m in MOUNTS
        ),
        {"destination": "/secret", "type": "bind", "source": str(secret), "options": ["bind"]},
    ]
    b = userns_bundle(base, shifted_rootfs, ["sh", "-c", script], mounts=mounts)
    out = tb("run", "--bundle", str(b), unique("u")).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["0", str(SHIFT), "65536"]
    assert lines[1].split() == ["0", str(SHIFT), "65536"]
    assert lines[2].startswith("uid=0(root) gid=0(root)")
    assert "host root only" not in out and out.rstrip().endswith("rc=1"), out
    # Without the user namespace the same box reads it: the check above can fail.
    plain = bundle(base, shifted_rootfs, ["sh", "-c", "cat /secret"])
    config = json.loads((plain / "config.json").read_text())
    config["mounts"] = mounts
    (plain / "config.json").write_text(json.dumps(config))
    assert tb("run", "--bundle", str(plain), unique("p")).stdout == "host root only\n"


def test_init_runs_as_the_mapped_uid_exec_joins_and_destroy_leaves_nothing(
    tb: TB, base: Path, shifted_rootfs: Path
) -> None:
    name = unique("d")
    b = userns_bundle(base, shifted_rootfs, ["sleep", "1000"])
    tb("run", "-d", "--bundle", str(b), name)
    pid = tb.state(name)["pid"]
    assert status_ids(pid) == (SHIFT, SHIFT)
    out = tb("exec", name, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map; ps -o pid,comm")
    lines = out.stdout.splitlines()
    assert lines[:2] == ["0", "0"], out.stdout
    assert lines[2].split() == ["0", str(SHIFT), "65536"]
    assert any(ln.split() == ["1", "sleep"] for ln in lines[3:]), out.stdout
    with open(f"/proc/{pid}/ns/user") as _:
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    dirs = cgroup_dirs(tb, name)
    assert dirs and all(os.path.isdir(d) for d in dirs)
    tb("destroy", "--force", name)
    assert not (tb.root / name).exists()
    assert not any(os.path.exists(d) for d in dirs)
    assert str(base) not in mountinfo()
    assert leases(tb) == []


def test_proc_sysfs_devices_and_a_terminal_work_in_a_user_namespace(
    tb: TB, base: Path, shifted_rootfs: Path
) -> None:
    script = (
        "grep -c -E ' /proc proc | /sys sysfs ' /proc/mounts; echo x > /dev/null && echo null-ok;"
        " head -c4 /dev/zero | wc -c; tty; grep -c ' /dev/pts devpts .*gid=100005,' /proc/mounts"
    )
    b = userns_bundle(base, shifted_rootfs, ["sh", "-c", script])
    out = tb("run", "-t", "--bundle", str(b), unique("t")).stdout.replace("\r", "")
    # devpts shows its gid= as a host id: the box's tty group 5 is mapped to 100005.
    assert out.splitlines()[:5] == ["2", "null-ok", "4", "/dev/pts/0", "1"], out


# ---- --userns auto -------------------------------------------------------------------------------


def test_userns_auto_image_box_is_root_inside_and_writes_its_root(tb: TB) -> None:
    script = (
        "id -u; touch /x && echo wrote; ls -ln /bin/busybox | awk '{print $3}';"
        " grep -c -E ' /proc proc | /sys sysfs ' /proc/mounts; cat /proc/self/uid_map"
    )
    out = tb("run", "--image", "busybox", "--userns", "auto", unique("a"), "sh", "-c", script)
    lines = out.stdout.splitlines()
    assert lines[:4] == ["0", "wrote", "0", "2"], out.stdout
    inside, outside, size = (int(w) for w in lines[4].split())
    assert inside == 0 and size == 65536 and outside >= 2**31  # no /etc/subuid here
    assert leases(tb) == []  # a foreground run removes its box, and its lease with it


def test_two_auto_boxes_get_disjoint_ranges_and_exec_keeps_them(tb: TB) -> None:
    names = [unique("r"), unique("r")]
    for name in names:
        tb("run", "-d", "--image", "busybox", "--userns", "auto", name, "sleep", "1000")
    starts = []
    for name in names:
        uid, _ = status_ids(tb.state(name)["pid"])
        maps = record(tb, name)["extra"]["userns"]["uidMappings"]
        assert maps == [[0, uid, 65536]]
        starts.append(uid)
        assert tb("exec", name, "id", "-u").stdout == "0\n"
    assert abs(starts[0] - starts[1]) >= 65536
    assert leases(tb) == sorted(f"{n}.lease" for n in names)
    image = tb.data_root / "images" / "busybox" / "rootfs" / "bin" / "busybox"
    assert image.stat().st_uid == 0  # idmapped, not chowned: the image is unchanged
    tb("destroy", "--force", *names)
    assert leases(tb) == []


def test_userns_auto_with_a_bundle_shifts_its_root(
    tb: TB, base: Path, busybox_rootfs: Path
) -> None:
    rootfs = base / "private" / "plain-rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    b = bundle(base, rootfs, ["sh", "-c", "id -u; ls -ln /bin/busybox | awk '{print $3}'"])
    out = tb("run", "--bundle", str(b), "--userns", "auto", unique("b")).stdout
    assert out.splitlines() == ["0", "0"]
    assert (rootfs / "bin" / "busybox").stat().st_uid == 0


def test_userns_auto_network_box_gets_its_address(tb: TB, net: Net) -> None:  # noqa: F811
    name = unique("n")
    tb(
        "run", "-d", "--image", "busybox", "--userns", "auto", "--network", "default",
        name, "sleep", "1000",
    )  # fmt: skip
    address = json.loads(tb("list", "--format", "json").stdout)[0]["address"]
    assert address.startswith(net.prefix + ".")
    out = tb("exec", name, "ip", "-4", "-o", "addr").stdout
    assert address.split("/")[0] in out
    busybox = shutil.which("busybox") or "/bin/busybox"  # the host has no ping of its own
    ping = subprocess.run(
        [busybox, "ping", "-c1", "-W2", address.split("/")[0]], capture_output=True, text=True
    )
    assert ping.returncode == 0, ping.stdout
    tb("destroy", "--force", name)


# ---- bad input -------------------------------------------------------------------------------


def test_bad_user_namespace_input_is_one_line_and_leaves_nothing(
    tb: TB, base: Path, shifted_rootfs: Path
) -> None:
    def fails(b: Path, *extra: str) -> str:
        line = tb.fails("run", "--bundle", str(b), *extra, unique("bad"))
        assert tb.names() == [] and leases(tb) == []
        return line

    no_user = bundle(base, shifted_rootfs, ["true"], uidMappings=MAP, gidMappings=MAP)
    assert "linux.uidMappings: needs a user namespace" in fails(no_user)

    overlap = [*MAP, {"containerID": 10, "hostID": 900000, "size": 5}]
    b = userns_bundle(base, shifted_rootfs, ["true"])
    config = json.loads((b / "config.json").read_text())
    config["linux"]["uidMappings"] = overlap
    (b / "config.json").write_text(json.dumps(config))
    assert "linux.uidMappings[1]: its containerID range overlaps" in fails(b)

    # 0xffff0000 + 65536 stays within our 32-bit check but includes (uid_t)-1: the kernel says no.
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 2**32 - 65536, "size": 65536}]
    (b / "config.json").write_text(json.dumps(config))
    assert "linux.uidMappings: the kernel refused the mapping" in fails(b)

    for kind, wrong in (("user", "uts"), ("network", "ipc"), ("ipc", "user")):
        b = bundle(base, shifted_rootfs, ["true"])
        config = json.loads((b / "config.json").read_text())
        config["linux"]["namespaces"] = [
            {"type": "mount"},
            {"type": kind, "path": f"/proc/{os.getpid()}/ns/{wrong}"},
        ]
        (b / "config.json").write_text(json.dumps(config))
        line = fails(b)
        assert f"is a {'user' if wrong == 'user' else wrong} namespace, not a {kind}" in line

    b = bundle(base, shifted_rootfs, ["true"])
    config = json.loads((b / "config.json").read_text())
    config["linux"]["namespaces"].append({"type": "user", "path": str(base / "secret-nope")})
    (b / "config.json").write_text(json.dumps(config))
    assert "no such file" in fails(b)

    assert "--userns 'maybe': must be auto or host" in fails(
        bundle(base, shifted_rootfs, ["true"]), "--userns", "maybe"
    )


def test_a_box_joins_another_boxs_user_namespace_by_path(
    tb: TB, base: Path, shifted_rootfs: Path
) -> None:
    first = unique("host")
    tb("run", "-d", "--bundle", str(userns_bundle(base, shifted_rootfs, ["sleep", "1000"])), first)
    pid = tb.state(first)["pid"]
    joined = bundle(base, shifted_rootfs, ["sh", "-c", "cat /proc/self/uid_map; id -u; ps -o comm"])
    config = json.loads((joined / "config.json").read_text())
    config["linux"]["namespaces"] = [
        {"type": "user", "path": f"/proc/{pid}/ns/user"},
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"},
        {"type": "mount"},
        {"type": "uts"},
        {"type": "ipc"},
    ]
    (joined / "config.json").write_text(json.dumps(config))
    lines = tb("run", "--bundle", str(joined), unique("j")).stdout.splitlines()
    assert lines[0].split() == ["0", str(SHIFT), "65536"]
    assert lines[1] == "0"
    assert "sleep" in lines[2:], lines  # the other box's pid namespace, seen from inside
    # A new pid namespace could not be owned by a joined user namespace: refused, clearly.
    config["linux"]["namespaces"][1] = {"type": "pid"}
    (joined / "config.json").write_text(json.dumps(config))
    line = tb.fails("run", "--bundle", str(joined), unique("j"))
    assert "a joined user namespace cannot own a new pid namespace" in line
    assert tb.names() == [first]


def test_a_failure_inside_the_init_of_a_userns_box_leaves_nothing(
    tb: TB, base: Path, busybox_rootfs: Path
) -> None:
    b = bundle(base, busybox_rootfs, ["true"])
    config = json.loads((b / "config.json").read_text())
    config["mounts"] = [
        {"destination": "/x", "type": "bind", "source": str(base / "missing"), "options": ["bind"]}
    ]
    (b / "config.json").write_text(json.dumps(config))
    for detach in ((), ("-d",)):
        line = tb.fails("run", *detach, "--bundle", str(b), "--userns", "auto", unique("f"))
        assert "missing" in line
        assert tb.names() == [] and leases(tb) == []
