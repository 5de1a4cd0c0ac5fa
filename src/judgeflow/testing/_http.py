"""The aiohttp plumbing every fake server shares: JSON bodies, the address to hand a client, and the app's lifetime.

The fake OpenAI, TGI and MediaWiki servers differ in their wire formats, not in how they are started and stopped.
Writing the start/stop once keeps the one subtle part (cleanup in a shielded, time-bounded scope, so that a
cancelled test cannot leave a listening socket behind or hang on a held request) the same for all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import anyio
from aiohttp import web

__all__ = ["Listener", "json_response", "loopback_url", "running_app"]


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``payload`` as a compact JSON body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def loopback_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` a client on this machine can reach: a wildcard host is dialled as 127.0.0.1."""
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Listener:
    """The listening side of a running app, which a test can close (an outage) and open again on the same port."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self.runner = runner
        self.host = host
        self.port = port
        self._site: web.TCPSite | None = None

    @property
    def open(self) -> bool:
        return self._site is not None

    async def reopen(self) -> None:
        """Listen on ``host:port`` (the port chosen at the first start, when it was 0)."""
        if self._site is None:
            site = web.TCPSite(self.runner, self.host, self.port)
            await site.start()
            self._site = site
            self.port = int(self.runner.addresses[-1][1])

    async def close(self) -> None:
        """Stop listening and drop every open connection: new ones are refused, requests in flight get no answer."""
        site, self._site = self._site, None
        if site is None:
            return
        await site.stop()
        server = self.runner.server
        for handler in list(server.connections if server is not None else ()):
            transport = handler.transport
            if transport is not None:
                transport.abort()


@contextlib.asynccontextmanager
async def running_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    closing: asyncio.Event | None = None,
) -> AsyncIterator[Listener]:
    """Serve ``app`` on ``host:port`` (0 picks a free port) in the running asyncio loop; yields its `Listener`
    (``.port`` is the bound port).

    On exit ``closing`` is set first (handlers that wait on it answer at once rather than hold up the shutdown),
    then the listening socket closes and the runner is cleaned up in a shielded scope bounded to a few seconds.
    """
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        listener = Listener(runner, host, port)
        await listener.reopen()
        yield listener
    finally:
        if closing is not None:
            closing.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            await runner.cleanup()
