"""The web controller: a page the car serves to a phone or desktop browser.

Why it is built this way:
- Control needs the car's token (random per start unless the config sets one): the
  page URL carries it, the websocket and the video refuse connections without it, so
  nobody else on the network can drive the car. The token is accepted from the URL, the
  `X-Tubcar-Token` header or the `tubcar_token` cookie (HttpOnly, SameSite=Strict, set
  when the page is opened with the token), and is never logged: the access log names
  the path without its query string.
- A browser tab of another site cannot drive the car either: the websocket refuses an
  `Origin` other than the car's own page or one of `allowed_origins` (a browser always
  sends it; a script with the token and no Origin is not a web page).
- Every control message is validated (at most 4 KiB, JSON nested at most 2 deep, an
  object of known fields only, finite numbers, right types); a bad one is answered with
  an error and changes nothing. Values are clamped to their ranges.
- The page sends its stick state 20 times a second while connected; that stream is the
  dead man's switch: `CONTROLLER_TIMESTAMP` stops advancing when the phone sleeps or
  the Wi-Fi drops, and the loop's `Failsafe` part brings the throttle to neutral.
  Recording stops when the page disconnects or is silent for `silence_s` (a shorter
  silence only pauses it, as the failsafe holds the car): a page that comes back shows
  recording off until the person presses record again.
- The server runs its own asyncio loop in a thread, so the drive loop never waits on
  the network; video is MJPEG, encoded only when a viewer asks for a frame.

Loop part: (CAMERA_IMAGE) -> (USER_ANGLE, USER_THROTTLE, USER_MODE, RECORDING,
THROTTLE_CAP, CONTROLLER_TIMESTAMP).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import cv2
import numpy as np
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from car import channels as ch
from car.clock import REAL_TIME, Clock
from car.threaded_server import ThreadedServer

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATUS_PERIOD_S = 0.5
MAX_MESSAGE_BYTES = 4096
MAX_NESTING = 2  # a control message is a flat object; deeper JSON is refused before parsing
TOKEN_HEADER = "X-Tubcar-Token"
TOKEN_COOKIE = "tubcar_token"
OUTPUTS = (
    ch.USER_ANGLE,
    ch.USER_THROTTLE,
    ch.USER_MODE,
    ch.RECORDING,
    ch.THROTTLE_CAP,
    ch.CONTROLLER_TIMESTAMP,
)


class ControlMessage(BaseModel):
    """One message from the page; every field optional, an empty object is a heartbeat."""

    model_config = ConfigDict(extra="forbid", strict=True)
    angle: float | None = Field(None, allow_inf_nan=False)
    throttle: float | None = Field(None, allow_inf_nan=False)
    mode: Literal["user", "local_angle", "local"] | None = None  # car.channels.MODES
    recording: bool | None = None
    throttle_cap: float | None = Field(None, allow_inf_nan=False)


class ControlState:
    """What the human asked for, shared between the server thread and the drive loop."""

    def __init__(self, throttle_cap: float) -> None:
        self.lock = threading.Lock()
        self.angle = 0.0
        self.throttle = 0.0
        self.mode = ch.MODE_USER
        self.recording = False
        self.throttle_cap = throttle_cap
        self.last_message: float | None = None  # on the loop's clock
        self.rejected = 0

    def apply(self, message: ControlMessage, now: float) -> None:
        """Apply a validated message, clamping its values."""
        with self.lock:
            if message.angle is not None:
                self.angle = min(1.0, max(-1.0, message.angle))
            if message.throttle is not None:
                self.throttle = min(1.0, max(-1.0, message.throttle))
            if message.mode is not None:
                self.mode = message.mode
            if message.recording is not None:
                self.recording = message.recording
            if message.throttle_cap is not None:
                self.throttle_cap = min(1.0, max(0.0, message.throttle_cap))
            self.last_message = now

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "angle": self.angle,
                "throttle": self.throttle,
                "mode": self.mode,
                "recording": self.recording,
                "throttle_cap": self.throttle_cap,
            }


def parse_message(text: str) -> ControlMessage:
    """Validate one websocket text message; ValueError says what is wrong."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message longer than {MAX_MESSAGE_BYTES} characters")
    if nesting_depth(text) > MAX_NESTING:
        raise ValueError(f"JSON nested deeper than {MAX_NESTING} levels")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("a control message is a JSON object")
    try:
        return ControlMessage.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "message"
        reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValueError(f"{field}: {reason}") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the car accepts")


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings: known before the parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class RedactedAccessLog(AbstractAccessLogger):
    """aiohttp's access log without query strings: the control token travels in one."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1f ms',
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )


def origin_allowed(origin: str | None, host: str, allowed: Sequence[str]) -> bool:
    """No Origin (not a browser), the page's own origin (Origin's host is the Host header),
    or one of `allowed`."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return (parts.scheme in ("http", "https") and parts.netloc == host) or origin in allowed


class WebController:
    """Serves the control page, the MJPEG stream and the control websocket; a loop part."""

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 8887,
        token: str = "",
        throttle_cap: float = 0.5,
        video_fps: float = 15.0,
        status: Callable[[], dict] | None = None,
        car_name: str = "car",
        clock: Clock = REAL_TIME,
        allowed_origins: Sequence[str] = (),
        silence_s: float = 2.0,
    ) -> None:
        self.host, self.port = host, port
        self.silence_s = silence_s
        self.token = token or secrets.token_urlsafe(16)
        self.allowed_origins = [origin.rstrip("/") for origin in allowed_origins]
        self.video_fps = video_fps
        self.status = status or (dict)
        self.car_name = car_name
        self.clock = clock
        self.state = ControlState(throttle_cap)
        self._frame: np.ndarray | None = None
        self._frame_id = 0
        self._server = ThreadedServer(
            self._make_app, host, port, "web controller", access_log_class=RedactedAccessLog
        )

    # -------------------------------------------------------------- loop part
    tub_fields: tuple[tuple[str, str], ...] = ()

    def tub_metadata(self) -> dict[str, Any]:
        return {"controller": {"kind": "web"}}

    def run(self, frame: np.ndarray | None) -> tuple:
        if frame is not None and frame is not self._frame:
            self._frame = frame
            self._frame_id += 1
        with self.state.lock:
            last = self.state.last_message
            if self.state.recording and last is not None and self.clock.now() - last > self.silence_s:
                self.state.recording = False
                log.warning("controller silent for %.1f s: recording stopped", self.clock.now() - last)
            return (
                self.state.angle,
                self.state.throttle,
                self.state.mode,
                self.state.recording,
                self.state.throttle_cap,
                self.state.last_message,
            )

    # ----------------------------------------------------------------- server
    def start(self, timeout_s: float = 10.0) -> str:
        """Start serving in a background thread; returns the control URL (with the token)."""
        self._server.start(timeout_s)
        self.port = self._server.port  # the real port when 0 was asked
        return self.url()

    def url(self, host: str | None = None) -> str:
        shown = host or ("localhost" if self.host in ("0.0.0.0", "::", "") else self.host)
        return f"http://{shown}:{self.port}/?token={self.token}"

    def shutdown(self) -> None:
        self._server.stop()

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/video", self._video)
        app.router.add_static("/static", STATIC_DIR)
        return app

    def _authorised(self, request: web.Request) -> bool:
        """The token from the URL, the header or the cookie (any that matches)."""
        expected = self.token.encode()
        given = (
            request.query.get("token", ""),
            request.headers.get(TOKEN_HEADER, ""),
            request.cookies.get(TOKEN_COOKIE, ""),
        )
        return any(hmac.compare_digest(value.encode(), expected) for value in given if value)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})
        if self._authorised(request):  # the page may then reconnect without the token in its URL
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            log.warning("refused a control connection from %s: bad token", request.remote)
            raise web.HTTPForbidden(text="bad or missing token")
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.host, self.allowed_origins):
            log.warning("refused a control connection from %s: page of origin %s", request.remote, origin)
            raise web.HTTPForbidden(text="this page's origin may not drive the car (web.allowed_origins)")
        ws = web.WebSocketResponse(heartbeat=5.0, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        log.info("controller connected from %s", request.remote)
        sender = asyncio.create_task(self._send_status(ws))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:  # a message over max_msg_size: aiohttp closes the socket
                    self.state.rejected += 1
                    log.warning("closed the control connection from %s: %s", request.remote, ws.exception())
                    break
                if msg.type != WSMsgType.TEXT:
                    await self._reject(ws, "only JSON text messages are accepted")
                    continue
                try:
                    self.state.apply(parse_message(msg.data), self.clock.now())
                except ValueError as err:
                    await self._reject(ws, str(err))
        finally:
            sender.cancel()
            with self.state.lock:
                self.state.throttle = 0.0  # a closed page must not leave the car rolling
                self.state.recording = False
            log.info("controller from %s disconnected", request.remote)
        return ws

    async def _reject(self, ws: web.WebSocketResponse, reason: str) -> None:
        self.state.rejected += 1
        await ws.send_json({"error": reason})

    async def _send_status(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            status = {"car": self.car_name, "control": self.state.snapshot(), **self.status()}
            await ws.send_str(json.dumps(_jsonable(status)))
            await asyncio.sleep(STATUS_PERIOD_S)

    async def _video(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            raise web.HTTPForbidden(text="bad or missing token")
        response = web.StreamResponse(
            headers={
                "Content-Type": "multipart/x-mixed-replace; boundary=frame",
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        sent_id = -1
        try:
            while not self._server.stopping:
                frame, frame_id = self._frame, self._frame_id
                if frame is not None and frame_id != sent_id:
                    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                    if ok:
                        await response.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode()
                            + b"\r\n\r\n"
                            + jpeg.tobytes()
                            + b"\r\n"
                        )
                        sent_id = frame_id
                await asyncio.sleep(1.0 / self.video_fps)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


def _jsonable(value: Any) -> Any:
    """Status values JSON cannot carry (NaN, numpy scalars, paths) -> plain values."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
