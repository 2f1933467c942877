"""The service layer without a screen: parsing, errors, the CLI subprocess, logs, helpers."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fake_backend import NOW

from tuibox.app import keymap_from_env
from tuibox.runtime.errors import TuiboxError
from tuibox.runtime.units import parse_size
from tuibox.screens.processes import tree_order
from tuibox.service import (
    BoxRow,
    CliBackend,
    CreateOptions,
    InProcessBackend,
    ProcessRow,
    ServiceError,
    ServiceUnavailable,
    StatsRow,
    allowed,
    error_from_cli,
    make_backend,
    read_log_chunk,
    signal_number,
    verbs_in_help,
)
from tuibox.widgets.format import human_bytes, human_duration
from tuibox.widgets.sparklines import StatsHistory, window

LIST_JSON = [
    {
        "id": "web",
        "status": "running",
        "pid": 4242,
        "bundle": "/b/web",
        "rootfs": "/r",
        "image": "busybox",
        "command": ["httpd", "-f"],
        "hostname": "web",
        "created": "2026-11-28T11:00:00Z",
        "started": "2026-11-28T11:00:01+00:00",
        "exit_status": None,
        "terminal": False,
        "address": "10.88.0.2",
        "ports": ["8080:80"],
        "log": "/run/tuibox/web/box.log",
        "namespaces": ["pid", "net"],
        "cgroup": "/sys/fs/cgroup/tuibox/web",
        "limits": {"memory": 268435456, "cpus": 0.5, "pids": None},
    },
    {"id": "bare", "status": "created"},  # an older CLI: most fields missing
]


def test_box_row_from_json() -> None:
    web, bare = (BoxRow.from_json(d) for d in LIST_JSON)
    assert web.command == ("httpd", "-f") and web.ports == ("8080:80",)
    assert web.started is not None and web.started.isoformat() == "2026-11-28T11:00:01+00:00"
    assert web.limits.memory == 256 * 1024 * 1024 and web.limits.pids is None
    assert web.source == "busybox"
    assert bare.pid == 0 and bare.command == () and bare.created is None and bare.log == ""


def test_error_from_cli_keeps_the_runtime_line() -> None:
    err = error_from_cli(
        "start",
        125,
        "warning: x\ntuibox: error: cannot start box 'a': it is running, it must be created\n",
    )
    assert type(err) is ServiceError
    assert err.message == "cannot start box 'a': it is running, it must be created"


def test_error_from_cli_unavailable_verbs() -> None:
    kind = '{{"tuibox_error": {{"kind": "{}", "class": "X", "exit_code": 2}}}}\n'
    err = error_from_cli(
        "ps",
        2,
        "tuibox: error: unknown command 'ps' (see 'tuibox --help')\n"
        + kind.format("unknown-command"),
    )
    assert isinstance(err, ServiceUnavailable) and err.verb == "ps"
    assert err.message == "unknown command 'ps' (see 'tuibox --help')"
    opt = error_from_cli(
        "run", 2, "tuibox: error: run: unknown option --memory\n" + kind.format("unknown-option")
    )
    assert isinstance(opt, ServiceUnavailable) and opt.kind == "unknown-option"
    # The kind decides, not the text: no kind line, no greying out.
    assert type(error_from_cli("run", 2, "tuibox: error: run: unknown option --m\n")) is (
        ServiceError
    )


def test_error_from_cli_traceback_and_silence() -> None:
    tb = "Traceback (most recent call last):\n  File x\nKeyError: 'pid'\n"
    assert error_from_cli("list", 1, tb).message == "tuibox list crashed: KeyError: 'pid'"
    assert error_from_cli("stop", 137, "").message == "tuibox stop failed with exit status 137"


def test_create_options_to_args() -> None:
    assert CreateOptions("a").to_args() == [
        "run",
        "-d",
        "--image",
        "busybox",
        "-t",
        "--",
        "a",
        "/bin/sh",
    ]
    opts = CreateOptions("b", rootfs="/r", terminal=False, command=("-x",), pids="10", cpus="1")
    assert opts.to_args() == [
        "run",
        "-d",
        "--rootfs",
        "/r",
        "--cpus",
        "1",
        "--pids-limit",
        "10",
        "--",
        "b",
        "-x",
    ]


def test_guards_come_from_the_runtime() -> None:
    assert allowed("start", "created") and not allowed("start", "running")
    assert allowed("pause", "running") and not allowed("pause", "paused")
    assert allowed("destroy", "running")  # the TUI asks, then forces
    assert allowed("shell", "running") and not allowed("shell", "created")


def test_verbs_in_help() -> None:
    text = "usage: tuibox ...\n\nverbs:\n  create     make\n  start      go\n\nmore text\n"
    assert verbs_in_help(text) == {"create", "start"}


def test_parse_size_and_signals() -> None:
    # The runtime's one size parser (tests/unit/test_units.py has the rest).
    assert parse_size("256m") == 256 * 1024 * 1024 and parse_size("1G") == 1 << 30
    assert parse_size("12") == 12 and parse_size("-1") == -1
    with pytest.raises(TuiboxError):
        parse_size("lots")
    assert signal_number("KILL") == 9 and signal_number("sigterm") == 15 and signal_number("9") == 9
    with pytest.raises(ServiceError, match="invalid signal"):
        signal_number("NOPE")


def test_read_log_chunk(tmp_path: Path) -> None:
    log = tmp_path / "box.log"
    with pytest.raises(ServiceError, match="no log file"):
        read_log_chunk("", 0)
    assert read_log_chunk(str(log), 0).data == b""  # not written yet
    log.write_bytes(b"one\ntwo\n")
    first = read_log_chunk(str(log), 0)
    assert first.data == b"one\ntwo\n" and first.offset == 8 and not first.reset
    with log.open("ab") as f:
        f.write(b"three\n")
    assert read_log_chunk(str(log), first.offset).data == b"three\n"
    log.write_bytes(b"new\n")  # truncated and rewritten
    again = read_log_chunk(str(log), 14)
    assert again.reset and again.data == b"new\n"
    assert read_log_chunk(str(log), 0, limit=2).data == b"ne"


def test_read_log_chunk_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "box.log"
    log.write_bytes(b"0123456789")
    first = read_log_chunk(str(log), 0)
    with log.open("ab") as f:
        f.write(b"abcd")  # written just before the cap...
    log.rename(tmp_path / "box.log.1")  # ...then rotated (runtime/logfile.py)
    log.write_bytes(b"XY")
    rest = read_log_chunk(str(log), first.offset, limit=3)
    assert (rest.data, rest.offset, rest.reset) == (b"abc", 13, False)
    last = read_log_chunk(str(log), rest.offset, limit=3)
    assert (last.data, last.offset, last.reset) == (b"d", 0, False)
    assert read_log_chunk(str(log), last.offset).data == b"XY"


def test_tree_order_by_host_ppids() -> None:
    def p(pid: int, box_pid: int, ppid: int) -> ProcessRow:
        return ProcessRow(pid, box_pid, ppid, "root", "S", 0.0, 0, NOW, f"cmd{box_pid}")

    host = [p(100, 1, 99), p(103, 4, 101), p(101, 2, 100), p(102, 3, 100)]
    assert [(r.box_pid, pre) for r, pre in tree_order(host)] == [
        (1, ""), (2, "├─ "), (4, "│  └─ "), (3, "└─ "),
    ]  # fmt: skip
    cycle = [p(100, 1, 101), p(101, 2, 100)]
    assert sorted(r.pid for r, _ in tree_order(cycle)) == [100, 101]


def test_stats_history_window_and_forgetting() -> None:
    h = StatsHistory(size=3)
    for cpu in (1.0, 2.0, 3.0, 4.0):
        h.record([StatsRow("a", cpu_percent=cpu, memory_usage=10)], alive=["a"])
    assert h.cpu_of("a") == [2.0, 3.0, 4.0]
    h.record([], alive=[])
    assert h.cpu_of("a") == [] and "a" not in h.latest
    assert window([5.0], 4) == [0.0, 0.0, 0.0, 5.0]


def test_formatting() -> None:
    assert human_bytes(512) == "512B" and human_bytes(3 * 1024 * 1024) == "3.0M"
    assert human_duration(59) == "59s" and human_duration(3723) == "1h02m"
    assert human_duration(90061) == "1d01h" and human_duration(None) == "-"


def test_keymap_from_env() -> None:
    assert keymap_from_env("box.start=S, box.stop=X") == {"box.start": "S", "box.stop": "X"}
    assert keymap_from_env("app.help=f1,question_mark;box.kill=K") == {
        "app.help": "f1,question_mark",
        "box.kill": "K",
    }
    assert keymap_from_env(None) == {}


# ---- the CLI backend, with a stand-in for `python -m tuibox`

FAKE_CLI = r"""#!{python}
import json, sys, time
args = sys.argv[1:]
assert args[:2] == ["-m", "tuibox"], args
words = args[2:]
glob = {{}}
while words and words[0] in ("--root", "--data-root"):
    glob[words[0]] = words[1]
    words = words[2:]
with open({record!r}, "a") as f:
    f.write(json.dumps({{"globals": glob, "words": words}}) + "\n")
verb = words[0]
if verb == "list":
    print({list_json!r})
elif verb == "stats":
    print("not json")
elif verb == "ps":
    sys.stderr.write("tuibox: error: unknown command 'ps' (see 'tuibox --help')\n")
    sys.stderr.write('{{"tuibox_error": {{"kind": "unknown-command", "exit_code": 2}}}}\n')
    sys.exit(2)
elif verb == "start":
    sys.stderr.write("tuibox: error: cannot start box 'a': it is running, it must be created\n")
    sys.exit(125)
elif verb == "stop":
    time.sleep(30)
elif verb == "--help":
    print("usage\n\nverbs:\n  list   l\n  start  s\n  ps     p\n  exec   e\n  attach a\n")
elif verb == "attach":  # listed in the help, but its module has not landed
    sys.stderr.write("Traceback (most recent call last):\n")
    sys.stderr.write("ModuleNotFoundError: No module named 'tuibox.cli.attach'\n")
    sys.exit(1)
"""


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliBackend, Path]:
    record = tmp_path / "calls.jsonl"
    script = tmp_path / "fake-python"
    script.write_text(
        FAKE_CLI.format(python=sys.executable, record=str(record), list_json=json.dumps(LIST_JSON))
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return CliBackend(str(tmp_path / "state"), str(tmp_path / "data"), python=str(script)), record


def test_cli_backend_list_passes_the_roots(cli: tuple[CliBackend, Path], tmp_path: Path) -> None:
    backend, record = cli
    boxes = asyncio.run(backend.list_boxes())
    assert [b.name for b in boxes] == ["web", "bare"]
    call = json.loads(record.read_text().splitlines()[0])
    assert call["globals"] == {
        "--root": str(tmp_path / "state"),
        "--data-root": str(tmp_path / "data"),
    }
    assert call["words"] == ["list", "--format", "json"]


def test_cli_backend_errors(cli: tuple[CliBackend, Path]) -> None:
    backend, _ = cli
    with pytest.raises(ServiceError) as e:
        asyncio.run(backend.start("a"))
    assert str(e.value) == "cannot start box 'a': it is running, it must be created"
    with pytest.raises(ServiceUnavailable, match="unknown command 'ps'"):
        asyncio.run(backend.processes("a"))
    with pytest.raises(ServiceError, match="invalid json"):
        asyncio.run(backend.stats())


def test_cli_backend_timeout_kills_the_reader(cli: tuple[CliBackend, Path]) -> None:
    backend, _ = cli
    with pytest.raises(ServiceError, match=r"did not finish in 0\.3 s"):
        asyncio.run(backend.call("stop", "x", timeout=0.3))


def test_cli_backend_probe(cli: tuple[CliBackend, Path]) -> None:
    backend, _ = cli
    missing = asyncio.run(backend.unavailable_verbs(["ps", "pause", "stats"]))
    assert set(missing) == {"pause", "stats"}
    assert "no 'pause' command" in missing["pause"]


def test_cli_backend_probe_asks_late_verbs_themselves(cli: tuple[CliBackend, Path]) -> None:
    backend, record = cli
    missing = asyncio.run(backend.unavailable_verbs(["ps", "exec", "attach"]))
    assert set(missing) == {"attach"}
    assert "'attach' does not work in this runtime yet" in missing["attach"]
    assert "No module named" in missing["attach"]
    asked = [json.loads(line)["words"] for line in record.read_text().splitlines()]
    assert ["exec", "--help"] in asked and ["ps", "--help"] not in asked


def test_cli_backend_shell_command(cli: tuple[CliBackend, Path]) -> None:
    backend, _ = cli
    argv = backend.shell_command("web")
    assert argv[-4:] == ["exec", "-it", "web", "/bin/sh"]


def test_cli_backend_terminal_commands(cli: tuple[CliBackend, Path], tmp_path: Path) -> None:
    backend, _ = cli
    shell = backend.terminal_command("web", "shell", "/bin/ash")
    assert shell.argv[-4:] == ("exec", "-it", "web", "/bin/ash")
    assert shell.argv[3:7] == (
        "--root",
        str(tmp_path / "state"),
        "--data-root",
        str(tmp_path / "data"),
    )
    attach = backend.terminal_command("web", "attach")
    # The pane keeps the detach key for itself: the attach client gets none.
    assert attach.argv[-4:] == ("attach", "--detach-keys", "", "web")
    assert attach.env is not None and attach.env["TERM"] == "xterm-256color"
    assert "COLUMNS" not in attach.env and "PYTHONPATH" in attach.env
    with pytest.raises(ValueError, match="unknown terminal mode"):
        backend.terminal_command("web", "spy")


def test_the_default_backend_queries_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUIBOX_TUI_BACKEND", raising=False)
    assert isinstance(make_backend("/tmp/r", "/tmp/d"), InProcessBackend)
    monkeypatch.setenv("TUIBOX_TUI_BACKEND", "cli")
    backend = make_backend("/tmp/r", "/tmp/d")
    assert type(backend) is CliBackend


def test_in_process_list_of_an_empty_root(tmp_path: Path) -> None:
    backend = InProcessBackend(str(tmp_path / "none"), str(tmp_path / "data"))
    assert asyncio.run(backend.list_boxes()) == []
    assert asyncio.run(backend.stats()) == []
    with pytest.raises(ServiceError, match="box 'web' does not exist"):
        asyncio.run(backend.processes("web"))


def test_cli_backend_spec_from_state_dir(tmp_path: Path) -> None:
    backend = CliBackend(str(tmp_path / "state"), str(tmp_path / "data"))
    box = BoxRow(id="web", status="running", bundle=str(tmp_path / "gone"))
    assert asyncio.run(backend.spec(box)) is None
    (tmp_path / "state" / "web").mkdir(parents=True)
    config = {
        "process": {"args": ["sh"], "user": {"uid": 1, "gid": 2}, "env": ["A=1"]},
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    (tmp_path / "state" / "web" / "config.json").write_text(json.dumps(config))
    spec = asyncio.run(backend.spec(box))
    assert spec is not None and spec.user == "1:2" and spec.readonly
    assert spec.mounts[0].destination == "/proc" and spec.namespaces == ("pid", "mount")


def test_the_real_cli_is_reachable_from_anywhere(tmp_path: Path) -> None:
    # PYTHONPATH is set by the backend, so a TUI started outside the repo still finds the CLI.
    backend = CliBackend(str(tmp_path / "state"), str(tmp_path / "data"))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert asyncio.run(backend.list_boxes()) == []
    finally:
        os.chdir(cwd)


def test_service_and_entry_point_do_not_import_textual() -> None:
    # The CLI imports tui_main only to open the TUI; the service is shared with non-UI code.
    code = (
        "import sys, tuibox.service, tuibox.tui_main\n"
        "assert 'textual' not in sys.modules, 'textual imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_create_request_is_checked_by_the_runtime_before_the_cli_is_spawned(
    tmp_path: Path,
) -> None:
    # A python that cannot run: reaching the spawn shows up as "cannot run the tuibox cli".
    backend = CliBackend(str(tmp_path / "state"), str(tmp_path / "data"), python="/nonexistent")
    rootfs = str(tmp_path)

    def run(**kw: object) -> str:
        opts = CreateOptions("a", rootfs=rootfs, **kw)  # type: ignore[arg-type]
        with pytest.raises(ServiceError) as info:
            asyncio.run(backend.run(opts))
        return info.value.message

    assert run(memory="lots") == "memory 'lots': not a size (a number with b, k, m, g or t)"
    assert run(pids="x") == "pids 'x': must be an integer"
    assert run(cpus="0") == "cpus '0': must be from 0.01 to 4096"
    assert run(env=("=v",)) == "env '=v': must be KEY=VALUE"
    # What the CLI accepts, the form accepts: "-1" is "no limit" (the old TUI parser refused it).
    assert run(memory="-1").startswith("cannot run the tuibox cli")
    assert run(memory="1.5GiB", pids="-1").startswith("cannot run the tuibox cli")


def test_create_request_from_a_thread_forks_no_network_worker(tmp_path: Path) -> None:
    opts = CreateOptions("a", rootfs=str(tmp_path), network=True, ports=("8080:80",))
    req = asyncio.run(asyncio.to_thread(opts.request, str(tmp_path), str(tmp_path)))
    assert req.options["network"] == {"name": "default", "ports": ["8080:80"], "worker": None}


def test_create_from_a_bundle_is_checked_before_the_cli_is_spawned(tmp_path: Path) -> None:
    backend = CliBackend(str(tmp_path / "state"), str(tmp_path / "data"), python="/nonexistent")
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.2", "process": 3}')
    with pytest.raises(ServiceError) as info:
        asyncio.run(backend.create_from_bundle("b", str(tmp_path)))
    assert "config.json" in info.value.message and "cannot run" not in info.value.message
