"""`tuibox pull REF` and `tuibox push NAME REF`, through skopeo (runtime/images/registry.py).

Not on a box's start-up path: rich's progress bar is imported only when stderr is a tty.
"""

from __future__ import annotations

import sys
import time

from tuibox.cli.args import Arg, Command, Opt, Options, UsageError, entry
from tuibox.runtime.images.store import ImageStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tuibox.cli import Globals

_TLS = Opt(
    ("--tls-verify",),
    "tls_verify",
    "true|false",
    default="true",
    help="false: plain http or an unverified certificate (podman's flag)",
)
_TIMEOUT = Opt(
    ("--timeout",), "timeout", "SECONDS", default="120", help="give up after this (default 120)"
)
_AUTH = Opt(
    ("--authfile",),
    "authfile",
    "FILE",
    help="credentials (skopeo login's / podman's auth.json)",
)
_RETRIES = Opt(
    ("--retry-times",), "retry_times", "N", default="2", help="skopeo's retries (default 2)"
)


class PullOptions(Options):
    COMMAND = Command(
        "pull",
        "Pull an image from a registry (docker's references: alpine, host:5000/x:tag,\n"
        "x@sha256:...) as NAME (default: the last path component, -TAG unless latest).\n"
        "Layers already in the store are kept once and shared.",
        (
            _TLS,
            _AUTH,
            _TIMEOUT,
            _RETRIES,
            Opt(("--name",), "name", "NAME", help="the local image name"),
            Opt(("-q", "--quiet"), "quiet", help="no progress"),
            Opt(
                ("--progress",),
                "progress",
                "auto|json",
                default="auto",
                help="json: one JSON line per report on stdout (for programs)",
            ),
        ),
        (Arg("reference"),),
    )
    __slots__ = (
        "authfile",
        "name",
        "progress",
        "quiet",
        "reference",
        "retry_times",
        "timeout",
        "tls_verify",
    )
    progress: str
    authfile: str | None
    tls_verify: str
    timeout: str
    retry_times: str
    name: str | None
    quiet: bool
    reference: str


class PushOptions(Options):
    COMMAND = Command(
        "push",
        "Push image NAME to a registry as REF (docker's references).",
        (_TLS, _AUTH, _TIMEOUT, _RETRIES),
        (Arg("name"), Arg("reference")),
    )
    __slots__ = ("authfile", "name", "reference", "retry_times", "timeout", "tls_verify")
    authfile: str | None
    tls_verify: str
    timeout: str
    retry_times: str
    name: str
    reference: str


def _bool(value: str, flag: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise UsageError(f"{flag} {value!r}: must be true or false")


def _number(value: str, flag: str, integer: bool = False) -> float:
    try:
        n = int(value) if integer else float(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r}: must be a number") from None
    if n < 0 or (not integer and n == 0):
        raise UsageError(f"{flag} {value!r}: must be positive")
    return n


class _Stopped:
    """SIGTERM and SIGHUP end a pull or push as ^C does: skopeo is stopped and what the
    transfer made is cleaned up (a plain SIGTERM would leave skopeo running on its own)."""

    def __enter__(self) -> None:
        import signal

        def stop(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        self.old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}

    def __exit__(self, *exc: object) -> None:
        import signal

        for s, handler in self.old.items():
            signal.signal(s, handler)


def do_pull(opts: PullOptions, g: Globals) -> int:
    from tuibox.cli import warn
    from tuibox.cli.images import human_size
    from tuibox.runtime.images.registry import pull

    tls = _bool(opts.tls_verify, "--tls-verify")
    timeout = _number(opts.timeout, "--timeout")
    retries = int(_number(opts.retry_times, "--retry-times", integer=True))
    if opts.progress not in ("auto", "json"):
        raise UsageError(f"--progress {opts.progress!r}: must be auto or json")
    bar = _PhaseBar() if sys.stderr.isatty() and not opts.quiet else None
    report = bar.update if bar is not None else None
    if opts.progress == "json":
        bar, report = None, _json_progress
    t0 = time.monotonic()
    try:
        if bar is not None:
            bar.start()
        with _Stopped():
            info = pull(
                ImageStore(g.data_root),
                opts.reference,
                opts.name,
                report,
                warn,
                tls_verify=tls,
                timeout=timeout,
                retries=retries,
                authfile=opts.authfile,
            )
    finally:
        if bar is not None:
            bar.stop()
    if not opts.quiet:
        sys.stderr.write(
            f"pulled {info.reference} as {info.name}: {len(info.layers)} layer(s), "
            f"{human_size(info.size)}, {time.monotonic() - t0:.1f} s\n"
        )
    sys.stdout.write(info.name + "\n")
    return 0


def do_push(opts: PushOptions, g: Globals) -> int:
    from tuibox.runtime.images.registry import push

    tls = _bool(opts.tls_verify, "--tls-verify")
    timeout = _number(opts.timeout, "--timeout")
    retries = int(_number(opts.retry_times, "--retry-times", integer=True))
    with _Stopped():
        done = push(
            ImageStore(g.data_root),
            opts.name,
            opts.reference,
            tls_verify=tls,
            timeout=timeout,
            retries=retries,
            authfile=opts.authfile,
        )
    sys.stdout.write(done + "\n")
    return 0


def _json_progress(phase: str, done: int, total: int) -> None:
    sys.stdout.write(f'{{"phase": "{phase}", "done": {done}, "total": {total}}}\n')
    sys.stdout.flush()


class _PhaseBar:
    """rich's progress on stderr: one row for the download, one for the extraction."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
        )
        self.tasks: dict[str, object] = {}

    def start(self) -> None:
        self.progress.start()

    def update(self, phase: str, done: int, total: int) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(phase, total=total or None)
        self.progress.update(task, completed=done, total=total or None)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.progress.stop()


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


VERBS: dict[str, Callable[[list[str], Globals], int]] = {
    "pull": entry(PullOptions, do_pull),
    "push": entry(PushOptions, do_push),
}
