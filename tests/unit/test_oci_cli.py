"""Pure logic of runc's command-line contract: the engine-mode rule, systemd cgroup paths,
durations, --log lines, and ambient capabilities as the kernel keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuibox import cli
from tuibox.cli.args import parse
from tuibox.cli.lifecycle import CreateOptions, engine_mode, systemd_path
from tuibox.cli.oci import parse_duration
from tuibox.runtime.errors import SpecError
from tuibox.runtime.linux import capabilities as caps
from tuibox.runtime.spec import parse_spec


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("machine.slice:libpod:abc", "/machine.slice/libpod-abc.scope"),
        ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
        ("a-b-c.slice:p:n", "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"),
        (":crio:n", "/system.slice/crio-n.scope"),
        ("-.slice:p:n", "/p-n.scope"),
        ("user.slice::n", "/user.slice/n.scope"),
        ("machine.slice:p:pod.slice", "/machine.slice/pod.slice"),
    ],
)
def test_systemd_paths_as_runcs_driver_names_them(path: str, want: str) -> None:
    assert systemd_path(path) == want


@pytest.mark.parametrize("path", ["a:b", "x.scope:p:n", "a--b.slice:p:n", "m.slice:p:", "a:b:c:d"])
def test_bad_systemd_paths_are_refused(path: str) -> None:
    with pytest.raises(SpecError, match="cgroupsPath"):
        systemd_path(path)


def test_engine_mode_is_the_log_or_a_pid_file() -> None:
    g = cli.Globals()
    plain = parse(CreateOptions, ["box"])
    with_pid = parse(CreateOptions, ["--pid-file", "p", "box"])
    assert not engine_mode(plain, g)
    assert engine_mode(with_pid, g)
    g.log = "/x/log"
    assert engine_mode(plain, g)


@pytest.mark.parametrize(("text", "want"), [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0)])
def test_durations(text: str, want: float) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["5", "fast", "-1s", "0s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SpecError, match="--interval"):
        parse_duration(text)


def test_errors_and_warnings_go_to_the_log_as_runcs_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    code = cli.main(
        ["--log", str(log), "--log-format", "json", "--root", str(tmp_path), "state", "nope"]
    )
    cli.warn("a warning")
    cli.LOG.clear()
    assert code != 0
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [ln["level"] for ln in lines] == ["error", "warning"]
    assert lines[0]["msg"] == "box 'nope' does not exist"
    assert set(lines[0]) == {"level", "msg", "time"}
    assert lines[0]["time"].endswith("Z")
    err = capsys.readouterr().err
    assert err.startswith("tuibox: error: box 'nope' does not exist")  # errors: both, as runc
    assert "a warning" not in err  # warnings: the log only (stderr may be the box's output)


def test_text_log_format(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cli.main(["--log-format=text", "--log", str(log), "--root", str(tmp_path), "state", "nope"])
    cli.LOG.clear()
    line = log.read_text()
    assert line.startswith('time="') and "level=error msg=\"box 'nope' does not exist\"" in line


def test_runc_spec_ambient_set_is_kept_to_what_the_kernel_allows() -> None:
    """`runc spec` lists ambient capabilities with no inheritable set: the kernel would
    refuse to raise them (and runc leaves them out), so they are dropped, not refused."""
    data = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {
            "args": ["sh"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL", "CAP_CHOWN"],
                "inheritable": ["CAP_CHOWN"],
                "ambient": ["CAP_KILL", "CAP_CHOWN"],
            },
        },
    }
    spec = parse_spec(data, "/tmp", "config.json")
    sets = caps.resolve(spec.process.capabilities, ())
    assert caps.names(sets.ambient) == ["CAP_CHOWN"]  # in both permitted and inheritable
    assert caps.inconsistent(sets) is None


def test_debug_writes_the_command_line_into_the_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cli.main(
        [
            "--debug",
            "--log",
            str(log),
            "--log-format",
            "json",
            "--root",
            str(tmp_path),
            "list",
            "-q",
        ]
    )
    cli.LOG.clear()
    first = json.loads(log.read_text().splitlines()[0])
    assert (first["level"], first["msg"]) == ("debug", "tuibox list -q")
