"""linux.seccomp: check a profile, compile it with libseccomp, load it in the box.

    profile.py     the spec's seccomp object -> `spec_model.Seccomp`; docker-style profiles
                   (archMap, includes/excludes) -> the spec's form; the default profile
    default.json   the default allowlist (docker's), in docker's profile format
    compile.py     a ctypes binding to libseccomp.so.2: `Seccomp` -> BPF program bytes
    load.py        seccomp(2) with those bytes, and the notify fd to a seccomp agent: all
                   the box's init and exec children need
    stage.py       the creation stage: compile before the fork, cache, hooks, record

Nothing is imported here. Only load.py (ctypes, already loaded) is on every `tuibox run`'s
path, since the init needs it after the fork; the rest loads for boxes with a filter.
"""
