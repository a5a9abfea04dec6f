"""`streamsr serve`: a local web app to upscale files from a browser (``pip install "streamsr[serve]"``).

`create_app(root)` is the ASGI application, to run under any ASGI server or mount in another app;
`serve()` runs it on uvicorn.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ConfigError

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True for a name or address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def needs_token(host: str, token: str | None) -> str | None:
    """The token a server on `host` must check: `token`, or a new random one where `host` is not a
    loopback address (anyone who can reach the port could otherwise read and write the root)."""
    if token is not None or is_loopback(host):
        return token
    return secrets.token_urlsafe(18)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: a free port); `ConfigError` where it cannot be had."""
    try:
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          on_ready: Callable[[str], None] | None = None, **options: Any) -> None:
    """Run the web app over `root` on uvicorn until SIGINT or SIGTERM; `options` go to `create_app`.

    `on_ready` is called with the page's address (with ``?token=`` where a token guards it) once
    the port listens. A non-loopback `host` without `token` gets a new token (`needs_token`).
    """
    try:
        import uvicorn
    except ImportError:
        raise BackendUnavailableError('the web app needs uvicorn and starlette: pip install "streamsr[serve]"') from None
    from .app import create_app

    token = needs_token(host, token)
    app = create_app(root, token=token, **options)
    sock = listen(host, port)
    if options.get("engine") == "ray":
        from ..distributed import connect

        # Here, before uvicorn takes SIGINT and SIGTERM: Ray's own handlers, set where it starts,
        # would otherwise end the server without stopping its jobs or Ray.
        connect(options.get("address"))
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/" + (f"?token={token}" if token else "")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'streamsr.serve' has no attribute {name!r}")
