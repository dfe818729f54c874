"""The web controller in a real headless Chromium, driving the simulated car.

Needs Debian's chromium (`apt-get install -y chromium`); skipped only when it is absent.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from car import channels as ch
from car.config import CarConfig
from car.tub import Tub
from sim.car import simulated_car
from sim.parts import make_simulation

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]


@pytest.fixture()
def sim_car(tmp_path):
    config = CarConfig()
    config.web.port = 0
    config.recording.tub_dir = str(tmp_path / "data")
    config.throttle.ramp_per_s = 10.0
    car = simulated_car(config, make_simulation(2, config.loop.rate_hz))
    car.start()
    runner = threading.Thread(target=car.loop.run, daemon=True)
    runner.start()
    yield car
    car.loop.stop("test over")
    runner.join(timeout=10)
    assert not runner.is_alive()


@pytest.fixture()
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def wait_for(condition, timeout_s=5.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_joystick_drives_the_sim_car_and_recording_writes_a_tub(browser, sim_car, tmp_path):
    page = browser.new_page(viewport={"width": 420, "height": 900}, has_touch=True)
    page.goto(sim_car.url)
    page.wait_for_function(
        "document.getElementById('connection').textContent === 'connected'", timeout=10_000
    )
    # the page's 20 Hz stick stream keeps the controller alive, so the failsafe clears
    wait_for(lambda: sim_car.loop.memory.get(ch.FAILSAFE) == "", what="failsafe to clear")
    page.wait_for_function("document.getElementById('failsafe').hidden")

    page.click("#record")
    box = page.locator("#pad").bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(centre_x, centre_y)
    page.mouse.down()
    page.mouse.move(
        centre_x + box["width"] * 0.1, box["y"] + box["height"] * 0.1, steps=5
    )  # forward, a bit right
    wait_for(
        lambda: sim_car.actuator.sim.state.speed > 0.5, timeout_s=5, what="the simulated car to speed up"
    )
    user_throttle = sim_car.loop.memory[ch.USER_THROTTLE]
    assert 0.7 < user_throttle <= 1.0, user_throttle
    assert sim_car.loop.memory[ch.THROTTLE] <= sim_car.config.pilot.throttle_cap + 1e-9  # capped
    assert sim_car.loop.memory[ch.USER_ANGLE] > 0.1
    wait_for(lambda: sim_car.recorder.records >= 20, what="20 records")
    page.wait_for_function("document.getElementById('parts').rows.length > 5")  # live loop stats
    page.wait_for_function("document.getElementById('video').naturalWidth === 160")  # live MJPEG
    screenshot = tmp_path / "controller.png"
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000
    page.mouse.up()
    wait_for(lambda: sim_car.loop.memory[ch.USER_THROTTLE] == 0.0, what="the stick to spring back")
    page.click("#record")
    wait_for(lambda: not sim_car.loop.memory[ch.RECORDING], what="recording off")

    # a phone: a finger drags the knob left and down (reverse), through real touch events
    touch = page.context.new_cdp_session(page)
    touch.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": centre_x, "y": centre_y}]}
    )
    touch.send(
        "Input.dispatchTouchEvent",
        {
            "type": "touchMove",
            "touchPoints": [{"x": centre_x - box["width"] * 0.3, "y": centre_y + box["height"] * 0.2}],
        },
    )
    wait_for(lambda: sim_car.loop.memory[ch.USER_ANGLE] < -0.5, what="touch steering")
    assert sim_car.loop.memory[ch.USER_THROTTLE] == pytest.approx(-0.4, abs=0.05)
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for(lambda: sim_car.loop.memory[ch.USER_ANGLE] == 0.0, what="the knob to spring back on release")
    page.click("button[data-mode=local_angle]")
    wait_for(lambda: sim_car.loop.memory[ch.USER_MODE] == ch.MODE_LOCAL_ANGLE, what="mode switch")
    page.close()

    tub = Tub(sim_car.recorder.path)
    records = list(tub.records(load_images=True))
    assert len(records) >= 20 and not tub.problems
    assert max(r[ch.STICK_THROTTLE] for r in records) > 0.7  # the stick
    assert min(r[ch.USER_THROTTLE] for r in records) > 0  # what the car did: moving, within the cap
    assert max(r[ch.USER_THROTTLE] for r in records) <= sim_car.config.pilot.throttle_cap + 1e-9
    assert all(r[ch.USER_MODE] == ch.MODE_USER for r in records)
    assert records[-1][ch.CAMERA_IMAGE].shape == (120, 160, 3)
    assert len({round(r[ch.SIM_X], 3) for r in records}) > 5  # the pose moved while recording


def test_bad_token_is_refused(browser, sim_car):
    page = browser.new_page()
    page.goto(sim_car.url.replace(sim_car.controller.token, "not-the-token"))
    page.wait_for_function(
        "document.getElementById('connection').textContent.startsWith('refused')", timeout=10_000
    )
    assert sim_car.controller.state.last_message is None
    base = sim_car.url.split("/?")[0]
    assert page.request.get(f"{base}/video?token=nope").status == 403
    assert page.request.get(f"{base}/ws").status == 403
    page.close()


FAKE_GAMEPAD = """
// The browser's Gamepad API answers with window.testPad: the device is faked, the page's code is not.
window.testPad = null;
navigator.getGamepads = () => [window.testPad];
window.setPad = (axes, pressed) => {
  const buttons = Array.from({ length: 17 }, (_, i) => ({ pressed: pressed.includes(i), value: 0 }));
  window.testPad = { id: "test pad (STANDARD GAMEPAD)", connected: true, mapping: "standard", axes, buttons };
};
"""


def test_keyboard_gamepad_mode_names_and_the_true_recording_state(browser, sim_car):
    memory, state = sim_car.loop.memory, sim_car.controller.state
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.add_init_script(FAKE_GAMEPAD)
    page.goto(sim_car.url)
    page.wait_for_function(
        "document.getElementById('connection').textContent === 'connected'", timeout=10_000
    )
    assert page.locator("button.mode").all_inner_texts() == ["manual", "auto steer", "autopilot"]
    text = lambda selector: page.locator(selector).inner_text()  # noqa: E731

    # keyboard: arrows held drive, released centre; R arms recording, which writes only while moving
    page.keyboard.down("ArrowUp")
    page.keyboard.down("ArrowLeft")
    wait_for(lambda: memory[ch.USER_THROTTLE] == 1.0 and memory[ch.USER_ANGLE] == -1.0, what="arrow keys")
    page.keyboard.press("r")
    wait_for(lambda: sim_car.recorder.records >= 10, what="records while the arrows drive")
    page.wait_for_function("document.getElementById('record').textContent.startsWith('■ recording (')")
    page.keyboard.up("ArrowUp")
    page.keyboard.up("ArrowLeft")
    wait_for(lambda: memory[ch.USER_THROTTLE] == 0.0 and memory[ch.USER_ANGLE] == 0.0, what="keys released")
    page.wait_for_function(
        "document.getElementById('record-state').textContent === 'paused: throttle not above 0'"
    )
    assert text("#record").startswith("■ armed (")
    standing = sim_car.recorder.records
    page.click("text=autopilot")
    wait_for(lambda: memory[ch.USER_MODE] == ch.MODE_LOCAL, what="autopilot mode")
    page.wait_for_function(
        "document.getElementById('record-state').textContent === 'not recorded in autopilot mode'"
    )
    assert "recording" not in text("#record") and sim_car.recorder.records == standing
    page.keyboard.press("m")  # cycles on: autopilot -> manual
    wait_for(lambda: memory[ch.USER_MODE] == ch.MODE_USER, what="M to cycle the mode")

    # gamepad: left stick steers, right stick throttles; Y cycles the mode, B stops
    page.evaluate("setPad([0.5, 0, 0, -0.8], [])")
    wait_for(
        lambda: memory[ch.USER_ANGLE] == 0.5 and memory[ch.USER_THROTTLE] == pytest.approx(0.8), what="pad"
    )
    page.wait_for_function(
        "document.getElementById('input-source').textContent.endsWith('test pad (STANDARD GAMEPAD)')"
    )
    page.evaluate("setPad([0.5, 0, 0, -0.8], [3])")
    wait_for(lambda: memory[ch.USER_MODE] == ch.MODE_LOCAL_ANGLE, what="Y: next mode")
    page.evaluate("setPad([0.02, 0, 0, 0.03], [1])")  # inside the dead zone, B pressed
    wait_for(lambda: memory[ch.USER_MODE] == ch.MODE_USER and memory[ch.USER_THROTTLE] == 0.0, what="B: stop")
    assert memory[ch.USER_ANGLE] == 0.0

    page.close()  # a closed page stops recording
    wait_for(lambda: not state.recording, what="recording off when the page goes")
