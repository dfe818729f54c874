"""An aiohttp application served by its own asyncio loop in a background thread.

The caller's thread (a drive loop, a command waiting for Ctrl-C, a test) never waits on
the network: `start()` returns once the socket listens (with the real port when 0 was
asked), `stop()` closes it from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class ThreadedServer:
    def __init__(
        self,
        make_app: Callable[[], web.Application],
        host: str,
        port: int,
        name: str,
        access_log_class: type[AbstractAccessLogger] | None = None,
    ) -> None:
        """`access_log_class` logs each request its way; without one, requests are not logged."""
        self.make_app = make_app
        self.host, self.port, self.name = host, port, name
        self._access_log: dict[str, Any] = (
            {"access_log_class": access_log_class} if access_log_class else {"access_log": None}
        )
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: OSError | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Listen in a daemon thread; RuntimeError says why when it cannot."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name=self.name, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"{self.name} did not start within {timeout_s} s")
        if self._error is not None:
            raise RuntimeError(
                f"{self.name} cannot listen on {self.host}:{self.port}: {self._error}"
            ) from self._error

    @property
    def stopping(self) -> bool:
        """True once stop() was asked: a long-lived response (a video stream) ends then."""
        return self._stop is not None and self._stop.is_set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the server; a no-op when it never started or has already stopped."""
        if self._thread is None or not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(
            self.make_app(), handle_signals=False, shutdown_timeout=1.0, **self._access_log
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]  # the real port when 0 was asked
        except OSError as err:
            self._error = err
            await runner.cleanup()
            return
        finally:
            self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
