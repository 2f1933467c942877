"""tuibox: a Linux container runtime with a Textual TUI on top."""

__version__ = "0.1.0"
