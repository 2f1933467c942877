"""Restart policies and the recorded request: pure logic, no root, no fork."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuibox.runtime import BoxRequest
from tuibox.runtime.errors import SpecError
from tuibox.runtime.recreate import request_from
from tuibox.runtime.request import recorded_options
from tuibox.runtime.restart_policy import (
    MAX_DELAY_MS,
    describe,
    new_state,
    next_delay,
    parse_policy,
    starts_at_boot,
    wants_restart,
)
from tuibox.runtime.state import BoxRecord
from tuibox.service import BoxRow


@pytest.mark.parametrize(
    ("text", "policy", "max_count"),
    [
        ("no", "no", 0),
        ("always", "always", 0),
        ("unless-stopped", "unless-stopped", 0),
        ("on-failure", "on-failure", 0),
        ("on-failure:3", "on-failure", 3),
        ("on-failure:0", "on-failure", 0),
    ],
)
def test_policies(text: str, policy: str, max_count: int) -> None:
    state = parse_policy(text)
    assert (state["policy"], state["max"], state["count"]) == (policy, max_count, 0)
    assert describe(state) == (text if text != "on-failure:0" else "on-failure")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "must be no, on-failure[:N], always or unless-stopped"),
        ("Always", "must be no"),
        ("on-failure:", "must be a whole number"),
        ("on-failure:-2", "must be a whole number"),
        ("on-failure:1.5", "must be a whole number"),
        ("on-failure:٣", "must be a whole number"),  # a digit, but not an ASCII one
        ("always:2", "only on-failure takes a count"),
        ("no:1", "only on-failure takes a count"),
    ],
)
def test_bad_policies(text: str, words: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_policy(text, "--restart")
    assert str(e.value).startswith(f"--restart {text!r}: ") and words in str(e.value)


def test_who_restarts() -> None:
    on_failure = {**new_state("on-failure", 2), "count": 1}
    assert wants_restart(on_failure, 1) and not wants_restart(on_failure, 0)
    assert not wants_restart({**on_failure, "count": 2}, 1)  # the limit reached
    assert wants_restart({**new_state("on-failure"), "count": 1000}, 137)  # no limit
    for policy in ("always", "unless-stopped"):
        assert wants_restart(new_state(policy), 0) and wants_restart(new_state(policy), 1)
        assert not wants_restart({**new_state(policy), "user_stopped": True}, 1)
    assert not wants_restart(new_state("no"), 1)
    assert not wants_restart({}, 1)


def test_backoff_doubles_to_a_minute_and_starts_over_after_ten_seconds() -> None:
    delays = [next_delay(0, 0.1)]
    for _ in range(12):
        delays.append(next_delay(delays[-1], 0.1))
    assert delays[:4] == [100, 200, 400, 800]
    assert delays[-1] == MAX_DELAY_MS == 60_000 and max(delays) == MAX_DELAY_MS
    assert next_delay(MAX_DELAY_MS, 10.0) == 100  # it ran long enough: not a crash loop
    assert next_delay(400, 9.9) == 800


def test_boot_starts_always_and_unless_stopped_not_stopped_by_a_user() -> None:
    assert starts_at_boot(new_state("always"))
    assert starts_at_boot({**new_state("always"), "user_stopped": True})  # as docker's daemon
    assert starts_at_boot(new_state("unless-stopped"))
    assert not starts_at_boot({**new_state("unless-stopped"), "user_stopped": True})
    assert not starts_at_boot(new_state("on-failure")) and not starts_at_boot(None)


def test_the_recorded_request_rebuilds_the_same_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    monkeypatch.setenv("FROM_CALLER", "v1")
    options = {
        "env": ["A=1", "FROM_CALLER"],
        "user": (1000, 100),
        "memory": "64m",
        "pids_limit": 20,
        "read_only": True,
        "restart": "on-failure:2",
        "pid_file": str(tmp_path / "pid"),  # the creating caller's: not recorded
        "terminal": False,
    }
    req = BoxRequest.from_rootfs("a", str(rootfs), ["sleep", "9"], **options)
    assert req.recipe is not None and req.restart is not None
    recipe = json.loads(json.dumps(req.recipe))  # what request.json holds
    assert recipe["kind"] == "rootfs" and recipe["rootfs"] == str(rootfs)
    opts = recipe["options"]
    assert opts["env"] == ["A=1", "FROM_CALLER=v1"]  # the caller's value, not its name
    assert opts["user"] == "1000:100" and "pid_file" not in opts and "terminal" not in opts
    monkeypatch.setenv("FROM_CALLER", "v2")  # a later start is not the caller's
    again = request_from(recipe, "a", str(tmp_path), str(tmp_path / "state"))
    assert again.spec == req.spec
    assert again.restart == req.restart and again.detach
    assert "pid_file" not in again.options


def test_a_bundle_request_names_its_bundle_and_config(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    config = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["true"]}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    req = BoxRequest.from_bundle("b", str(tmp_path), netconf=None, hostname="h")
    assert req.recipe is not None
    assert req.recipe["bundle"] == str(tmp_path)
    assert req.recipe["config"] == str(tmp_path / "config.json")
    assert req.recipe["options"] == {"hostname": "h"}


def test_a_foreground_or_engine_request_takes_no_policy(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="needs a detached box"):
        BoxRequest.from_rootfs("a", str(tmp_path), detach=False, restart="always")
    with pytest.raises(SpecError, match="of tuibox's own"):
        BoxRequest.from_rootfs("a", str(tmp_path), engine=True, restart="always")
    assert BoxRequest.from_rootfs("a", str(tmp_path), restart="no").restart is None


def test_list_and_tui_rows_show_the_policy() -> None:
    state = {**new_state("on-failure", 3), "count": 2, "last_exit": 1, "waiting": [1, 2]}
    record = BoxRecord("a", "running", "", "", extra={"restart": state})
    summary = record.summary("/run/x")["restart"]
    assert summary == {
        "policy": "on-failure",
        "max": 3,
        "count": 2,
        "last_exit": 1,
        "user_stopped": False,
        "error": None,
    }
    row = BoxRow.from_json(record.summary("/run/x"))
    assert (row.restart_policy, row.restarts, row.last_exit) == ("on-failure:3", 2, 1)
    plain = BoxRow.from_json(BoxRecord("b", "running", "", "").summary("/run/x"))
    assert (plain.restart_policy, plain.restarts, plain.last_exit) == (None, 0, None)


def test_recorded_options_keep_only_what_rebuilds_the_box(tmp_path: Path) -> None:
    out = recorded_options(
        {
            "detach": True,
            "engine": False,
            "names": {"memory": "--memory"},
            "preserve_fds": 2,
            "netconf": "net.json",
            "seccomp": "unconfined",
            "publish": ("8080:80",),
            "env": {"K": "v"},
            "no_pivot": False,
        }
    )
    assert out["seccomp"] == "unconfined" and out["publish"] == ["8080:80"]
    assert out["env"] == ["K=v"] and Path(out["netconf"]).is_absolute()
    assert set(out) == {"seccomp", "publish", "env", "netconf"}
