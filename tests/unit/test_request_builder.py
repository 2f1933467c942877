"""The runtime's request builder, size and signal parsers: pure logic, no root, no fork."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tuibox.runtime import BoxRequest
from tuibox.runtime.errors import SpecError, TuiboxError
from tuibox.runtime.units import parse_signal, parse_size

# ---- sizes: what the CLI (--memory) and the TUI (its form) both accepted, plus "-1" -------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256m", 256 << 20),
        ("1G", 1 << 30),
        ("1g", 1 << 30),
        ("12", 12),
        ("4096b", 4096),
        ("64MB", 64 << 20),
        ("1.5GiB", 3 << 29),
        ("1.5g", 3 << 29),
        ("2k", 2048),
        ("1t", 1 << 40),
        (" 256m ", 256 << 20),
        ("256 m", 256 << 20),
        ("256 mb", 256 << 20),
        ("-1", -1),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "", "m", "12q", "-5", "1e9", ".5m", "5.m", "1.2.3g"])
def test_bad_sizes_name_the_field(bad: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_size(bad, "memory")
    assert str(e.value) == f"memory {bad!r}: not a size (a number with b, k, m, g or t)"


# ---- signals: the CLI's kill and the TUI's signal menu ----------------------------------


@pytest.mark.parametrize(
    ("text", "num"),
    [
        (None, signal.SIGTERM),
        ("TERM", signal.SIGTERM),
        ("sigterm", signal.SIGTERM),
        ("SIGKILL", signal.SIGKILL),
        ("kill", signal.SIGKILL),
        ("hup", signal.SIGHUP),
        ("9", 9),
        ("SIG9", 9),
        ("64", 64),
    ],
)
def test_signals(text: str | None, num: int) -> None:
    assert parse_signal(text) == num


def test_signal_names_as_the_signal_module_knows_them() -> None:
    # parse_signal reads _signal's constants (no enum on `kill`'s path): the same answers,
    # aliases (IOT, CLD, POLL) included, in either spelling.
    import signal

    for sig in signal.Signals:
        for text in (sig.name, sig.name.removeprefix("SIG").lower()):
            assert parse_signal(text) == int(sig), text
    for alias in ("SIGIOT", "SIGCLD", "SIGPOLL"):
        assert parse_signal(alias) == int(getattr(signal, alias))


@pytest.mark.parametrize(
    "bad", ["NOPE", "0", "65", "-9", "", "SIG", "_DFL", "SIG_IGN", "SIG_BLOCK", "NSIG"]
)
def test_bad_signals(bad: str) -> None:
    with pytest.raises(SpecError, match=f"invalid signal {bad!r}"):
        parse_signal(bad)


# ---- the builder --------------------------------------------------------------------------


def bundle(tmp_path: Path, **process: object) -> Path:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/", "env": ["A=1"], **process},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_from_bundle_with_options(tmp_path: Path) -> None:
    req = BoxRequest.from_bundle(
        "b1",
        str(bundle(tmp_path)),
        command=["/bin/echo", "hi"],
        env=["B=2", "A=3"],
        workdir="/tmp",
        user="1000:100",
        terminal=True,
        hostname="h",
        read_only=True,
        memory="64m",
        cpus=0.5,
        pids_limit=20,
        no_new_keyring=True,
    )
    p = req.spec.process
    assert (req.name, req.detach, req.image) == ("b1", True, None)
    assert p.args == ("/bin/echo", "hi") and p.cwd == "/tmp" and p.terminal
    assert p.env == ("A=3", "B=2")
    assert (p.user.uid, p.user.gid) == (1000, 100)
    assert req.spec.hostname == "h" and req.spec.root.readonly
    assert req.spec.root.path == str(tmp_path / "rootfs")
    assert req.spec.linux.resources["memory"] == {"limit": 64 << 20}
    assert req.spec.linux.resources["pids"] == {"limit": 20}
    assert req.spec.linux.seccomp is None  # a bundle keeps its own (none)
    assert req.options == {"no_new_keyring": True}


def test_from_rootfs_gets_the_default_seccomp_profile(tmp_path: Path) -> None:
    req = BoxRequest.from_rootfs("r1", str(tmp_path), ["/bin/sh", "-c", "true"], detach=False)
    assert req.spec.process.args == ("/bin/sh", "-c", "true") and not req.detach
    assert req.spec.linux.seccomp is not None
    bare = BoxRequest.from_rootfs(
        "r1", str(tmp_path), seccomp="unconfined", userns="auto", env={"X": "1"}
    )
    assert "X=1" in bare.spec.process.env
    assert bare.spec.linux.seccomp is None and bare.spec.process.args == ("/bin/sh",)
    assert bare.options["userns"] == {"auto": True}


@pytest.mark.parametrize(
    ("options", "field_worded", "cli_worded"),
    [
        ({"memory": "lots"}, "memory 'lots': not a size", "--memory 'lots': not a size"),
        ({"memory": "1m"}, "memory '1m': the minimum is 6m", "--memory '1m': the minimum"),
        ({"pids_limit": "x"}, "pids_limit 'x': must be an integer", "--pids-limit 'x'"),
        ({"cpus": "0"}, "cpus '0': must be from 0.01", "--cpus '0': must be from 0.01"),
        ({"env": ["=1"]}, "env '=1': must be KEY=VALUE", "--env '=1': must be KEY=VALUE"),
        ({"workdir": "tmp"}, "workdir: must be an absolute path", "--workdir: must be"),
        ({"user": "me"}, "user 'me': must be UID or UID:GID", "--user 'me': must be UID"),
        ({"user": "-1"}, "user '-1': ids must not be negative", "--user '-1': ids must"),
        ({"userns": "x"}, "userns 'x': must be auto or host", "--userns 'x': must be auto"),
        (
            {"console_socket": "/s"},
            "console_socket: the box has no terminal (use terminal=True)",
            "--console-socket: the box has no terminal (use -t)",
        ),
        (
            {"network": "none", "publish": ["80:80"]},
            "publish needs a network (not network none)",
            "--publish needs a network (not --network none)",
        ),
        (
            {"network": "n", "netconf": "f"},
            "use either netconf or network, not both",
            "use either --netconf or --network, not both",
        ),
    ],
)
def test_errors_are_field_worded_unless_named(
    tmp_path: Path, options: dict[str, object], field_worded: str, cli_worded: str
) -> None:
    from tuibox.cli.lifecycle import FLAG_NAMES

    for names, words in (({}, field_worded), (FLAG_NAMES, cli_worded)):
        with pytest.raises(SpecError) as e:
            BoxRequest.from_rootfs("r1", str(tmp_path), names=names, **options)
        assert str(e.value).startswith(words) and "\n" not in str(e.value)


def test_bad_name_and_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(TuiboxError, match="name"):
        BoxRequest.from_rootfs("../x", str(tmp_path))
    with pytest.raises(TypeError, match="memroy"):
        BoxRequest.from_rootfs("r1", str(tmp_path), memroy="1g")


def test_from_image_unknown_image(tmp_path: Path) -> None:
    with pytest.raises(TuiboxError, match="nope"):
        BoxRequest.from_image("i1", "nope", data_root=str(tmp_path), root=str(tmp_path / "s"))


def test_a_failed_build_reaps_the_early_network_worker(tmp_path: Path) -> None:
    # Single-threaded: the builder forks the netlink worker first, then the memory fails.
    code = f"""
import os
from tuibox.runtime import BoxRequest, SpecError
try:
    BoxRequest.from_rootfs("r1", {str(tmp_path)!r}, network="default", memory="lots")
except SpecError as e:
    print(e)
try:
    os.waitpid(-1, os.WNOHANG)
    print("a child is left")
except ChildProcessError:
    print("no child")
"""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out == "memory 'lots': not a size (a number with b, k, m, g or t)\nno child\n"
