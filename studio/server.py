"""The studio's HTTP server: the page, its static files and a JSON API over `studio.app.Studio`.

Why it is built this way:
- It binds to 127.0.0.1 by default: the studio edits tubs and reads any bundle, so it is
  for the person at this computer. Another web page open in the same browser must not
  edit tubs either: every change (POST) needs the token the server writes into its own
  page, which other origins cannot read, and on a loopback bind requests whose Host is
  not this machine are refused (DNS rebinding).
- Handlers are thin: blocking work (reading catalogs, writing side files under the tub's
  lock) runs in a worker thread, long work (models over every frame, closed-loop runs)
  in background jobs the page polls.
- Images are served as the JPEG files themselves, cached by the browser (their URL
  carries the tub's key), so scrolling through 20,000 frames never re-reads one twice.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from car.bundle import BundleError
from car.threaded_server import ThreadedServer
from car.tub import TubError
from studio.app import Studio
from studio.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_HEADER = "X-Studio-Token"
IMAGE_CACHE = "private, max-age=604800, immutable"  # the URL names the tub: a file never changes
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StudioServer:
    """Serves one `Studio` from a background thread; `start()` returns the page's URL."""

    def __init__(self, studio: Studio, host: str = "127.0.0.1", port: int = 8890) -> None:
        self.studio = studio
        self.host = host
        self.token = secrets.token_urlsafe(16)
        self._server = ThreadedServer(self.app, host, port, "studio")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.port}/"

    def start(self) -> str:
        self._server.start()
        for tub in self.studio.tubs:  # read the catalogs now, so the first page finds them ready
            threading.Thread(target=tub.timeline, name=f"studio warm {tub.name}", daemon=True).start()
        return self.url

    def stop(self) -> None:
        self._server.stop()

    # ---------------------------------------------------------------------- routes
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_REQUEST_BYTES)
        get, post = app.router.add_get, app.router.add_post
        get("/", self._index)
        app.router.add_static("/static", STATIC_DIR)
        get("/api/state", self._call(lambda r, s: s.state()))
        get("/api/tubs/{tub}/timeline", self._timeline)
        get("/api/tubs/{tub}/image/{index}", self._image)
        get("/api/tubs/{tub}/thumb/{index}", self._thumb)
        post(
            "/api/tubs/{tub}/delete", self._call(lambda r, s, b: s.change_deleted(_tub(r), _indexes(b), True))
        )
        post(
            "/api/tubs/{tub}/restore",
            self._call(lambda r, s, b: s.change_deleted(_tub(r), _indexes(b), False)),
        )
        post(
            "/api/tubs/{tub}/delete_tagged",
            self._call(lambda r, s, b: s.delete_tagged(_tub(r), b["category"])),
        )
        get("/api/tubs/{tub}/tags", self._call(lambda r, s: s.tags(_tub(r), _model(r, required=False))))
        post(
            "/api/tubs/{tub}/tags",
            self._call(lambda r, s, b: s.tag(_tub(r), _indexes(b), str(b["category"]), bool(b["on"]))),
        )
        get("/api/tubs/{tub}/filter", self._call(lambda r, s: s.saved_filter(_tub(r))))
        post("/api/tubs/{tub}/filter", self._call(lambda r, s, b: s.save_filter(_tub(r), b["rules"])))
        post(
            "/api/tubs/{tub}/filter/preview",
            self._call(lambda r, s, b: s.filter_preview(_tub(r), b["rules"])),
        )
        get("/api/tubs/{tub}/predictions", self._call(lambda r, s: s.prediction_columns(_tub(r), _model(r))))
        get("/api/tubs/{tub}/errors", self._call(lambda r, s: s.errors(_tub(r), _model(r))))
        get("/api/tubs/{tub}/arena", self._call(lambda r, s: s.arena(_tub(r))))
        post(
            "/api/tubs/{tub}/closed_loop",
            self._call(lambda r, s, b: s.start_closed_loop(_tub(r), int(b["model"])).to_dict()),
        )
        get("/api/jobs/{job}", self._call(lambda r, s: s.jobs.get(int(r.match_info["job"])).to_dict()))
        get("/api/runs/{job}/{name}", self._run_file)
        post("/api/undo", self._call(lambda r, s, b: s.undo()))
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable]
    ) -> web.StreamResponse:
        if is_loopback(self.host) and not is_loopback(request.url.host or ""):
            raise web.HTTPForbidden(text="the studio answers only to this computer (Host header)")
        if request.method != "GET":
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise web.HTTPForbidden(text=f"a change needs the page's {TOKEN_HEADER}")
        return await handler(request)

    def _call(self, action: Callable[..., Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A JSON handler: runs `action(request, studio[, body])` in a thread; errors become JSON."""

        async def handle(request: web.Request) -> web.Response:
            args: tuple = (request, self.studio)
            if request.method == "POST":
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    return _error(400, "the request body is not JSON")
                args = (*args, body if isinstance(body, dict) else {})
            try:
                result = await asyncio.to_thread(action, *args)
            except NotFound as err:
                return _error(404, str(err.args[0]))
            except KeyError as err:
                return _error(400, f"the request lacks {err.args[0]!r}")
            except (TubError, BundleError) as err:
                return _error(409, str(err))
            except (ValueError, TypeError) as err:
                return _error(400, str(err))
            return web.json_response(result, dumps=_compact)

        return handle

    async def _index(self, request: web.Request) -> web.Response:
        page = (STATIC_DIR / "index.html").read_text().replace("{{token}}", self.token)
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _timeline(self, request: web.Request) -> web.StreamResponse:
        try:
            body, etag = await asyncio.to_thread(self.studio.tub(_tub(request)).timeline_json)
        except (NotFound, TubError) as err:
            return _error(404, str(err.args[0]))
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        return await self._file(request, lambda tub, index: tub.image_file(index))

    async def _thumb(self, request: web.Request) -> web.StreamResponse:
        return await self._file(request, lambda tub, index: tub.thumbnail(index))

    async def _file(self, request: web.Request, find: Callable) -> web.StreamResponse:
        try:
            tub = self.studio.tub(_tub(request))
            found = await asyncio.to_thread(find, tub, int(request.match_info["index"]))
        except (NotFound, ValueError, TubError) as err:
            return _error(404, str(err.args[0]))
        if isinstance(found, bytes):
            return web.Response(body=found, content_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE})
        return web.FileResponse(found, headers={"Cache-Control": IMAGE_CACHE, "Content-Type": "image/jpeg"})

    async def _run_file(self, request: web.Request) -> web.StreamResponse:
        try:
            path = self.studio.run_file(int(request.match_info["job"]), request.match_info["name"])
        except (NotFound, ValueError) as err:
            return _error(404, str(err.args[0]))
        return web.FileResponse(path)


def _tub(request: web.Request) -> int:
    return int(request.match_info["tub"])


def _model(request: web.Request, required: bool = True) -> int | None:
    text = request.query.get("model", "")
    if not text and not required:
        return None
    if not text.isdigit():
        raise ValueError("give ?model=N, a model's number")
    return int(text)


def _indexes(body: dict) -> range | list[int]:
    """Record indexes from {"indexes": [...]} or {"range": [start, stop]} (stop excluded)."""
    if "range" in body:
        start, stop = (int(value) for value in body["range"])
        return range(start, stop)
    indexes = body.get("indexes")
    if not isinstance(indexes, list):
        raise ValueError('give "indexes": [record indexes] or "range": [start, stop]')
    return [int(index) for index in indexes]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
