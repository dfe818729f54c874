"""Studio page load on a 20,000-record tub: `timeline_ms`, goal under 1,000 ms.

Builds a tub of --records road-like frames with the crash-safe writer (or takes --tub),
then --repeats times: starts a fresh studio (nothing cached), opens its page in headless
Chromium and reads `performance.now()` when the timeline is first drawn, i.e. milliseconds
from the start of navigation: the page and its scripts, the catalogs read and sent as
JSON columns, decoded and drawn. `server_timeline_ms` is the server alone (a fresh
studio, GET the timeline and parse its JSON in Python). Without Playwright and Chromium
only the server figure is measured, and `measured` says so.

With --screenshots DIR (and --model bundles) it also saves each page as PNG: the
README's pictures, taken with `--tub` a real tub and `--closed-loop` to show a run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2

from benchmarks.tub import road_frames
from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.tub import Tub, TubWriter

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
GOAL_MS = 1000
SESSIONS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=20_000, help="records of the tub built (%(default)s)")
    parser.add_argument("--tub", type=Path, help="measure this tub instead of building one")
    parser.add_argument("--model", type=Path, nargs="+", default=[], help="bundles the studio opens")
    parser.add_argument("--repeats", type=int, default=5, help="fresh studios measured (%(default)s)")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="save each page as DIR/studio-*.png")
    parser.add_argument(
        "--closed-loop", action="store_true", help="screenshots: run the first model's closed loop"
    )


def build_tub(path: Path, records: int) -> Path:
    """`records` frames in SESSIONS sessions; steering a slow sine, some stretches in local_angle mode."""
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in road_frames(200)]
    fields = {CAMERA_IMAGE: "image_array", USER_ANGLE: "float", USER_THROTTLE: "float", USER_MODE: "str"}
    per_session = -(-records // SESSIONS)
    for session in range(SESSIONS):
        with TubWriter(path, list(fields), list(fields.values()), sync_interval_s=5.0) as writer:
            for k in range(session * per_session, min(records, (session + 1) * per_session)):
                writer.write(
                    {
                        CAMERA_IMAGE: jpegs[k % len(jpegs)],
                        USER_ANGLE: round(0.8 * math.sin(k / 40), 4),
                        USER_THROTTLE: round(0.35 + 0.15 * math.cos(k / 90), 4),
                        USER_MODE: "local_angle" if (k // 700) % 5 == 4 else "user",
                    }
                )
    return path


def server_timeline_ms(tub: Path, models: list[Path], out: Path) -> tuple[float, int]:
    """A fresh studio: milliseconds to GET the timeline and parse it, and its size in bytes."""
    from studio.app import Studio
    from studio.server import StudioServer

    server = StudioServer(Studio([tub], models, out), port=0)
    server.start()
    try:
        start = time.perf_counter()
        with urllib.request.urlopen(server.url + "api/tubs/0/timeline") as answer:
            body = answer.read()
        records = len(json.loads(body)["index"])
        elapsed = (time.perf_counter() - start) * 1000
    finally:
        server.stop()
    assert records > 0
    return elapsed, len(body)


def browser_timeline_ms(browser, tub: Path, models: list[Path], out: Path) -> float:
    """A fresh studio and a fresh browser context: navigation start to the timeline drawn."""
    from studio.app import Studio
    from studio.server import StudioServer

    server = StudioServer(Studio([tub], models, out), port=0)
    server.start()
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_function("window.studio.timings.timeline_ms > 0", timeout=60_000)
        elapsed = page.evaluate("window.studio.timings.timeline_ms")
        context.close()
    finally:
        server.stop()
    return float(elapsed)


def screenshots(
    browser, tub: Path, models: list[Path], out: Path, folder: Path, closed_loop: bool
) -> list[str]:
    """The three pages as the README shows them."""
    from studio.app import Studio
    from studio.server import StudioServer

    folder.mkdir(parents=True, exist_ok=True)
    server = StudioServer(Studio([tub], models, out), port=0)
    server.start()
    saved = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1240})
        page.goto(server.url)
        page.wait_for_function(f"window.studio.preds.size === {len(models)}", timeout=600_000)
        count = page.evaluate("window.studio.tl.n")
        page.fill("#sel-from", str(page.evaluate(f"window.studio.tl.index[{count * 4 // 10}]")))
        page.fill("#sel-to", str(page.evaluate(f"window.studio.tl.index[{count * 5 // 10}]")))
        page.press("#sel-to", "Enter")
        page.click("#zoom-fit")
        page.evaluate(f"window.studio.cursor = {count * 44 // 100}")
        page.locator("#frame").click()
        page.keyboard.press("ArrowRight")
        time.sleep(1.0)
        saved.append(_shot(page, folder / "studio-manager.png"))
        if models:
            page.click("button[data-page=errors]")
            page.wait_for_selector("#error-cards .card")
            time.sleep(1.5)
            saved.append(_shot(page, folder / "studio-errors.png"))
            page.click("button[data-page=arena]")
            page.wait_for_function(
                "!document.querySelector('#arena-table').textContent.includes('computing')"
            )
            if closed_loop:
                page.locator("#arena-table tr[data-model='0'] button.primary").click()
                page.wait_for_function(
                    "document.getElementById('arena-video').readyState >= 2", timeout=600_000
                )
                page.evaluate("document.getElementById('arena-video').pause()")
                page.evaluate("document.getElementById('arena-video').currentTime = 4")
            page.evaluate(f"window.studio.cursor = {count // 3}")
            page.locator("#arena-timeline").click(position={"x": 400, "y": 60})
            time.sleep(1.5)
            saved.append(_shot(page, folder / "studio-arena.png"))
    finally:
        server.stop()
    return saved


def _shot(page, path: Path) -> str:
    page.screenshot(path=str(path), full_page=False)
    return str(path)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        built_s = None
        tub = args.tub
        if tub is None:
            start = time.perf_counter()
            tub = build_tub(Path(folder) / "tub", args.records)
            built_s = round(time.perf_counter() - start, 1)
        out = Path(folder) / "runs"
        server = [server_timeline_ms(tub, args.model, out) for _ in range(args.repeats)]
        result = {
            "tub": str(args.tub) if args.tub else "built",
            "records": len(Tub(tub)),
            "build_s": built_s,
            "timeline_bytes": server[0][1],
            "server_timeline_ms": round(statistics.median(ms for ms, _ in server), 1),
            "server_timeline_ms_runs": [round(ms, 1) for ms, _ in server],
            "goal_ms": GOAL_MS,
        }
        if importlib.util.find_spec("playwright") is None or not CHROMIUM.exists():
            result["timeline_ms"] = result["server_timeline_ms"]
            result["measured"] = "server only (no Playwright/Chromium): GET the timeline + JSON parse"
            return result
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            runs = [browser_timeline_ms(browser, tub, args.model, out) for _ in range(args.repeats)]
            if args.screenshots:
                result["screenshots"] = screenshots(
                    browser, tub, args.model, out, args.screenshots, args.closed_loop
                )
            browser.close()
        result["timeline_ms"] = round(statistics.median(runs), 1)
        result["timeline_ms_runs"] = [round(ms, 1) for ms in runs]
        result["measured"] = "in Chromium: navigation start to the timeline drawn, a fresh studio each run"
        return result
