"""The web controller against a hostile network (issue 14): the real server, a real HTTP client."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import aiohttp
import pytest

from car.controller.web import TOKEN_COOKIE, TOKEN_HEADER, WebController


@pytest.fixture()
def controller():
    controller = WebController(host="127.0.0.1", port=0, allowed_origins=["http://car.local:8887/"])
    controller.start()
    yield controller
    controller.shutdown()


def connect(controller: WebController, session: aiohttp.ClientSession, query: str = "", **kwargs):
    return session.ws_connect(f"ws://127.0.0.1:{controller.port}/ws{query}", **kwargs)


async def reply(ws) -> dict:
    """The next answer to a message, skipping the twice-a-second status pushes."""
    while "control" in (message := await ws.receive_json(timeout=2)):
        pass
    return message


def test_only_the_cars_page_or_an_allowed_origin_may_drive(controller):
    """Issue: commands were accepted from any Origin (a page on another site, with the token)."""
    own = f"http://127.0.0.1:{controller.port}"
    token = f"?token={controller.token}"

    async def scenario():
        async with aiohttp.ClientSession() as session:
            for origin in ("http://evil.example", "http://127.0.0.1:1", "null"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await connect(controller, session, token, headers={"Origin": origin})
                assert refused.value.status == 403, origin
            for origin in (own, "http://car.local:8887"):
                async with connect(controller, session, token, headers={"Origin": origin}) as ws:
                    await ws.send_json({"throttle": 0.2})
                    await asyncio.sleep(0.1)
            assert controller.run(None)[5] is not None

    asyncio.run(scenario())


def test_the_token_works_from_a_header_or_the_pages_cookie(controller):
    async def scenario():
        jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of IP addresses, as browsers do
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with connect(controller, session, headers={TOKEN_HEADER: controller.token}) as ws:
                await ws.send_json({"angle": 0.3})
                await asyncio.sleep(0.1)
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await connect(controller, session)  # no cookie yet
            page = await session.get(f"http://127.0.0.1:{controller.port}/?token={controller.token}")
            assert page.status == 200 and "httponly" in page.headers["Set-Cookie"].lower()
            assert session.cookie_jar.filter_cookies(page.url)[TOKEN_COOKIE].value == controller.token
            async with connect(controller, session) as ws:  # the cookie alone
                await ws.send_json({"angle": -0.3})
                await asyncio.sleep(0.1)
        assert controller.run(None)[0] == -0.3

    asyncio.run(scenario())


def test_the_token_never_reaches_the_log(controller, caplog):
    """Issue: aiohttp's access log printed every request line, the token included."""

    async def scenario():
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{controller.port}/?token={controller.token}")
            async with connect(controller, session, f"?token={controller.token}") as ws:
                await ws.send_json({})
            await session.get(f"http://127.0.0.1:{controller.port}/video?token=wrong")

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
        controller.shutdown()  # the websocket's line is written when its handler ends
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /ws"' in line for line in access) and any('"GET /" 200' in line for line in access)
    assert controller.token not in caplog.text and "token=" not in caplog.text


def test_deep_and_oversized_messages_are_refused_and_the_server_lives_on(controller):
    """Issue: a deeply nested JSON array crashed the handler."""

    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with connect(controller, session, f"?token={controller.token}") as ws:
                await ws.send_str("[" * 2000 + "]" * 2000)
                assert "nested deeper than 2" in (await reply(ws))["error"]
                await ws.send_str('{"angle": {"a": [0.1]}}')
                assert "nested deeper than 2" in (await reply(ws))["error"]
                await ws.send_json({"angle": 0.25})  # the same connection still drives
                await asyncio.sleep(0.1)
                assert controller.run(None)[0] == 0.25
            async with connect(controller, session, f"?token={controller.token}") as ws:
                await ws.send_str('{"angle": 0.1, "x": "' + "y" * 5000 + '"}')
                while (closing := await ws.receive(timeout=2)).type == aiohttp.WSMsgType.TEXT:
                    pass  # status pushes sent before the server read the message
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            async with connect(controller, session, f"?token={controller.token}") as ws:
                await ws.send_json({"angle": -0.5})
                await asyncio.sleep(0.1)
        assert controller.run(None)[0] == -0.5
        assert controller.state.rejected == 3  # two too deep, one too long

    asyncio.run(scenario())


def test_drive_binds_where_host_says(tmp_path):
    """`tubcar drive --host 127.0.0.1`: the page only on this machine, and no LAN address shown."""
    flags = ["--sim", "--host", "127.0.0.1", "--port", "0", "--no-qr", "--duration", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "tubcar", "drive", *flags, "--tub-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "control page: http://127.0.0.1:" in result.stdout and "LAN:" not in result.stdout
