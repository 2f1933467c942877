"""The cgroup v2 device program on the real kernel: attached to a cgroup made for the test in
the host's cgroup2 hierarchy, a shell moved in may open only what the rules allow, and it
decides as the v1 devices controller does with the same rules (checked side by side on a
hybrid host, where both exist). Every cgroup made here is removed."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tuibox.runtime.cgroups import devices_bpf
from tuibox.runtime.cgroups.hierarchy import detect
from tuibox.runtime.cgroups.resources import DeviceRule, device_rules, parse_resources
from tuibox.runtime.errors import CgroupError

pytestmark = pytest.mark.root

# Nodes of the host's /dev, each opened for reading and for writing: "no" when the open
# fails with EPERM (the device controller's answer), "ok" otherwise (/dev/full's ENOSPC on
# write is past the open).
NODES = ("null", "zero", "full", "urandom", "kmsg")
DENIED = "grep -q 'not permitted'"
PROBES = "; ".join(
    f"(head -c1 /dev/{n} 2>&1 >/dev/null | {DENIED} && echo {n}:r:no || echo {n}:r:ok); "
    f"(sh -c 'printf x >/dev/{n}' 2>&1 | {DENIED} && echo {n}:w:no || echo {n}:w:ok)"
    for n in NODES
)


def _unified() -> str:
    h = detect()
    if h.unified is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    return h.unified


@contextmanager
def cgroup(mount: str) -> Iterator[str]:
    d = os.path.join(mount, f"tuibox-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(d)
    try:
        yield d
    finally:
        os.rmdir(d)  # the shell has exited: the cgroup is empty


def probe(d: str) -> dict[str, str]:
    out = subprocess.run(
        ["sh", "-c", f"echo $$ > {d}/cgroup.procs; {PROBES}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.rsplit(":", 1) for line in out.split())  # type: ignore[misc]


def test_default_allowlist_on_cgroup_v2() -> None:
    with cgroup(_unified()) as d:
        devices_bpf.attach(d, device_rules(parse_resources({}), ()))
        seen = probe(d)
    assert seen["null:r"] == seen["null:w"] == "ok"
    assert seen["zero:r"] == seen["full:w"] == "ok"  # both in docker's defaults
    assert seen["kmsg:r"] == "no"  # c 1:11 is not


def test_partial_access_and_the_program_goes_with_the_cgroup() -> None:
    rules = [
        DeviceRule(False, "a", None, None, "rwm"),
        DeviceRule(True, "c", 1, 3, "rwm"),
        DeviceRule(True, "c", 1, 7, "r"),
    ]
    with cgroup(_unified()) as d:
        devices_bpf.attach(d, rules)
        seen = probe(d)
    assert seen["null:w"] == "ok" and seen["full:r"] == "ok"
    assert seen["full:w"] == "no" and seen["zero:r"] == "no" and seen["urandom:r"] == "no"
    # removing the cgroup frees the program: one made again at that path allows everything
    os.mkdir(d)
    try:
        assert set(probe(d).values()) == {"ok"}
    finally:
        os.rmdir(d)


RULE_SETS = {
    "defaults-and-spec": device_rules(
        parse_resources(
            {"devices": [{"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]}
        ),
        (),
    ),
    "merge-and-remove": [
        DeviceRule(False, "a", None, None, "rwm"),
        DeviceRule(True, "c", 1, 3, "r"),
        DeviceRule(True, "c", 1, 3, "w"),
        DeviceRule(True, "c", 1, None, "r"),
        DeviceRule(False, "c", 1, 9, "r"),  # no exact match: v1 keeps c 1:* r
        DeviceRule(True, "c", 1, 7, "rw"),
        DeviceRule(False, "c", 1, 7, "w"),
    ],
    "blacklist": [
        DeviceRule(True, "a", None, None, "rwm"),
        DeviceRule(False, "c", 1, 11, "rwm"),
        DeviceRule(False, "c", 1, 7, "w"),
    ],
}


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_v2_program_decides_like_the_v1_controller(name: str) -> None:
    h = detect()
    if "devices" not in h.v1:
        pytest.skip("no v1 devices controller to compare with")
    rules = RULE_SETS[name]
    with cgroup(h.v1["devices"]) as d1:
        for rule in rules:
            kind = "devices.allow" if rule.allow else "devices.deny"
            with open(os.path.join(d1, kind), "w") as f:
                f.write(rule.v1())
        v1_seen = probe(d1)
    with cgroup(_unified()) as d2:
        devices_bpf.attach(d2, rules)
        v2_seen = probe(d2)
    assert v2_seen == v1_seen
    assert "no" in v2_seen.values() or name == "blacklist"


def test_attach_to_something_that_is_not_a_cgroup_is_one_line(tmp_path: object) -> None:
    with pytest.raises(CgroupError) as info:
        devices_bpf.attach(str(tmp_path), device_rules(parse_resources({}), ()))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("cannot attach the device allowlist program to ")


def test_a_box_cgroup_on_v2_gets_the_program() -> None:
    """BoxCgroup as a pure cgroup v2 host has it (no v1 devices controller): apply() attaches
    the program instead of warning, and destroy() takes it away with the cgroup."""
    from tuibox.runtime.cgroups.group import BoxCgroup
    from tuibox.runtime.cgroups.hierarchy import Hierarchies

    unified = _unified()
    path = f"/tuibox-test-{uuid.uuid4().hex[:8]}"
    cg = BoxCgroup.create(Hierarchies({}, unified, frozenset()), path)
    try:
        assert cg.unified is not None and not cg.v1
        res = parse_resources({})
        assert cg.apply(res, device_rules(res, ())) == []
        seen = probe(cg.unified)
    finally:
        cg.destroy()
    assert seen["kmsg:r"] == "no" and seen["null:w"] == seen["zero:r"] == "ok"
    assert not os.path.exists(unified + path)
