"""config.json loading: real podman configs, box's minimal one, versions, every bad input,
unsupported fields and the starter spec. Pure: no root, no kernel features."""

from __future__ import annotations

import copy
import json
import os
import resource
from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime import defaults, fastjson
from tuibox.runtime.errors import SpecError
from tuibox.runtime.spec import (
    CAPABILITY_NAMES,
    RLIMITS,
    UNSUPPORTED_FIELDS,
    load_spec,
    parse_spec,
    starter_spec,
)
from tuibox.runtime.spec_model import (
    Capabilities,
    Device,
    IdMapping,
    Mount,
    Namespace,
    Rlimit,
    User,
)


def _shared_dir() -> Path | None:
    beside = Path(__file__).resolve().parents[3] / "shared"
    if beside.is_dir():
        return beside
    env = os.environ.get("TUIBOX_SHARED")
    if env and Path(env).is_dir():
        return Path(env)
    return None


SHARED = _shared_dir()
PODMAN = SHARED / "fixtures" / "podman-4.3" if SHARED else None
NO_SHARED = "shared/ not found beside the clone and TUIBOX_SHARED not set"


def _podman_params() -> list[Any]:
    if PODMAN is None or not PODMAN.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED), id="no-fixtures")]
    return [pytest.param(p, id=p.name) for p in sorted(PODMAN.glob("config.*.json"))]


def podman(name: str) -> Path:
    if PODMAN is None or not PODMAN.is_dir():
        pytest.skip(NO_SHARED)
    return PODMAN / f"config.{name}.json"


# box's own example config: only ociVersion, root.path, hostname and process{args, env, cwd}.
BOX_MINIMAL: dict[str, Any] = {
    "ociVersion": "1.0.0",
    "root": {"path": "rootfs"},
    "hostname": "box",
    "process": {"args": ["/bin/sh"], "env": ["PATH=/bin"], "cwd": "/"},
}

DELETE = object()


def edited(changes: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of BOX_MINIMAL with dotted keys set (or removed with DELETE)."""
    data = copy.deepcopy(base if base is not None else BOX_MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def spec_error(data: object, filename: str = "config.json") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "/bundle", filename)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- podman 4.3 fixtures ---------------------------------------------------------------------


def test_all_podman_fixtures_are_present() -> None:
    if PODMAN is None or not PODMAN.is_dir():
        pytest.skip(NO_SHARED)
    assert len(list(PODMAN.glob("config.*.json"))) == 12


@pytest.mark.parametrize("path", _podman_params())
def test_every_podman_config_loads(path: Path) -> None:
    data = json.loads(path.read_text())
    spec = load_spec(path)
    assert spec.oci_version == "1.0.2-dev"
    assert spec.warnings == ()
    assert spec.bundle == str(path.parent)
    assert spec.root.path == data["root"]["path"]
    assert spec.process.args == tuple(data["process"]["args"])
    assert spec.process.env == tuple(data["process"]["env"])
    assert spec.process.user.uid == data["process"]["user"]["uid"]
    assert [m.destination for m in spec.mounts] == [m["destination"] for m in data["mounts"]]
    assert not spec.default_mounts and not spec.default_namespaces
    wanted_ns = [n["type"] for n in data["linux"]["namespaces"]]
    assert [n.type for n in spec.linux.namespaces] == wanted_ns
    assert spec.annotations == data["annotations"]
    # podman's own profile (docker's allowlist, spec form) is read and checked, not ignored
    assert "linux.seccomp" not in spec.unsupported
    assert (spec.linux.seccomp is not None) == ("seccomp" in data["linux"])


def test_podman_rich_config_in_detail() -> None:
    spec = load_spec(podman("rich"))
    p = spec.process
    assert p.user == User(uid=1000, gid=1000, additional_gids=(1000,), umask=18)
    assert p.cwd == "/tmp"
    assert p.no_new_privileges is True
    assert p.capabilities == Capabilities(*([("CAP_NET_ADMIN",)] * 5))
    assert p.rlimits == (
        Rlimit("RLIMIT_NOFILE", resource.RLIMIT_NOFILE, 20000, 20000),
        Rlimit("RLIMIT_NPROC", resource.RLIMIT_NPROC, 32768, 32768),
    )
    assert spec.root.readonly is True
    assert spec.hostname == "richhost"
    assert spec.mounts[1] == Mount("/vol", "bind", "/srv/data/vol", ("ro", "rprivate", "rbind"))
    assert spec.linux.devices == (Device("/dev/myzero", "c", 1, 5, 0o20666, 0, 0),)
    assert spec.default_devices is False
    assert spec.namespace("network") == Namespace(
        "network", "/run/netns/netns-37da4a2c-39d2-7335-cd35-5a43a4412391"
    )
    assert spec.namespace("pid") == Namespace("pid")
    assert spec.linux.sysctl == {"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 0"}
    assert spec.linux.resources["memory"] == {"limit": 33554432, "swap": 67108864}
    assert spec.linux.cgroups_path is not None
    assert spec.linux.cgroups_path.startswith("/libpod_parent/libpod-")
    assert spec.linux.masked_paths[-1] == "/sys/dev/block"
    assert spec.linux.readonly_paths[0] == "/proc/asound"
    assert p.oom_score_adj == 100
    assert spec.unsupported == ()
    assert spec.linux.seccomp is not None
    assert spec.linux.seccomp.default_action == "SCMP_ACT_ERRNO"


def test_podman_privileged_has_every_capability_and_device() -> None:
    spec = load_spec(podman("privileged"))
    assert spec.process.capabilities is not None
    assert set(spec.process.capabilities.bounding) == set(CAPABILITY_NAMES) - {"CAP_SYS_RESOURCE"}
    assert len(spec.linux.devices) == 102
    assert {d.type for d in spec.linux.devices} == {"b", "c"}
    # podman leaves the keys out; the brief says absent means tuibox's defaults
    assert spec.linux.masked_paths == defaults.MASKED_PATHS
    assert spec.linux.readonly_paths == defaults.READONLY_PATHS
    assert spec.unsupported == ()


def test_podman_userns_keeps_the_user_namespace_and_its_mappings() -> None:
    spec = load_spec(podman("userns"))
    assert spec.namespace("user") == Namespace("user")
    assert [n.type for n in spec.linux.namespaces] == [
        "pid",
        "network",
        "ipc",
        "uts",
        "mount",
        "user",
    ]
    assert spec.linux.uid_mappings == (IdMapping(0, 100000, 65536),)
    assert spec.linux.gid_mappings == (IdMapping(0, 100000, 65536),)
    assert spec.unsupported == ()


def test_podman_host_namespaces_and_tty() -> None:
    host = load_spec(podman("host-pid-ipc-uts"))
    assert [n.type for n in host.linux.namespaces] == ["network", "mount"]
    assert host.hostname is None
    assert load_spec(podman("tty")).process.terminal is True
    assert load_spec(podman("basic")).process.terminal is False
    pod = load_spec(podman("pod-member"))
    assert pod.namespace("ipc") == Namespace("ipc", "/proc/24569/ns/ipc")


# ---- box's minimal config and defaults -------------------------------------------------------


def test_box_minimal_config_gets_defaults_and_a_bundle_relative_root(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(BOX_MINIMAL))
    spec = load_spec(tmp_path / "config.json")
    assert spec.root.path == str(tmp_path / "rootfs")
    assert spec.root.readonly is False
    assert spec.bundle == str(tmp_path)
    assert spec.hostname == "box"
    assert spec.process.args == ("/bin/sh",)
    assert spec.process.env == ("PATH=/bin",)
    assert spec.process.user == User(0, 0)
    assert spec.process.capabilities is None
    assert spec.process.rlimits == ()
    assert spec.mounts == defaults.MOUNTS and spec.default_mounts
    assert spec.linux.namespaces == defaults.NAMESPACES and spec.default_namespaces
    assert spec.linux.devices == () and spec.default_devices
    assert spec.linux.masked_paths == defaults.MASKED_PATHS
    assert spec.linux.readonly_paths == defaults.READONLY_PATHS
    assert spec.linux.rootfs_propagation is None
    assert spec.unsupported == () and spec.warnings == ()


def test_root_relative_to_a_given_bundle_and_absolute_root_kept(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(BOX_MINIMAL))
    other = tmp_path / "elsewhere"
    spec = load_spec(str(tmp_path / "config.json"), str(other))
    assert spec.root.path == str(other / "rootfs") and spec.bundle == str(other)
    data = edited({"root.path": "/srv/box/rootfs/"})
    assert parse_spec(data, "/x").root.path == "/srv/box/rootfs"
    assert parse_spec(edited({"root.path": "../r"}), "/a/b").root.path == "/a/r"


def test_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps(BOX_MINIMAL))
    monkeypatch.chdir(tmp_path)
    spec = load_spec("config.json")
    assert spec.bundle == str(tmp_path)
    assert spec.root.path == str(tmp_path / "rootfs")


def test_empty_sections_are_not_defaults() -> None:
    spec = parse_spec(
        edited({"mounts": [], "linux": {"namespaces": [], "devices": [], "maskedPaths": []}}),
        "/b",
    )
    assert spec.mounts == () and not spec.default_mounts
    # an empty list inherits every namespace but the mount one (always the box's own)
    assert spec.linux.namespaces == (Namespace("mount"),) and not spec.default_namespaces
    assert spec.linux.devices == () and not spec.default_devices
    assert spec.linux.masked_paths == ()
    assert spec.linux.readonly_paths == defaults.READONLY_PATHS


def test_optional_fields_parse() -> None:
    spec = parse_spec(
        edited(
            {
                "root.readonly": True,
                "process.terminal": True,
                "process.consoleSize": {"height": 24, "width": 80},
                "process.cwd": "/srv",
                "process.rlimits": [
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615},
                    {"type": "RLIMIT_LOCKS", "soft": 5, "hard": 5},
                ],
                "linux.rootfsPropagation": "rslave",
                "linux.devices": [{"path": "/dev/fifo", "type": "p"}],
                "linux.namespaces": [{"type": "pid"}, {"type": "network", "path": ""}],
                "mounts": [{"destination": "/data"}],
            }
        ),
        "/b",
    )
    assert spec.root.readonly and spec.process.terminal
    assert spec.process.console_size == (24, 80)
    assert spec.process.cwd == "/srv"
    core, locks = spec.process.rlimits
    assert (core.resource, core.soft, core.hard) == (
        resource.RLIMIT_CORE,
        0,
        resource.RLIM_INFINITY,
    )
    assert (locks.resource, locks.soft) == (10, 5)
    assert spec.linux.rootfs_propagation == "rslave"
    assert spec.linux.devices == (Device("/dev/fifo", "p"),)
    assert spec.linux.namespaces == (Namespace("pid"), Namespace("network"), Namespace("mount"))
    assert spec.mounts == (Mount("/data", "", ""),)


def test_tables() -> None:
    assert len(CAPABILITY_NAMES) == 41
    assert CAPABILITY_NAMES.index("CAP_SYS_RESOURCE") == 24
    assert CAPABILITY_NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert set(defaults.CAPABILITIES) <= set(CAPABILITY_NAMES)
    assert len(RLIMITS) == 16
    for name, number in RLIMITS.items():
        assert number == getattr(resource, name, 10)


# ---- reading the file ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        load_spec("config.json")
    assert str(info.value) == f"config.json: no such file: {tmp_path / 'config.json'}"


def test_directory_and_bad_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(SpecError, match=r"^config\.json: is a directory: "):
        load_spec(tmp_path / "config.json")
    (tmp_path / "b.json").write_bytes(b'{"ociVersion": "\xff"}')
    with pytest.raises(SpecError, match=r"^b\.json: not valid UTF-8"):
        load_spec(tmp_path / "b.json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "line 1 column 2: Expecting property name enclosed in double quotes"),
        ('{\n  "a": 1,\n  "b": ]\n}', "line 3 column 8: Expecting value"),
        ("", "line 1 column 1: Expecting value"),
        ('{"a": 1} x', "line 1 column 10: Extra data"),
    ],
)
def test_invalid_json_names_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "config.json")
    assert str(info.value) == f"config.json: invalid JSON at {expected}"


def test_error_prefix_is_the_file_basename(tmp_path: Path) -> None:
    (tmp_path / "my.json").write_text(json.dumps(edited({"process.cwd": "x"})))
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "my.json")
    assert str(info.value) == "my.json: process.cwd: must be an absolute path"
    assert spec_error(edited({"process.cwd": "x"}), "generated spec").startswith(
        "generated spec: process.cwd: "
    )


# ---- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["1.0.0", "1.0.2-dev", "1.0", "1.1.0", "1.2.1", "1.3.0", "1.3.7+build.5"]
)
def test_known_versions_load_quietly(version: str) -> None:
    spec = parse_spec(edited({"ociVersion": version}), "/b")
    assert spec.oci_version == version
    assert spec.warnings == ()


@pytest.mark.parametrize("version", ["1.4.0", "1.10.1-rc.1"])
def test_newer_1x_versions_load_with_a_warning(version: str) -> None:
    spec = parse_spec(edited({"ociVersion": version}), "/b")
    assert len(spec.warnings) == 1
    assert spec.warnings[0].startswith(f"config.json: ociVersion {version} is newer than 1.3")


@pytest.mark.parametrize("version", ["2.0.0", "0.9", "0.9.1", "abc", "1", "", "v1.0.0", "1.x.0"])
def test_other_versions_are_refused(version: str) -> None:
    assert spec_error(edited({"ociVersion": version})).startswith("config.json: ociVersion: ")


@pytest.mark.parametrize("value", [DELETE, 1.0, None])
def test_version_missing_or_not_a_string(value: object) -> None:
    assert spec_error(edited({"ociVersion": value})).startswith("config.json: ociVersion: ")


# ---- bad input: each names its field ---------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    ({"process.cwd": "relative"}, "process.cwd: must be an absolute path"),
    ({"process.cwd": 5}, "process.cwd: must be a string"),
    ({"process": DELETE}, "process: is required"),
    ({"process": "sh"}, "process: must be an object"),
    ({"process.args": DELETE}, "process.args: is required"),
    ({"process.args": []}, "process.args: must not be empty"),
    ({"process.args": "sh"}, "process.args: must be a list of strings"),
    ({"process.args": ["sh", 1]}, "process.args: must be a list of strings"),
    ({"process.args": [""]}, "process.args[0]: must not be empty"),
    ({"process.env": ["PATH=/bin", "FOO"]}, "process.env[1]: 'FOO' is not KEY=VALUE"),
    ({"process.env": ["=x"]}, "process.env[0]: "),
    ({"process.env": "PATH=/bin"}, "process.env: must be a list of strings"),
    ({"process.terminal": "yes"}, "process.terminal: must be true or false"),
    ({"process.terminal": 1}, "process.terminal: must be true or false"),
    ({"process.noNewPrivileges": "true"}, "process.noNewPrivileges: must be true or false"),
    ({"process.user": 0}, "process.user: must be an object"),
    ({"process.user.uid": -1}, "process.user.uid: must be a non-negative integer"),
    ({"process.user.uid": "0"}, "process.user.uid: must be a non-negative integer"),
    ({"process.user.uid": True}, "process.user.uid: must be a non-negative integer"),
    ({"process.user.gid": 1.5}, "process.user.gid: must be a non-negative integer"),
    ({"process.user.gid": 2**32}, "process.user.gid: must be at most"),
    ({"process.user.additionalGids": ["1"]}, "process.user.additionalGids[0]: "),
    ({"process.user.additionalGids": 1}, "process.user.additionalGids: must be a list of"),
    ({"process.user.umask": "022"}, "process.user.umask: "),
    ({"process.user.umask": 0o1000}, "process.user.umask: must be at most 511"),
    ({"process.rlimits": {}}, "process.rlimits: must be a list of objects"),
    ({"process.rlimits": ["x"]}, "process.rlimits[0]: must be an object"),
    (
        {"process.rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]},
        "process.rlimits[0].type: unknown limit 'RLIMIT_FOO'",
    ),
    (
        {"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]},
        "process.rlimits[0].hard: is required",
    ),
    (
        {"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]},
        "process.rlimits[0]: RLIMIT_NOFILE soft limit 10 is above its hard limit 5",
    ),
    (
        {"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 5}]},
        "process.rlimits[0].soft: must be a non-negative integer",
    ),
    (
        {"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2**64}]},
        "process.rlimits[0].hard: must be at most 18446744073709551615",
    ),
    (
        {
            "process.rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2},
            ]
        },
        "process.rlimits[1].type: RLIMIT_NOFILE is given twice",
    ),
    ({"process.capabilities": "all"}, "process.capabilities: must be an object"),
    (
        {"process.capabilities": {"bounding": ["CAP_CHOWN", "CAP_FOO"]}},
        "process.capabilities.bounding: unknown capability 'CAP_FOO'",
    ),
    (
        {"process.capabilities": {"ambient": ["cap_chown"]}},
        "process.capabilities.ambient: unknown capability 'cap_chown'",
    ),
    (
        {"process.capabilities": {"effective": "CAP_CHOWN"}},
        "process.capabilities.effective: must be a list of strings",
    ),
    ({"process.consoleSize": {"height": 24}}, "process.consoleSize.width: is required"),
    (
        {"process.consoleSize": {"height": -1, "width": 80}},
        "process.consoleSize.height: must be a non-negative integer",
    ),
    ({"hostname": "bad host"}, "hostname: 'bad host' may hold only"),
    ({"hostname": "a" * 65}, "hostname: must be at most 64 characters"),
    ({"hostname": "-x"}, "hostname: '-x' is not a valid hostname"),
    ({"hostname": 5}, "hostname: must be a string"),
    ({"root": DELETE}, "root: is required"),
    ({"root": "rootfs"}, "root: must be an object"),
    ({"root.path": DELETE}, "root.path: is required"),
    ({"root.path": 5}, "root.path: must be a string"),
    ({"root.path": ""}, "root.path: must not be empty"),
    ({"root.readonly": "no"}, "root.readonly: must be true or false"),
    ({"mounts": {}}, "mounts: must be a list of objects"),
    ({"mounts": [5]}, "mounts[0]: must be an object"),
    ({"mounts": [{"type": "tmpfs"}]}, "mounts[0].destination: is required"),
    ({"mounts": [{"destination": "tmp"}]}, "mounts[0].destination: must be an absolute path"),
    ({"mounts": [{"destination": "/t", "type": 5}]}, "mounts[0].type: must be a string"),
    ({"mounts": [{"destination": "/t", "source": []}]}, "mounts[0].source: must be a string"),
    (
        {"mounts": [{"destination": "/t", "options": "ro"}]},
        "mounts[0].options: must be a list of strings",
    ),
    ({"linux": "x"}, "linux: must be an object"),
    ({"linux.namespaces": {}}, "linux.namespaces: must be a list of objects"),
    ({"linux.namespaces": [{}]}, "linux.namespaces[0].type: is required"),
    ({"linux.namespaces": [{"type": "pidd"}]}, "linux.namespaces[0].type: 'pidd' is not one of"),
    (
        {"linux.namespaces": [{"type": "pid"}, {"type": "pid"}]},
        "linux.namespaces[1].type: pid is given twice",
    ),
    (
        {"linux.namespaces": [{"type": "network", "path": "run/netns/x"}]},
        "linux.namespaces[0].path: must be an absolute path",
    ),
    ({"linux.devices": [{"type": "c"}]}, "linux.devices[0].path: is required"),
    (
        {"linux.devices": [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]},
        "linux.devices[0].path: must be an absolute path",
    ),
    (
        {"linux.devices": [{"path": "/dev/x", "type": "x"}]},
        "linux.devices[0].type: 'x' is not one of c, b, u, p",
    ),
    (
        {"linux.devices": [{"path": "/dev/x", "type": "c", "minor": 3}]},
        "linux.devices[0].major: is required for type 'c'",
    ),
    (
        {"linux.devices": [{"path": "/dev/x", "type": "b", "major": -1, "minor": 3}]},
        "linux.devices[0].major: must be a non-negative integer",
    ),
    (
        {
            "linux.devices": [
                {"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": "0666"}
            ]
        },
        "linux.devices[0].fileMode: must be a non-negative integer",
    ),
    ({"linux.maskedPaths": ["proc/kcore"]}, "linux.maskedPaths[0]: must be an absolute path"),
    ({"linux.readonlyPaths": "/proc"}, "linux.readonlyPaths: must be a list of strings"),
    ({"linux.rootfsPropagation": "weird"}, "linux.rootfsPropagation: 'weird' is not one of"),
    ({"linux.cgroupsPath": 5}, "linux.cgroupsPath: must be a string"),
    ({"linux.resources": []}, "linux.resources: must be an object"),
    ({"linux.sysctl": {"net.ipv4.ip_forward": 1}}, "linux.sysctl.net.ipv4.ip_forward: must be"),
    ({"annotations": []}, "annotations: must be an object"),
    ({"annotations": {"a": 1}}, "annotations.a: must be a string"),
]


@pytest.mark.parametrize(("changes", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_input_names_the_field(changes: dict[str, Any], expected: str) -> None:
    message = spec_error(edited(changes))
    assert message.startswith(f"config.json: {expected}"), message


@pytest.mark.parametrize("data", [[], "x", None, 5])
def test_top_level_must_be_an_object(data: object) -> None:
    assert spec_error(data) == "config.json: must be a JSON object"


# ---- unsupported fields ----------------------------------------------------------------------


def _with_unsupported(name: str) -> dict[str, Any]:
    if name.startswith("linux.namespaces."):
        kind = name.rpartition(".")[2]
        return edited({"linux.namespaces": [{"type": "pid"}, {"type": kind}]})
    if name.startswith("mounts."):
        return edited({"mounts": [{"destination": "/t", name.partition(".")[2]: [{"x": 1}]}]})
    return edited({name: {"x": 1}})


@pytest.mark.parametrize("name", UNSUPPORTED_FIELDS)
def test_each_unsupported_field_is_listed_not_an_error(name: str) -> None:
    spec = parse_spec(_with_unsupported(name), "/b")
    assert spec.unsupported == (name,)
    if name.startswith("linux.namespaces."):
        assert spec.linux.namespaces == (Namespace("pid"), Namespace("mount"))
    elif name.startswith("linux."):  # a linux section without namespaces: inherited
        assert spec.linux.namespaces == (Namespace("mount"),)
    else:
        assert spec.linux.namespaces == defaults.NAMESPACES


def test_unknown_keys_are_listed_in_file_order_and_empty_ones_skipped() -> None:
    data = edited(
        {
            "x-custom": 1,
            "zos": {"x": 1},
            "windows": {},
            "solaris": None,
            "process.ioPriority": {"class": "IOPRIO_CLASS_IDLE"},
            "process.user.username": "root",
            "linux.seccomp": {"defaultAction": "SCMP_ACT_ALLOW"},
            "linux.personality": {"domain": "LINUX"},
            "linux.uidMappings": [],
            "linux.future": True,
            "root.idmap": "x",
        }
    )
    data["mounts"] = [{"destination": "/a", "gidMappings": [], "extra": 1}] * 2
    spec = parse_spec(data, "/b")
    assert spec.unsupported == (
        "x-custom",
        "zos",
        "root.idmap",
        "process.ioPriority",
        "process.user.username",
        "mounts.extra",
        "linux.personality",
        "linux.future",
    )


def test_time_namespace_is_refused() -> None:
    # fail closed: a namespace asked for and not made is less isolation than asked
    message = spec_error(edited({"linux.namespaces": [{"type": "uts"}, {"type": "time"}]}))
    assert message == (
        "config.json: linux.namespaces[1].type: time namespaces are not implemented "
        "(runc 1.1 refuses them too)"
    )


# ---- starter spec ----------------------------------------------------------------------------


def test_starter_spec_round_trips(tmp_path: Path) -> None:
    data = starter_spec(["/bin/sh", "-c", "echo hi"], hostname="starter", terminal=True)
    assert data["ociVersion"] == "1.0.2"
    assert data["root"] == {"path": "rootfs", "readonly": False}
    (tmp_path / "config.json").write_text(fastjson.dumps(data, indent=2))
    for spec in (parse_spec(data, str(tmp_path)), load_spec(tmp_path / "config.json")):
        assert spec.oci_version == "1.0.2"
        assert spec.root.path == str(tmp_path / "rootfs")
        assert spec.hostname == "starter"
        p = spec.process
        assert p.args == ("/bin/sh", "-c", "echo hi")
        assert p.env == defaults.DEFAULT_ENV
        assert p.cwd == "/" and p.terminal is True and p.no_new_privileges is True
        assert p.user == User(0, 0)
        caps = defaults.CAPABILITIES
        assert p.capabilities == Capabilities(bounding=caps, effective=caps, permitted=caps)
        assert spec.mounts == defaults.MOUNTS and not spec.default_mounts
        assert spec.linux.namespaces == defaults.NAMESPACES and not spec.default_namespaces
        assert spec.linux.masked_paths == defaults.MASKED_PATHS
        assert spec.linux.readonly_paths == defaults.READONLY_PATHS
        assert spec.unsupported == () and spec.warnings == ()


def test_starter_spec_without_hostname_and_with_absolute_rootfs() -> None:
    data = starter_spec(["true"], rootfs="/srv/rootfs")
    assert "hostname" not in data
    assert data["process"]["terminal"] is False
    spec = parse_spec(data, "/elsewhere")
    assert spec.hostname is None
    assert spec.root.path == "/srv/rootfs"


def test_starter_spec_lists_are_fresh() -> None:
    data = starter_spec(["true"])
    data["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    data["mounts"][0]["options"].append("ro")
    assert "CAP_SYS_ADMIN" not in data["process"]["capabilities"]["effective"]
    assert starter_spec(["true"])["mounts"][0]["options"] == list(defaults.MOUNTS[0].options)
