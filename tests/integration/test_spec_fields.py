"""The security fields of config.json on the real kernel (issue 10): process.oomScoreAdj,
linux.sysctl, domainname, process.noNewPrivileges (against a real setuid binary), AppArmor /
SELinux labels on a host without either LSM, refused fields, and warnings that stay out of a
box's output. Each refusal is one line and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB, unique
from tests.integration import actions_helpers
from tests.integration.actions_helpers import Boxes, assert_no_cgroup, cgpath

pytestmark = pytest.mark.root
boxes = actions_helpers.boxes  # the fixture

OWN_NS = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
HOST_NET = f"/proc/{os.getpid()}/ns/net"  # this test's network namespace is tuibox's too


def run_out(tb: TB, bundle: Path, *cmd: str) -> str:
    return tb("run", "--bundle", str(bundle), unique("f"), *cmd).stdout


def refused(tb: TB, bundle: Path) -> str:
    """Run a bundle that must be refused: one line, and no box, cgroup or mount left."""
    name = unique("no")
    err = tb.fails("run", "--bundle", str(bundle), name)
    assert name not in tb.names()
    assert_no_cgroup(cgpath(tb, name))
    return err


def read(path: str) -> str:
    return Path(path).read_text().strip()


# ---- process.oomScoreAdj -----------------------------------------------------------------


def test_oom_score_adj_reaches_the_program_and_exec(
    tb: TB, boxes: Boxes, make_bundle: Callable[..., Path]
) -> None:
    ours = read("/proc/self/oom_score_adj")
    bundle = make_bundle(process={"oomScoreAdj": 500})
    assert run_out(tb, bundle, "cat", "/proc/self/oom_score_adj").strip() == "500"
    name = boxes.run(process={"oomScoreAdj": 321})
    assert read(f"/proc/{boxes.pid(name)}/oom_score_adj") == "321"
    # runc writes it for exec'd processes too: they are not children of the init
    assert tb("exec", name, "cat", "/proc/self/oom_score_adj").stdout.strip() == "321"
    assert read("/proc/self/oom_score_adj") == ours  # tuibox's own is untouched


def test_lowering_oom_score_adj_without_cap_sys_resource_is_one_line(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    status = Path("/proc/self/status").read_text()
    cap_eff = int(next(ln for ln in status.splitlines() if ln.startswith("CapEff")).split()[1], 16)
    if cap_eff >> 24 & 1:
        pytest.skip("this host gives CAP_SYS_RESOURCE: lowering is allowed")
    below = int(read("/proc/self/oom_score_adj")) - 1
    err = refused(tb, make_bundle(process={"oomScoreAdj": below}))
    assert err.startswith(f"tuibox: error: process.oomScoreAdj: cannot lower it to {below}")
    assert "CAP_SYS_RESOURCE" in err


def test_oom_score_adj_out_of_range_is_refused(tb: TB, make_bundle: Callable[..., Path]) -> None:
    err = refused(tb, make_bundle(process={"oomScoreAdj": 1001}))
    assert err == (
        "tuibox: error: config.json: process.oomScoreAdj: must be from -1000 to 1000, not 1001"
    )


# ---- linux.sysctl ------------------------------------------------------------------------


def test_net_sysctl_in_the_box_netns_leaves_the_host_alone(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    host = read("/proc/sys/net/ipv4/ip_forward")
    want = "0" if host == "1" else "1"
    bundle = make_bundle(linux={"namespaces": OWN_NS, "sysctl": {"net.ipv4.ip_forward": want}})
    assert run_out(tb, bundle, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == want
    assert read("/proc/sys/net/ipv4/ip_forward") == host


def test_ipc_sysctls_and_domainname_in_the_box_namespaces(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    host_shmmax = read("/proc/sys/kernel/shmmax")
    host_msgmax = read("/proc/sys/fs/mqueue/msg_max")
    host_domain = read("/proc/sys/kernel/domainname")
    bundle = make_bundle(
        domainname="boxes.example",
        linux={
            "namespaces": OWN_NS,
            "sysctl": {"kernel.shmmax": "123456789", "fs.mqueue.msg_max": "20"},
        },
    )
    out = run_out(
        tb, bundle, "cat", "/proc/sys/kernel/shmmax", "/proc/sys/fs/mqueue/msg_max",
        "/proc/sys/kernel/domainname",
    )  # fmt: skip
    assert out.split() == ["123456789", "20", "boxes.example"]
    assert read("/proc/sys/kernel/shmmax") == host_shmmax
    assert read("/proc/sys/fs/mqueue/msg_max") == host_msgmax
    assert read("/proc/sys/kernel/domainname") == host_domain


@pytest.mark.parametrize(
    ("namespaces", "sysctl", "message"),
    [
        (OWN_NS, {"kernel.pid_max": "4194303"}, "linux.sysctl.kernel.pid_max: is not namespaced"),
        (OWN_NS, {"vm.swappiness": "10"}, "linux.sysctl.vm.swappiness: is not namespaced"),
        (
            [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}],
            {"net.ipv4.ip_forward": "1"},
            "linux.sysctl.net.ipv4.ip_forward: needs a private network namespace",
        ),
        (
            [{"type": "pid"}, {"type": "mount"}, {"type": "network"}],
            {"kernel.shmmax": "1"},
            "linux.sysctl.kernel.shmmax: needs a private ipc namespace",
        ),
        (
            [*OWN_NS[:1], {"type": "network", "path": HOST_NET}, *OWN_NS[2:]],
            {"net.ipv4.ip_forward": "1"},
            f"linux.sysctl.net.ipv4.ip_forward: the network namespace {HOST_NET} is the host's own",
        ),
        (
            OWN_NS,
            {"net.ipv4/../../kernel/pid_max": "1"},
            "linux.sysctl.net.ipv4/../../kernel/pid_max: is not a sysctl name",
        ),
    ],
    ids=["kernel.pid_max", "vm", "net-without-netns", "ipc-without-ipcns", "host-netns", "dots"],
)
def test_sysctls_that_would_change_the_host_are_refused(
    tb: TB,
    make_bundle: Callable[..., Path],
    namespaces: list[dict[str, str]],
    sysctl: dict[str, str],
    message: str,
) -> None:
    before = {p: read(p) for p in ("/proc/sys/kernel/pid_max", "/proc/sys/vm/swappiness")}
    err = refused(tb, make_bundle(linux={"namespaces": namespaces, "sysctl": sysctl}))
    assert err.startswith(f"tuibox: error: config.json: {message}"), err
    assert {p: read(p) for p in before} == before


def test_net_sysctl_that_is_not_per_netns_is_refused_by_the_kernel(
    tb: TB, make_bundle: Callable[..., Path]
) -> None:
    host = read("/proc/sys/net/core/rmem_max")
    bundle = make_bundle(
        linux={"namespaces": OWN_NS, "sysctl": {"net.core.rmem_max": str(int(host) + 4096)}}
    )
    err = refused(tb, bundle)
    assert err == (
        "tuibox: error: linux.sysctl.net.core.rmem_max: is not per network namespace on this "
        "kernel (only the host's can be set)"
    )
    assert read("/proc/sys/net/core/rmem_max") == host


def test_sysctl_the_kernel_rejects_is_one_line(tb: TB, make_bundle: Callable[..., Path]) -> None:
    bundle = make_bundle(linux={"namespaces": OWN_NS, "sysctl": {"kernel.shmmax": "lots"}})
    assert refused(tb, bundle) == (
        "tuibox: error: linux.sysctl.kernel.shmmax: the kernel refused 'lots': invalid argument"
    )
    bundle = make_bundle(linux={"namespaces": OWN_NS, "sysctl": {"net.ipv4.no_such": "1"}})
    assert refused(tb, bundle) == (
        "tuibox: error: linux.sysctl.net.ipv4.no_such: no such sysctl on this kernel"
    )


# ---- process.noNewPrivileges against a real setuid-root binary ---------------------------


@pytest.fixture
def suid_rootfs(tmp_path: Path, busybox_rootfs: Path) -> Path:
    """A copy of the busybox rootfs with /suid/busybox setuid root and a root without a
    password: busybox `su` keeps its setuid (it is a BB_SUID_REQUIRE applet), so a uid 1000
    program becomes root unless no_new_privs makes the kernel ignore the setuid bit."""
    root = tmp_path / "suid-rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    (root / "suid").mkdir()
    target = root / "suid" / "busybox"
    shutil.copy2(root / "bin" / "busybox", target)
    os.chown(target, 0, 0)
    target.chmod(0o4755)
    passwd = root / "etc" / "passwd"
    lines = passwd.read_text().splitlines()
    passwd.write_text(
        "\n".join("root::" + ln.split(":", 2)[2] if ln.startswith("root:") else ln for ln in lines)
        + "\n"
    )
    return root


SU_ID = ("/suid/busybox", "su", "-c", "id -u", "root")


def _uid_box(make_bundle: Callable[..., Path], rootfs: Path, nnp: bool, args: list[str]) -> Path:
    bundle = make_bundle(args, process={"user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": nnp})
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(rootfs)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def test_setuid_root_binary_gains_root_only_without_no_new_privileges(
    tb: TB, make_bundle: Callable[..., Path], suid_rootfs: Path
) -> None:
    script = "id -u; " + " ".join(f"'{w}'" for w in SU_ID) + "; echo rc=$?"
    without = _uid_box(make_bundle, suid_rootfs, False, ["/bin/sh", "-c", script])
    # proves the test can fail: the setuid bit works here
    assert run_out(tb, without).split() == ["1000", "0", "rc=0"]
    with_nnp = _uid_box(make_bundle, suid_rootfs, True, ["/bin/sh", "-c", script])
    proc = tb("run", "--bundle", str(with_nnp), unique("nnp"), check=False)
    words = proc.stdout.split()
    assert words[0] == "1000" and "0" not in words[1:] and words[-1] != "rc=0", proc


def test_exec_honours_no_new_privileges(
    tb: TB, boxes: Boxes, make_bundle: Callable[..., Path], suid_rootfs: Path
) -> None:
    names = {}
    for nnp in (True, False):
        bundle = _uid_box(make_bundle, suid_rootfs, nnp, ["sleep", "1000"])
        names[nnp] = name = unique("ex")
        boxes.cgroups[name] = cgpath(tb, name)
        tb("run", "-d", "--bundle", str(bundle), name)
    status = tb("exec", names[True], "cat", "/proc/self/status").stdout
    assert "NoNewPrivs:\t1" in status
    assert tb("exec", names[True], *SU_ID, check=False).stdout.strip() != "0"
    assert "NoNewPrivs:\t0" in tb("exec", names[False], "cat", "/proc/self/status").stdout
    assert tb("exec", names[False], *SU_ID).stdout.strip() == "0"
    # a process.json says it for itself, as with runc exec --process
    process = {
        "args": list(SU_ID),
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 1000, "gid": 1000},
        "noNewPrivileges": True,
    }
    pfile = suid_rootfs.parent / "process.json"
    pfile.write_text(json.dumps(process))
    out = tb("exec", "--process", str(pfile), names[False], check=False).stdout
    assert out.strip() != "0"


# ---- AppArmor / SELinux on a host without either -----------------------------------------


def _host_has_no_lsm() -> None:
    from tuibox.runtime.linux import lsm

    if lsm.apparmor_enabled() or lsm.selinux_enabled():
        pytest.skip("this host has AppArmor or SELinux: the absent-LSM path does not apply")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"process": {"apparmorProfile": "docker-default"}},
            "config.json: process.apparmorProfile: AppArmor is not enabled on this host",
        ),
        (
            {"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}},
            "config.json: process.selinuxLabel: SELinux is not enabled on this host",
        ),
        (
            {"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}},
            "config.json: linux.mountLabel: SELinux is not enabled on this host",
        ),
    ],
    ids=["apparmor", "selinux", "mountLabel"],
)
def test_lsm_labels_are_refused_where_the_host_lacks_the_lsm(
    tb: TB, make_bundle: Callable[..., Path], fields: dict[str, Any], message: str
) -> None:
    _host_has_no_lsm()
    err = refused(tb, make_bundle(**fields))
    assert err.startswith(f"tuibox: error: {message}"), err


def test_exec_process_json_with_an_apparmor_profile_is_refused(
    tb: TB, boxes: Boxes, tmp_path: Path
) -> None:
    _host_has_no_lsm()
    name = boxes.run()
    pfile = tmp_path / "process.json"
    pfile.write_text(
        json.dumps({"args": ["true"], "cwd": "/", "apparmorProfile": "docker-default"})
    )
    err = tb.fails("exec", "--process", str(pfile), name)
    assert err.startswith("tuibox: error: process.json: apparmorProfile: AppArmor is not enabled")


# ---- refused fields and warnings ---------------------------------------------------------


def test_time_namespace_is_refused(tb: TB, make_bundle: Callable[..., Path]) -> None:
    err = refused(tb, make_bundle(linux={"namespaces": [*OWN_NS, {"type": "time"}]}))
    assert err.startswith("tuibox: error: config.json: linux.namespaces[5].type: time")


WARNED = {"personality": {"domain": "LINUX"}, "netDevices": {"eth9": {}}}


def test_warnings_go_to_tuibox_stderr_not_the_box_output(
    tb: TB, boxes: Boxes, make_bundle: Callable[..., Path]
) -> None:
    fields = {"linux": {"namespaces": OWN_NS, **WARNED}}
    # foreground: the program's stdout and stderr are tuibox's, so only the line's place
    # (stderr, before the box exists) tells them apart
    bundle = make_bundle(["/bin/sh", "-c", "echo out; echo err >&2"], **fields)
    proc = tb("run", "--bundle", str(bundle), unique("w"))
    assert proc.stdout == "out\n"
    assert "tuibox: warning: config.json: not implemented, ignored: linux.personality" in (
        proc.stderr
    )
    # detached, both ways: box.log (`logs`) holds the program's output only
    for verb in ("run -d", "create"):
        name = unique("w")
        boxes.cgroups[name] = cgpath(tb, name)
        bundle = make_bundle(["/bin/sh", "-c", "echo out; echo err >&2"], **fields)
        proc = tb(*verb.split(), "--bundle", str(bundle), name)
        assert "tuibox: warning:" in proc.stderr and "linux.netDevices" in proc.stderr
        if verb == "create":
            tb("start", name)
        tb("wait", name, check=False)
        log = tb("logs", name).stdout
        assert sorted(log.split()) == ["err", "out"], log
        assert "warning" not in log
