"""What `Runtime.create` and `Runtime.run` take: a loaded spec plus what the caller adds.

On `tuibox run`'s start-up path: no typing or dataclasses at run time.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tuibox.runtime.spec_model import Spec


class CreateRequest:
    """A box to make: the loaded spec plus what the command line adds."""

    def __init__(
        self,
        name: str,
        spec: Spec,
        detach: bool = True,
        image: str | None = None,
        overlay: tuple[str, str] | None = None,
        options: dict[str, Any] | None = None,
        stdio: tuple[int, int, int] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.detach = detach  # output to box.log, a monitor reaps the init
        self.image = image
        self.overlay = overlay  # (image rootfs, unused) -> overlayfs root in the state dir
        # Free-form options for stages (network, ports, cgroup limits), keyed by stage.
        self.options: dict[str, Any] = options if options is not None else {}
        self.stdio = stdio  # explicit stdio for the box
