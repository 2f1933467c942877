"""Entry point of `tuibox` with no verb: open the TUI (textual is imported only here)."""

from __future__ import annotations


def run_tui(root: str | None, data_root: str | None) -> int:
    from tuibox.app import TuiboxApp

    app = TuiboxApp(root, data_root)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
