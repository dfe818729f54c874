"""Recording keeps only driving: the real web server and the car's real loop on a stepped
clock with the simulator's camera and actuator, driven through the page's websocket protocol.

Each tick waits for a fresh control message stamped at the tick's simulated time, so the
real-time page and the simulated loop agree on what "silent" means.
"""

from __future__ import annotations

import pytest
from test_car_vehicle import PageStandIn, wait_for

from car import channels as ch
from car.clock import SteppedClock
from car.config import CarConfig
from car.tub import Tub
from sim.car import simulated_car
from sim.parts import make_simulation


@pytest.fixture()
def car(tmp_path):
    config = CarConfig()
    config.web.host, config.web.port = "127.0.0.1", 0
    config.recording.tub_dir = str(tmp_path / "data")  # cap 0.5, max_forward 0.5, ramp 2/s: the defaults
    clock = SteppedClock(start=100.0)
    car = simulated_car(config, make_simulation(2, config.loop.rate_hz), clock=clock)
    car.start()
    yield car
    car.loop.shutdown()


def ticks(car, count: int, *, page_alive: bool = True) -> None:
    """Advance the stepped clock one period and tick, `count` times; with `page_alive`
    each tick first waits for a control message stamped at its time."""
    clock, state = car.loop.clock, car.controller.state
    for _ in range(count):
        clock.advance(car.loop.period)
        if page_alive:
            wait_for(lambda: state.last_message == clock.now(), what="a control message at this tick")
        fault = car.loop.tick()
        assert fault is None, fault


def latest_status(page: PageStandIn, **expected) -> None:
    """Wait until the page was last told `expected` (status is sent twice a second)."""
    wait_for(
        lambda: page.received and all(page.received[-1].get(k) == v for k, v in expected.items()),
        what=f"the page to be told {expected}",
    )


def test_records_only_while_driving_by_hand_and_stops_when_the_page_goes(car):
    page = PageStandIn(car.url)
    try:
        page.message = {"recording": True}
        wait_for(lambda: car.controller.state.recording, what="recording armed")
        page.message = {"angle": 0.2, "throttle": 0.0}  # armed, the car standing
        ticks(car, 10)
        assert car.recorder.state == "paused: throttle not above 0" and car.recorder.path is None
        latest_status(page, recording="paused: throttle not above 0", records=0)

        page.message = {"angle": 0.2, "throttle": 1.0}  # full stick: capped, limited, ramped
        ticks(car, 20)
        assert car.recorder.state == "recording"
        page.message = {"mode": "local"}  # the autopilot (none loaded here) drives: not recorded
        ticks(car, 10)
        assert car.recorder.state == "not in autopilot modes"
        latest_status(page, recording="not in autopilot modes", records=20)

        page.message = {"mode": "user", "angle": 0.2, "throttle": 1.0}
        ticks(car, 5)
        page.sending = False  # the phone sleeps: silence on an open connection
        recorded_while_silent = 0
        for _ in range(10):
            ticks(car, 1, page_alive=False)
            recorded_while_silent += car.recorder.state == "recording"
        timeout_ticks = round(car.config.failsafe.controller_timeout_s / car.loop.period)  # 6 at 20 Hz
        assert timeout_ticks - 1 <= recorded_while_silent <= timeout_ticks
        assert car.loop.memory[ch.FAILSAFE] == "controller silent"
        assert car.recorder.state == "paused: controller silent" and car.controller.state.recording
        ticks(car, 35, page_alive=False)  # over 2 s of silence: recording stops, not merely pauses
        assert not car.controller.state.recording
        page.sending = True
        ticks(car, 10)  # the page is back and driving: nothing recorded until record is pressed
        assert car.recorder.state == "off" and car.loop.memory[ch.THROTTLE] > 0
        latest_status(page, recording="off")

        page.message = {"recording": True, "angle": 0.2, "throttle": 1.0}
        ticks(car, 1)
        page.message = {"angle": 0.2, "throttle": 1.0}
        ticks(car, 4)
    finally:
        page.close()
    wait_for(lambda: not car.controller.state.recording, what="a closed page to stop recording")
    ticks(car, 5, page_alive=False)
    assert car.recorder.state == "off"
    car.loop.shutdown()

    records = list(Tub(car.recorder.path).records())
    sent = [r[ch.USER_THROTTLE] for r in records]
    assert sent[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # the ramp, as the wheels got it
    assert all(0 < value <= 0.5 for value in sent)  # never standing, never above the cap
    assert {r[ch.STICK_THROTTLE] for r in records} == {1.0}  # the stick, kept beside
    assert {r[ch.USER_ANGLE] for r in records} == {0.2} and {r[ch.USER_MODE] for r in records} == {"user"}
    # driving, before the silence, within the silence's timeout, after re-arming
    assert len(records) == 20 + 5 + recorded_while_silent + 5
