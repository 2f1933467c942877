"""`tuibox serve`: the TUI in a web browser, through the `textual-serve` package.

Each browser tab that connects gets its own TUI process (`tuibox --root ... --data-root ...`,
run by textual-serve with Textual's web driver) on the same state root as this command.

The TUI acts as root, so the page is guarded:

- bound to 127.0.0.1 by default; any address that is not a loopback one is refused unless
  `--allow-remote` is given (then put TLS in front: the token travels in clear);
- a random token (`secrets.token_urlsafe`) is in the URL printed at start. The first request
  must carry it as `?token=`; the answer sets it as an HttpOnly, SameSite=Strict cookie so the
  websocket and downloads that the page opens carry it too. Without it: 403. The static files
  (xterm.js, fonts, CSS) are public: they are textual-serve's own and hold nothing of ours;
- the websocket also checks that its Origin is this server (no cross-site websocket use of
  the cookie).

textual-serve is imported only here, only when this verb runs.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import shlex
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tuibox.cli import Globals
from tuibox.cli.args import Command, Opt, Options, UsageError, entry
from tuibox.runtime.errors import SpecError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp import web
    from aiohttp.typedefs import Middleware

COOKIE = "tuibox_token"
DEFAULT_PORT = "8000"


class ServeOptions(Options):
    COMMAND = Command(
        "serve",
        "Serve the TUI to a web browser (textual-serve). Prints a URL with a random token;\n"
        "only requests with the token are answered. Bound to 127.0.0.1 unless --host says\n"
        "otherwise; addresses other than loopback ones need --allow-remote.",
        (
            Opt(("-p", "--port"), "port", "N", default=DEFAULT_PORT, help="TCP port (8000)"),
            Opt(("--host",), "host", "ADDR", default="127.0.0.1", help="address to bind"),
            Opt(
                ("--allow-remote",),
                "allow_remote",
                help="allow an address other than loopback (use TLS in front of it)",
            ),
        ),
        (),
    )
    __slots__ = ("allow_remote", "host", "port")
    port: str
    host: str
    allow_remote: bool


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(opts: ServeOptions) -> tuple[str, int]:
    """(host, port) once both are acceptable; one-line errors otherwise."""
    port_text = opts.port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"serve: --port {port_text!r}: must be a number from 1 to 65535")
    host = opts.host
    if not host:
        raise UsageError("serve: --host needs an address")
    if not is_loopback(host) and not opts.allow_remote:
        raise SpecError(
            f"serve: --host {host!r} is not a loopback address; the TUI acts as root, so "
            "serving it to the network needs --allow-remote"
        )
    return host, int(port_text)


def tui_command(g: Globals) -> str:
    """The shell command textual-serve runs for each browser tab: this TUI, on our roots."""
    argv = [sys.executable, "-m", "tuibox"]
    if g.root:
        argv += ["--root", os.path.abspath(g.root)]
    if g.data_root:
        argv += ["--data-root", os.path.abspath(g.data_root)]
    return shlex.join(argv)


def guard(token: str) -> Middleware:
    """An aiohttp middleware that answers only requests carrying the token."""
    from aiohttp import web

    expected = token.encode()

    @web.middleware
    async def check_token(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)
        in_query = request.query.get("token")
        given = in_query if in_query is not None else request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(given.encode(), expected):
            raise web.HTTPForbidden(text="tuibox serve: missing or wrong token\n")
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="tuibox serve: websocket from another origin\n")
        response = await handler(request)
        if in_query is not None and request.path == "/":
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return check_token


def make_server(command: str, host: str, port: int, token: str) -> Any:
    """A textual_serve Server whose web app has the token guard in front."""
    from textual_serve.server import Server

    class GuardedServer(Server):
        def initialize_logging(self) -> None:
            import logging

            logging.basicConfig(level=logging.WARNING, format="tuibox serve: %(message)s")

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(guard(token))
            return app

        async def on_startup(self, app: web.Application) -> None:
            pass  # our own line is printed before serving

    public = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return GuardedServer(command, host=host, port=port, title="tuibox", public_url=public)


def _check_free(host: str, port: int) -> None:
    """Bind once before saying where we serve: a port in use is one line, not a URL that
    leads nowhere (aiohttp binds with SO_REUSEADDR too, so this does not hold the port)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise SpecError(f"serve: cannot bind {host}:{port}: {reason}") from None


def do_serve(opts: ServeOptions, g: Globals) -> int:
    host, port = check_options(opts)
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        raise SpecError(
            "serve: the textual-serve package is not installed (pip install textual-serve)"
        ) from None
    _check_free(host, port)
    token = secrets.token_urlsafe(24)
    server = make_server(tui_command(g), host, port, token)
    sys.stdout.write(f"tuibox: serving the TUI on {server.public_url}/?token={token}\n")
    sys.stdout.write("tuibox: ctrl-c stops it\n")
    sys.stdout.flush()
    server.serve()
    return 0


def dispatch(verb: str, words: list[str], g: Globals) -> int:
    return VERBS[verb](words, g)


VERBS: dict[str, Callable[[list[str], Globals], int]] = {"serve": entry(ServeOptions, do_serve)}
