"""Default hardening on the real kernel: capabilities (default set, spec override, unavailable
ones), no mounting, masked and read-only /proc paths, no_new_privs, no leaked descriptors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TB, unique
from tests.integration import actions_helpers
from tests.integration.actions_helpers import Boxes, assert_no_cgroup, cgpath
from tuibox.runtime import defaults
from tuibox.runtime.linux.capabilities import mask

pytestmark = pytest.mark.root
boxes = actions_helpers.boxes  # the fixture

DEFAULT = mask(defaults.CAPABILITIES)
PODMAN_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)


def run_out(tb: TB, bundle: Path, *cmd: str) -> str:
    return tb("run", "--bundle", str(bundle), unique("h"), *cmd).stdout


def caps_of(status: str) -> dict[str, int]:
    out = {}
    for line in status.splitlines():
        if line.startswith("Cap"):
            key, value = line.split(":")
            out[key] = int(value, 16)
    return out


def test_pid_1_and_exec_get_the_default_capability_set(tb: TB, boxes: Boxes) -> None:
    name = boxes.run()
    init = caps_of(Path(f"/proc/{boxes.pid(name)}/status").read_text())
    assert init["CapEff"] == init["CapPrm"] == init["CapBnd"] == DEFAULT
    assert init["CapAmb"] == 0
    inside = caps_of(tb("exec", name, "cat", "/proc/self/status").stdout)
    assert inside["CapEff"] == inside["CapBnd"] == DEFAULT
    # a non-root user keeps none in effect, as with docker
    other = caps_of(tb("exec", "-u", "1000", name, "cat", "/proc/self/status").stdout)
    assert other["CapEff"] == 0 and other["CapBnd"] == DEFAULT


def test_spec_capabilities_override_the_defaults(tb: TB, make_bundle: Callable[..., Path]) -> None:
    sets = {k: list(PODMAN_CAPS) for k in ("bounding", "effective", "permitted")}
    bundle = make_bundle(process={"capabilities": sets})
    caps = caps_of(run_out(tb, bundle, "cat", "/proc/self/status"))
    assert caps["CapEff"] == caps["CapBnd"] == mask(PODMAN_CAPS)
    assert caps["CapInh"] == 0


def test_unavailable_capability_is_named(tb: TB, make_bundle: Callable[..., Path]) -> None:
    have = caps_of(Path("/proc/self/status").read_text())["CapBnd"]
    if have >> 24 & 1:
        pytest.skip("this host gives CAP_SYS_RESOURCE")
    sets = {"bounding": [*defaults.CAPABILITIES, "CAP_SYS_RESOURCE"]}
    name = unique("caps")
    err = tb.fails("run", "--bundle", str(make_bundle(process={"capabilities": sets})), name)
    assert "process.capabilities" in err and "CAP_SYS_RESOURCE" in err
    assert name not in tb.names()
    assert_no_cgroup(cgpath(tb, name))
    bad = {"bounding": ["CAP_NOT_A_THING"]}
    assert "CAP_NOT_A_THING" in tb.fails(
        "run", "--bundle", str(make_bundle(process={"capabilities": bad})), unique("caps")
    )


def test_mount_fails_in_a_default_box(tb: TB, make_bundle: Callable[..., Path]) -> None:
    proc = tb(
        "run", "--bundle", str(make_bundle()), unique("m"), "mount", "-t", "tmpfs", "x", "/mnt",
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "denied" in proc.stderr.lower() or "not permitted" in proc.stderr.lower()


def test_masked_and_readonly_proc_paths(tb: TB, make_bundle: Callable[..., Path]) -> None:
    candidates = ("/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug")
    present = [p for p in candidates if Path(p).exists() and Path(p).stat().st_size >= 0]
    assert present, "none of the masked files exists on this kernel"
    script = "; ".join(f"wc -c < {p}" for p in present)
    sizes = run_out(tb, make_bundle(), "sh", "-c", script).split()
    assert sizes == ["0"] * len(present), dict(zip(present, sizes, strict=True))
    if Path("/proc/timer_list").exists():
        assert Path("/proc/timer_list").read_bytes()  # not empty on the host
    proc = tb(
        "run", "--bundle", str(make_bundle()), unique("ro"), "sh", "-c",
        "echo x > /proc/sys/kernel/hostname", check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr


def test_no_new_privileges_from_the_starter_spec(tb: TB, busybox_rootfs: Path) -> None:
    out = tb("run", "--rootfs", str(busybox_rootfs), unique("nnp"), "cat", "/proc/self/status")
    assert "NoNewPrivs:\t1" in out.stdout


def _fds(listing: str) -> set[str]:
    # "lr-x------ 1 root root 64 Nov 28 12:10 0 -> /dev/null": the word before "->"
    return {ln.split("->")[0].split()[-1] for ln in listing.splitlines() if "->" in ln} | {
        ln.split()[-1] for ln in listing.splitlines() if ln.startswith("l") and "->" not in ln
    }


def test_no_runtime_descriptor_leaks_into_the_box(
    tb: TB, boxes: Boxes, make_bundle: Callable[..., Path]
) -> None:
    # fd 3 is ls's own handle on /proc/self/fd (the pseudo-directory); nothing else.
    assert _fds(run_out(tb, make_bundle(), "ls", "-l", "/proc/self/fd")) == {"0", "1", "2", "3"}
    name = boxes.run()
    assert _fds(tb("exec", name, "ls", "-l", "/proc/self/fd").stdout) == {"0", "1", "2", "3"}
    init_fds = sorted(int(f) for f in os.listdir(f"/proc/{boxes.pid(name)}/fd"))
    assert init_fds == [0, 1, 2]
    # A caller's descriptors as high as its limit allows (close_range has no upper bound;
    # the hard limit here is below 65536, the old bound): a directory, the kind that would
    # give a box a host cwd, and the caller's own fd table is left as it was.
    for verb in ("run", "exec"):
        cmd = (
            ("run", "--bundle", str(make_bundle()), unique("hi"))
            if verb == "run"
            else ("exec", name)
        )
        out = subprocess.run(
            [sys.executable, "-c", HIGH_FDS, *tb.argv(*cmd, "ls", "-l", "/proc/self/fd")[1:]],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert _fds(out) == {"0", "1", "2", "3"}, out


# Raise the soft NOFILE limit to the hard one, park a directory fd on the highest number and
# one just below, then become tuibox.
HIGH_FDS = """
import os, resource, sys
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
for high in (hard - 1, hard - 2):
    os.dup2(fd, high)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""
