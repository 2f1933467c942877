"""Update a Static only when what it shows changed.

Every `Static.update` with `layout=True` makes Textual lay out the whole screen again; a live
view that repaints its labels every second would spend most of its CPU there.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from textual.widgets import Static

_shown: WeakKeyDictionary[Static, Any] = WeakKeyDictionary()


def show(widget: Static, content: Any, key: Any = None, layout: bool = True) -> bool:
    """Update `widget` unless `key` (default: the content itself) is what it shows already."""
    marker = content if key is None else key
    if widget in _shown and _shown[widget] == marker:
        return False
    _shown[widget] = marker
    widget.update(content, layout=layout)
    return True
