"""Which seccomp profile a box gets (`BoxRequest(..., seccomp=...)`): the default profile
(runtime/seccomp/default.json, docker's allowlist) for a spec tuibox writes (a rootfs, an
image, hence the TUI's create form), none for "unconfined", or a docker- or spec-style
profile file in its place, for a bundle too. A bundle's own config.json without
linux.seccomp runs as runc runs it: without a filter.
"""

from __future__ import annotations

import os

from tuibox.runtime import defaults
from tuibox.runtime.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tuibox.runtime.spec_model import Seccomp, Spec

UNCONFINED = "unconfined"


def box_caps(spec: Spec) -> tuple[str, ...]:
    caps = spec.process.capabilities
    return caps.bounding if caps is not None else defaults.CAPABILITIES


def load_profile(path: str, caps: tuple[str, ...], shown: str = "seccomp") -> Seccomp:
    """A profile file (docker's format or the spec's) checked for a box with `caps`; errors
    start with `shown`=FILE (the CLI passes '--security-opt seccomp')."""
    from tuibox.runtime.seccomp import profile

    base = os.path.basename(path) or path
    try:
        seccomp, _ = profile.parse(profile.to_spec_form(profile.read_profile(path), caps), "")
    except profile.Invalid as e:
        where = f"{e.field}: " if e.field else ""
        raise SpecError(f"{shown}={base}: {where}{e.problem}") from None
    return seccomp


def default_seccomp(caps: tuple[str, ...]) -> Seccomp:
    from tuibox.runtime.seccomp import profile

    seccomp, _ = profile.parse(profile.default_profile(caps))
    return seccomp


def apply_seccomp(spec: Spec, choice: str | None, generated: bool, shown: str = "seccomp") -> Spec:
    """The spec with the profile `choice` asks for: None (the default for a generated spec,
    the spec's own otherwise), 'unconfined', or a profile's path."""
    if choice is None and not generated:
        return spec
    if choice == UNCONFINED:
        seccomp = None
    elif choice is not None:
        seccomp = load_profile(choice, box_caps(spec), shown)
    else:
        seccomp = default_seccomp(box_caps(spec))
    return spec.replace(linux=spec.linux.replace(seccomp=seccomp))
