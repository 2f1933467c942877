"""A base for plain value classes on the start-up path.

`@dataclass` generates and exec()s code for every class when its module is imported: ~1 ms a
class here, and the spec model alone has a dozen. These classes write their __init__ by hand
and get equality, repr and `replace` from this base, which reads `__slots__`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self


class Plain:
    __slots__ = ()

    @classmethod
    def _fields(cls) -> tuple[str, ...]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names.extend(getattr(klass, "__slots__", ()))
        return tuple(names)

    def replace(self, **changes: Any) -> Self:
        new = object.__new__(type(self))
        for name in self._fields():
            object.__setattr__(
                new, name, changes.pop(name) if name in changes else getattr(self, name)
            )
        if changes:
            raise TypeError(f"{type(self).__name__} has no field {next(iter(changes))!r}")
        return new

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields()}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields())
        return f"{type(self).__name__}({inner})"

    __hash__ = None  # type: ignore[assignment]
