"""`--security-opt` of run/create (docker's spelling) and the default seccomp profile.

A box whose spec tuibox writes (`--rootfs`, `--image`, hence the TUI's create form) gets
the default profile (runtime/seccomp/default.json, docker's allowlist) unless
`--security-opt seccomp=unconfined`; `seccomp=FILE` puts a docker- or spec-style profile
in its place, for a bundle too. A bundle's own config.json without linux.seccomp runs as
runc runs it: without a filter (engines leave the field out for "unconfined").
"""

from __future__ import annotations

import os

from tuibox.runtime import defaults
from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.spec_model import Seccomp, Spec

UNCONFINED = "unconfined"


def seccomp_choice(security_opt: list[str]) -> str | None:
    """From the --security-opt values: 'unconfined', a profile path, or None when not
    given; SpecError for a bad value."""
    choice = None
    for item in security_opt:
        key, eq, value = item.partition("=")
        if key != "seccomp":
            raise SpecError(
                f"--security-opt {item!r}: unknown option (tuibox knows seccomp=unconfined|FILE)"
            )
        if not eq or not value:
            raise SpecError(f"--security-opt {item!r}: must be seccomp=unconfined or seccomp=FILE")
        choice = value
    return choice


def box_caps(spec: Spec) -> tuple[str, ...]:
    caps = spec.process.capabilities
    return caps.bounding if caps is not None else defaults.CAPABILITIES


def load_profile(path: str, caps: tuple[str, ...]) -> Seccomp:
    """A profile file (docker's format or the spec's) checked for a box with `caps`."""
    from tuibox.runtime.seccomp import profile
    from tuibox.runtime.spec import _Invalid

    shown = os.path.basename(path) or path
    try:
        seccomp, _ = profile.parse(profile.to_spec_form(profile.read_profile(path), caps), "")
    except _Invalid as e:
        where = f"{e.field}: " if e.field else ""
        raise SpecError(f"--security-opt seccomp={shown}: {where}{e.problem}") from None
    return seccomp


def default_seccomp(caps: tuple[str, ...]) -> Seccomp:
    from tuibox.runtime.seccomp import profile

    seccomp, _ = profile.parse(profile.default_profile(caps))
    return seccomp


def apply_seccomp(spec: Spec, security_opt: list[str], generated: bool) -> Spec:
    """The spec with the seccomp profile the --security-opt values ask for."""
    choice = seccomp_choice(security_opt)
    if choice is None and not generated:
        return spec
    if choice == UNCONFINED:
        seccomp = None
    elif choice is not None:
        seccomp = load_profile(choice, box_caps(spec))
    else:
        seccomp = default_seccomp(box_caps(spec))
    return spec.replace(linux=spec.linux.replace(seccomp=seccomp))
