"""A stack of undo steps for creation: everything done registers how to take it back.

contextlib.ExitStack would do, but contextlib costs ~5 ms to import on the start-up path.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Undo:
    def __init__(self) -> None:
        self._steps: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callback(self, fn: Callable[..., Any], *args: Any) -> None:
        self._steps.append((fn, args))

    def run(self) -> None:
        """Undo everything, newest first; one failing step does not stop the others.

        An interrupt (KeyboardInterrupt, SystemExit) in a step is re-raised only once every
        older step has run: a half-created box must not stay half undone."""
        interrupted: BaseException | None = None
        while self._steps:
            fn, args = self._steps.pop()
            try:
                fn(*args)
            except Exception:
                pass
            except BaseException as e:
                if interrupted is None:
                    interrupted = e
        if interrupted is not None:
            raise interrupted

    def discard(self) -> None:
        """Success: keep everything that was done."""
        self._steps.clear()

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.run()
