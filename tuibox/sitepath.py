"""Third-party packages on demand.

The `tuibox` launcher runs Python with -S: the `site` machinery costs ~5 ms and the hot verbs
(run, create, start, destroy...) need nothing outside the standard library. Code paths that do
need the venv's packages (the TUI: textual; networks: pyroute2; image import: rich) call
`ensure()` first.
"""

from __future__ import annotations

import sys


def ensure() -> None:
    if "site" in sys.modules:
        return
    import site

    site.main()
