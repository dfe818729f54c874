"""An aiohttp application served by its own asyncio loop in a background thread.

The caller's thread (a drive loop, a command waiting for Ctrl-C, a test) never waits on
the network: `start()` returns once the socket listens (with the real port when 0 was
asked), `stop()` closes it from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web


class ThreadedServer:
    def __init__(self, make_app: Callable[[], web.Application], host: str, port: int, name: str) -> None:
        self.make_app = make_app
        self.host, self.port, self.name = host, port, name
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
            raise RuntimeError(f"{self.name} cannot listen on {self.host}:{self.port}: {self._error}")

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
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
