"""Inline completion of filesystem paths for Input widgets (bundle and rootfs fields)."""

from __future__ import annotations

import os

from textual.suggester import Suggester


class PathSuggester(Suggester):
    def __init__(self, directories_only: bool = True) -> None:
        # No cache: the filesystem changes while the form is open.
        super().__init__(use_cache=False, case_sensitive=True)
        self.directories_only = directories_only

    async def get_suggestion(self, value: str) -> str | None:
        if not value.startswith(("/", "~", ".")):
            return None
        expanded = os.path.expanduser(value)
        folder, stem = os.path.split(expanded)
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            return None
        for name in names:
            if not name.startswith(stem) or name == stem or (name.startswith(".") and not stem):
                continue
            full = os.path.join(folder, name)
            if self.directories_only and not os.path.isdir(full):
                continue
            # Keep what the user typed (e.g. "~") and complete only the last part.
            return value[: len(value) - len(stem)] + name + ("/" if os.path.isdir(full) else "")
        return None
