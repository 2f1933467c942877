"""The security fields of config.json (issue 10): oomScoreAdj, sysctl, domainname, AppArmor
and SELinux labels, and the fail-closed split between refused and warned fields.

Pure: parsing, and the LSM / sysctl / oom writers against fake /proc trees in tmp_path
(the host has neither LSM; tests/integration/test_spec_fields.py covers the real kernel)."""

from __future__ import annotations

import copy
import errno
from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime.errors import SpecError
from tuibox.runtime.linux import lsm
from tuibox.runtime.linux import sysctl as knobs
from tuibox.runtime.spec import REFUSED_FIELDS, UNSUPPORTED_FIELDS, parse_spec, sysctl_namespace
from tuibox.runtime.spec_model import Mount

BASE: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"args": ["/bin/sh"], "cwd": "/"},
}
ALL_NS = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]


def spec_with(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for dotted, value in fields.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return data


def error(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "/b")
    text = str(info.value)
    assert "\n" not in text
    return text


# ---- refused and warned ------------------------------------------------------------------


def test_refused_and_warned_are_apart_and_each_refusal_says_why() -> None:
    assert not set(REFUSED_FIELDS) & set(UNSUPPORTED_FIELDS)
    for name, why in REFUSED_FIELDS.items():
        assert why and "\n" not in why, name
    # the fields that are now honoured are in neither list
    for honoured in (
        "process.oomScoreAdj",
        "process.apparmorProfile",
        "process.selinuxLabel",
        "linux.mountLabel",
        "linux.sysctl",
        "domainname",
    ):
        assert honoured not in REFUSED_FIELDS and honoured not in UNSUPPORTED_FIELDS


def _with_field(name: str) -> dict[str, Any]:
    if name == "linux.namespaces.time":
        return spec_with(linux__namespaces=[{"type": "pid"}, {"type": "time"}])
    if name.startswith("mounts."):
        key = name.partition(".")[2]
        return spec_with(mounts=[{"destination": "/t", key: [{"x": 1}]}])
    return spec_with(**{name.replace(".", "__"): {"x": 1}})


@pytest.mark.parametrize("name", sorted(REFUSED_FIELDS))
def test_each_refused_field_is_one_line_naming_it(name: str) -> None:
    text = error(_with_field(name))
    field = "linux.namespaces[1].type" if name == "linux.namespaces.time" else name
    assert text == f"config.json: {field}: {REFUSED_FIELDS[name]}"


def test_empty_hooks_ask_nothing_and_are_not_refused() -> None:
    spec = parse_spec(spec_with(hooks={}), "/b")
    assert spec.unsupported == ()


# ---- process.oomScoreAdj -----------------------------------------------------------------


@pytest.mark.parametrize("value", [-1000, -1, 0, 500, 1000])
def test_oom_score_adj_in_range(value: int) -> None:
    spec = parse_spec(spec_with(process__oomScoreAdj=value), "/b")
    assert spec.process.oom_score_adj == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1001, "must be from -1000 to 1000, not 1001"),
        (-1001, "must be from -1000 to 1000, not -1001"),
        ("5", "must be an integer"),
        (True, "must be an integer"),
        (1.5, "must be an integer"),
    ],
)
def test_oom_score_adj_out_of_range(value: object, problem: str) -> None:
    assert error(spec_with(process__oomScoreAdj=value)) == (
        f"config.json: process.oomScoreAdj: {problem}"
    )


def test_oom_score_adj_absent_is_none() -> None:
    assert parse_spec(spec_with(), "/b").process.oom_score_adj is None


def test_set_oom_score_adj_writes_the_value(tmp_path: Path) -> None:
    f = tmp_path / "oom_score_adj"
    f.write_text("0\n")
    knobs.set_oom_score_adj(300, str(f))
    assert f.read_text() == "300"


def test_set_oom_score_adj_eacces_is_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real EACCES (no CAP_SYS_RESOURCE) is the root test's; here the kernel is faked.
    f = tmp_path / "oom_score_adj"
    f.write_text("0\n")
    real_open = knobs.os.open

    def refuse(path: str, flags: int, *args: Any) -> int:
        if flags & knobs.os.O_WRONLY:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(knobs.os, "open", refuse)
    with pytest.raises(OSError) as info:
        knobs.set_oom_score_adj(-500, str(f))
    assert info.value.errno == errno.EACCES
    assert info.value.strerror == (
        "process.oomScoreAdj: cannot lower it to -500 (tuibox runs at 0): "
        "this host does not give CAP_SYS_RESOURCE"
    )


# ---- linux.sysctl ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("kernel.msgmax", "ipc"),
        ("kernel.shmmax", "ipc"),
        ("kernel.shm_rmid_forced", "ipc"),
        ("fs.mqueue.queues_max", "ipc"),
        ("net.ipv4.ip_forward", "network"),
        ("net.core.somaxconn", "network"),
        ("kernel.domainname", "uts"),
        ("kernel.pid_max", None),
        ("vm.overcommit_memory", None),
        ("fs.file-max", None),
        ("kernel.hostname", None),
    ],
)
def test_sysctl_namespace(key: str, kind: str | None) -> None:
    assert sysctl_namespace(key) == kind


def test_sysctls_of_private_namespaces_are_accepted() -> None:
    values = {
        "net.ipv4.ip_forward": "1",
        "kernel.shmmax": "123456",
        "fs.mqueue.msg_max": "20",
        "kernel.domainname": "example.org",
        "net.ipv4.conf.eth-0_1.rp_filter": "2",
    }
    spec = parse_spec(spec_with(linux__sysctl=values, linux__namespaces=ALL_NS), "/b")
    assert spec.linux.sysctl == values


@pytest.mark.parametrize(
    ("key", "namespaces", "problem"),
    [
        ("kernel.pid_max", ALL_NS, "is not namespaced: setting it would change the host"),
        ("vm.swappiness", ALL_NS, "is not namespaced: setting it would change the host"),
        ("kernel.hostname", ALL_NS, "set the hostname field instead"),
        (
            "net.ipv4.ip_forward",
            [{"type": "pid"}, {"type": "mount"}],
            "needs a private network namespace",
        ),
        ("kernel.shmmax", [{"type": "network"}], "needs a private ipc namespace"),
        ("fs.mqueue.queues_max", [{"type": "uts"}], "needs a private ipc namespace"),
        ("kernel.domainname", [{"type": "ipc"}], "needs a private uts namespace"),
    ],
)
def test_sysctls_that_would_change_the_host_are_refused(
    key: str, namespaces: list[dict[str, str]], problem: str
) -> None:
    text = error(spec_with(linux__namespaces=namespaces, linux__sysctl={key: "1"}))
    assert text.startswith(f"config.json: linux.sysctl.{key}: {problem}"), text


@pytest.mark.parametrize(
    "key",
    [
        "net.ipv4..ip_forward",
        "net.ipv4.conf/../../../kernel.pid_max",
        "net/ipv4/ip_forward",
        ".net.ipv4",
        "net.ipv4.",
        "net..",
        "",
        "net.ipv4.ip forward",
        "net.ipv4.\x00",
        "net.ipv4.é",
    ],
)
def test_sysctl_key_syntax(key: str) -> None:
    text = error(spec_with(linux__sysctl={key: "1"}))
    assert text.startswith(f"config.json: linux.sysctl.{key}: is not a sysctl name"), text


def test_apply_sysctls_writes_under_proc_sys(tmp_path: Path) -> None:
    (tmp_path / "net/ipv4").mkdir(parents=True)
    (tmp_path / "kernel").mkdir()
    (tmp_path / "net/ipv4/ip_forward").write_text("")
    (tmp_path / "kernel/shmmax").write_text("")
    knobs.apply_sysctls({"net.ipv4.ip_forward": "1", "kernel.shmmax": "42"}, str(tmp_path))
    assert (tmp_path / "net/ipv4/ip_forward").read_text() == "1"
    assert (tmp_path / "kernel/shmmax").read_text() == "42"


def test_apply_sysctls_missing_key(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        knobs.apply_sysctls({"net.core.nosuch": "1"}, str(tmp_path))
    assert info.value.strerror == "linux.sysctl.net.core.nosuch: no such sysctl on this kernel"


def test_apply_sysctls_does_not_follow_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (tmp_path / "net/x").symlink_to(outside)
    with pytest.raises(OSError):
        knobs.apply_sysctls({"net.x": "1"}, str(tmp_path))
    assert outside.read_text() == "keep"


# ---- domainname --------------------------------------------------------------------------


def test_domainname_is_parsed_and_needs_uts() -> None:
    assert parse_spec(spec_with(domainname="example.org"), "/b").domainname == "example.org"
    assert error(spec_with(domainname="example.org", linux__namespaces=[{"type": "pid"}])) == (
        "config.json: domainname: needs a uts namespace of its own"
    )
    assert error(spec_with(domainname="a b")).startswith("config.json: domainname: ")


# ---- AppArmor / SELinux ------------------------------------------------------------------


def test_labels_are_parsed_and_empty_means_none() -> None:
    spec = parse_spec(
        spec_with(
            process__apparmorProfile="docker-default",
            process__selinuxLabel="system_u:system_r:container_t:s0:c1,c2",
            linux__mountLabel="system_u:object_r:container_file_t:s0",
        ),
        "/b",
    )
    assert spec.process.apparmor_profile == "docker-default"
    assert spec.process.selinux_label == "system_u:system_r:container_t:s0:c1,c2"
    assert spec.linux.mount_label == "system_u:object_r:container_file_t:s0"
    assert spec.unsupported == ()
    empty = parse_spec(spec_with(process__apparmorProfile="", linux__mountLabel=""), "/b")
    assert empty.process.apparmor_profile is None and empty.linux.mount_label is None


def test_label_with_a_newline_is_refused() -> None:
    assert error(spec_with(process__apparmorProfile="a\nb")) == (
        "config.json: process.apparmorProfile: must not contain a NUL byte or a newline"
    )


def _fake_attr(tmp_path: Path, per_lsm_dir: bool) -> Path:
    attr = tmp_path / "attr"
    (attr / "apparmor").mkdir(parents=True)
    (attr / "exec").write_text("")
    if per_lsm_dir:
        (attr / "apparmor" / "exec").write_text("")
    return attr


def test_apparmor_profile_goes_to_the_per_lsm_file(tmp_path: Path) -> None:
    attr = _fake_attr(tmp_path, per_lsm_dir=True)
    lsm.set_exec_labels("docker-default", None, str(attr))
    assert (attr / "apparmor" / "exec").read_text() == "exec docker-default"
    assert (attr / "exec").read_text() == ""


def test_apparmor_profile_falls_back_to_attr_exec(tmp_path: Path) -> None:
    attr = _fake_attr(tmp_path, per_lsm_dir=False)
    lsm.set_exec_labels("docker-default", None, str(attr))
    assert (attr / "exec").read_text() == "exec docker-default"


def test_selinux_label_goes_to_attr_exec(tmp_path: Path) -> None:
    attr = _fake_attr(tmp_path, per_lsm_dir=True)
    lsm.set_exec_labels(None, "system_u:system_r:container_t:s0", str(attr))
    assert (attr / "exec").read_text() == "system_u:system_r:container_t:s0"
    assert (attr / "apparmor" / "exec").read_text() == ""


def test_no_labels_write_nothing(tmp_path: Path) -> None:
    lsm.set_exec_labels(None, None, str(tmp_path / "absent"))


def test_a_refused_write_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        lsm.set_exec_labels("p", None, str(tmp_path / "absent"))
    assert str(info.value.strerror).startswith("process.apparmorProfile: cannot open ")


def test_apparmor_enabled_reads_the_module_parameter(tmp_path: Path) -> None:
    param = tmp_path / "enabled"
    assert not lsm.apparmor_enabled(str(param))
    param.write_text("N\n")
    assert not lsm.apparmor_enabled(str(param))
    param.write_text("Y\n")
    assert lsm.apparmor_enabled(str(param))


def _fake_proc(tmp_path: Path, fs: bool, mounted: bool, current: str | None) -> Path:
    proc = tmp_path / "proc"
    (proc / "self" / "attr").mkdir(parents=True)
    (proc / "filesystems").write_text("nodev\tproc\n" + ("nodev\tselinuxfs\n" if fs else ""))
    line = "30 25 0:27 / /sys/fs/selinux rw,relatime shared:8 - selinuxfs selinuxfs rw\n"
    (proc / "self" / "mountinfo").write_text(line if mounted else "")
    if current is not None:
        (proc / "self" / "attr" / "current").write_text(current)
    return proc


def test_selinux_enabled_like_go_selinux(tmp_path: Path) -> None:
    on = _fake_proc(tmp_path / "on", True, True, "system_u:system_r:unconfined_t:s0\0")
    assert lsm.selinux_enabled(str(on))
    assert not lsm.selinux_enabled(str(_fake_proc(tmp_path / "a", False, True, "x:y:z")))
    assert not lsm.selinux_enabled(str(_fake_proc(tmp_path / "b", True, False, "x:y:z")))
    assert not lsm.selinux_enabled(str(_fake_proc(tmp_path / "c", True, True, "kernel\0")))
    assert not lsm.selinux_enabled(str(_fake_proc(tmp_path / "d", True, True, None)))


def test_host_problem_names_the_field(tmp_path: Path) -> None:
    off = str(tmp_path / "none")
    proc = str(_fake_proc(tmp_path, False, False, None))
    assert lsm.host_problem(None, None, None, off, proc) is None
    problem = lsm.host_problem("p", None, None, off, proc)
    assert problem is not None and problem[0] == "process.apparmorProfile"
    problem = lsm.host_problem(None, "a:b:c", None, off, proc)
    assert problem is not None and problem[0] == "process.selinuxLabel"
    problem = lsm.host_problem(None, None, "a:b:c", off, proc)
    assert problem is not None and problem[0] == "linux.mountLabel"
    param = tmp_path / "enabled"
    param.write_text("Y")
    assert lsm.host_problem("p", None, None, str(param), proc) is None


def test_the_real_host_has_neither_lsm() -> None:
    # What the root tests rely on; if this host grows an LSM they must learn the other path.
    assert not lsm.apparmor_enabled()
    assert not lsm.selinux_enabled()


def test_mount_label_goes_where_runc_puts_it() -> None:
    mounts = (
        Mount("/proc", "proc", "proc", ("nosuid",)),
        Mount("/dev", "tmpfs", "tmpfs", ("mode=755",)),
        Mount("/dev/pts", "devpts", "devpts", ()),
        Mount("/dev/mqueue", "mqueue", "mqueue", ()),
        Mount("/sys", "sysfs", "sysfs", ()),
        Mount("/sys/fs/cgroup", "cgroup", "cgroup", ()),
        Mount("/data", "bind", "/srv", ("rbind",)),
        Mount("/data2", "", "/srv", ("bind", "ro")),
    )
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    out = lsm.labelled_mounts(mounts, label)
    ctx = f'context="{label}"'
    assert [ctx in m.options for m in out] == [False, True, True, False, False, False, False, False]
    assert out[1].options == ("mode=755", ctx)
    assert lsm.labelled_mounts(mounts, None) is mounts
