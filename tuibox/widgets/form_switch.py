"""A Switch for forms: space toggles it and Enter submits the form, as in every other field.

Textual's Switch toggles on Enter too, so Enter on a switch changed the form instead of
submitting it. Here Enter is left to the screen, whose `enter` binding submits.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Switch


class FormSwitch(Switch, inherit_bindings=False):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_switch", "Toggle", show=False),
    ]
