"""BoxRecord.from_json checks every known field's type and names the first bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuibox.runtime.errors import BoxNotFound, CorruptRecord
from tuibox.runtime.state import BoxRecord, StateRoot

GOOD: dict[str, Any] = {"id": "a", "status": "running", "bundle": "/b", "rootfs": "/r", "pid": 5}


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"pid": "x"}, "field 'pid' is 'x', it must be an integer"),
        ({"pid": True}, "field 'pid' is True, it must be an integer"),
        ({"starttime": 1.5}, "field 'starttime' is 1.5, it must be an integer or null"),
        ({"command": "ls"}, "field 'command' is 'ls', it must be a list"),
        ({"extra": []}, "field 'extra' is [], it must be an object"),
        ({"terminal": 1}, "field 'terminal' is 1, it must be a boolean"),
        ({"status": None}, "field 'status' is None, it must be a string"),
    ],
)
def test_a_wrong_type_names_the_field(patch: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="^" + problem.replace("[", r"\[").replace("]", r"\]")):
        BoxRecord.from_json({**GOOD, **patch})


def test_a_missing_required_field_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="field 'rootfs' is missing"):
        BoxRecord.from_json({k: v for k, v in GOOD.items() if k != "rootfs"})
    assert BoxRecord.from_json({**GOOD, "from_the_future": 1}).pid == 5


def test_read_tells_a_missing_box_from_a_damaged_one(tmp_path: Path) -> None:
    root = StateRoot(tmp_path)
    with pytest.raises(BoxNotFound):
        root.read("nobody")
    (tmp_path / "a").mkdir()
    with pytest.raises(CorruptRecord, match=r"no state\.json"):
        root.read("a")
    (tmp_path / "a" / "state.json").write_text(
        '{"id": "b", "status": "x", "bundle": "", "rootfs": ""}'
    )
    with pytest.raises(CorruptRecord, match="names another box"):
        root.read("a")
    (tmp_path / "a" / "state.json").write_text("[1]")
    with pytest.raises(CorruptRecord, match="not a JSON object"):
        root.read("a")


def test_a_record_from_another_boot_is_stopped_whatever_its_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tuibox.runtime import state
    from tuibox.runtime.linux import proc

    boot = tmp_path / "boot_id"
    boot.write_text("11111111-2222-3333-4444-555555555555\n")
    monkeypatch.setattr(state, "BOOT_ID_PATH", str(boot))
    monkeypatch.setattr(state, "_boot_id", [])
    me = os.getpid()
    # our own live pid stands for a pid reused after a reboot
    record = BoxRecord("b", "running", "", "", pid=me, starttime=proc.start_time(me))
    record.extra["boot_id"] = "11111111-2222-3333-4444-555555555555"
    assert state.live_status(record, str(tmp_path)) == "running"
    record.extra["boot_id"] = "99999999-2222-3333-4444-555555555555"
    assert state.live_status(record, str(tmp_path)) == "stopped"
    record.status = "creating"
    record.extra["creator"] = [me, proc.start_time(me)]
    assert state.live_status(record, str(tmp_path)) == "debris"  # for gc, never "creating"
    record.extra["boot_id"] = "11111111-2222-3333-4444-555555555555"
    assert state.live_status(record, str(tmp_path)) == "creating"  # not stopped with pid 0
    del record.extra["boot_id"]  # a record of an older tuibox: the pid alone decides
    record.status = "running"
    assert state.live_status(record, str(tmp_path)) == "running"
