"""Which `cgroup.procs` the warmer writes itself into (process/warmer.py), from
/proc/self/cgroup as the kernel writes it ("hierarchy-ID:controller-list:cgroup-path"):
v1 hierarchies first, then the unified one (ROOT on a pure v2 host, ROOT/unified on a hybrid
one). The pure v2 and hybrid cases cannot be run on this machine's kernel layout: these are
the kernel's exact line formats."""

from __future__ import annotations

from tuibox.runtime.process.warmer import procs_candidates

HYBRID = """\
12:pids:/
11:cpu,cpuacct:/user.slice
10:name=systemd:/user.slice/user-0.slice/session-1.scope
4:memory:/process_api/59b8
0::/user.slice/user-0.slice/session-1.scope
"""


def test_v1_and_hybrid_lines() -> None:
    assert procs_candidates(HYBRID, "/R") == [
        "/R/pids/cgroup.procs",
        "/R/cpu,cpuacct/user.slice/cgroup.procs",
        "/R/systemd/user.slice/user-0.slice/session-1.scope/cgroup.procs",
        "/R/memory/process_api/59b8/cgroup.procs",
        "/R/user.slice/user-0.slice/session-1.scope/cgroup.procs",
        "/R/unified/user.slice/user-0.slice/session-1.scope/cgroup.procs",
    ]


def test_pure_v2_host_and_a_cgroup_namespace_root() -> None:
    assert procs_candidates("0::/system.slice/podman.service\n", "/R") == [
        "/R/system.slice/podman.service/cgroup.procs",
        "/R/unified/system.slice/podman.service/cgroup.procs",
    ]
    # inside a cgroup namespace, or in the root cgroup: "/"
    assert procs_candidates("0::/\n", "/R") == ["/R/cgroup.procs", "/R/unified/cgroup.procs"]


def test_lines_that_name_no_usable_path_are_skipped() -> None:
    # a v1 hierarchy without controllers or name, a path outside our namespace's view
    # ("/../x", as the kernel shows a cgroup above a cgroup namespace's root), garbage
    text = "3::/a\n2:pids:/../outside\n1:memory\nnonsense\n\n"
    assert procs_candidates(text, "/R") == []
