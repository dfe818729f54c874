"""The tub studio in a real headless Chromium, on a copy of the real Donkey tub, with real TFLite bundles.

Needs Debian's chromium (`apt-get install -y chromium`); skipped only when it is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_car_browser import CHROMIUM, browser, wait_for  # noqa: F401 - `browser` is a fixture
from test_pilot import constant_model, export

from car.pilot import Pilot
from car.tub import Tub
from evaluation.replay import open_loop
from evaluation.tags import LABEL_WRONG, FrameTags
from studio.app import Studio
from studio.server import StudioServer
from training.data import RecordFilter
from tubcar.commands import tub as tub_command

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> list[Path]:
    """Two real bundles whose steering depends on the picture, differently."""
    root = tmp_path_factory.mktemp("bundles")
    return [
        export(constant_model(0.05, 0.4, kernel_value=2e-4), root / "bright-right", "float32"),
        export(constant_model(-0.1, 0.6, kernel_value=-1e-4), root / "bright-left", "float32"),
    ]


@pytest.fixture()
def tub(donkey_tub, tmp_path) -> Path:
    """A copy of the real 1,000-frame tub: the tests edit it."""
    return Path(shutil.copytree(donkey_tub, tmp_path / "tub"))


def serve(tub: Path, models: list[Path], out: Path):
    server = StudioServer(Studio([tub], models, out), port=0)
    server.start()
    return server


def open_page(browser, url: str, models: int = 0):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    page.wait_for_function("window.studio.timings.timeline_ms > 0", timeout=15_000)
    page.wait_for_function(f"window.studio.preds.size === {models}", timeout=60_000)
    return page, errors


def tub_info(capsys, tub: Path) -> dict:
    capsys.readouterr()
    assert tub_command.main(["info", str(tub), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_select_delete_restore_a_range_and_undo_as_tub_info_sees_it(browser, tub, tmp_path, capsys):  # noqa: F811
    server = serve(tub, [], tmp_path / "runs")
    try:
        page, errors = open_page(browser, server.url)
        assert page.evaluate("window.studio.tl.n") == 1000

        # select by dragging across the timeline's plot, then delete
        box = page.locator("#timeline").bounding_box()
        y = box["y"] + 50
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=6)
        page.mouse.up()
        first, last = int(page.input_value("#sel-from")), int(page.input_value("#sel-to"))
        assert 200 < first < last < 600, (first, last)
        page.click("#sel-delete")
        page.wait_for_function("document.getElementById('toast').textContent.startsWith('Deleted')")
        info = tub_info(capsys, tub)
        assert info["deleted"] == last - first + 1 and info["records"] == 1000 - info["deleted"]
        manifest_line = json.loads((tub / "manifest.json").read_text().splitlines()[4])
        assert manifest_line["deleted_indexes"] == list(range(first, last + 1))  # Donkeycar's own field
        assert page.evaluate("window.studio.tl.deleted.reduce((a, b) => a + b, 0)") == last - first + 1

        page.click("#sel-restore")
        wait_for(lambda: Tub(tub).deleted_indexes == set(), what="the restore")
        assert tub_info(capsys, tub)["deleted"] == 0

        # select by frames: the inputs, then the Delete key, and Ctrl+Z undoes it
        page.fill("#sel-from", "10")
        page.fill("#sel-to", "19")
        page.press("#sel-to", "Enter")
        page.locator("#frame").click()
        page.keyboard.press("Delete")
        wait_for(lambda: Tub(tub).deleted_indexes == set(range(10, 20)), what="the delete key")
        page.keyboard.press("Control+z")
        wait_for(lambda: Tub(tub).deleted_indexes == set(), what="undo")

        # step and play at the recorded rate
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("window.studio.cursor") == 1
        page.keyboard.press(" ")
        page.wait_for_function("window.studio.cursor > 5")
        page.keyboard.press(" ")

        # a filter saved beside the tub is what `tubcar train --filter` reads
        page.fill("#filter-min", "0.6")
        page.wait_for_function(
            "document.getElementById('filter-count').textContent.includes('throttle <= 0.6')"
        )
        page.click("#filter-save")
        page.wait_for_selector("#filter-command:not([hidden])")
        saved = RecordFilter.load(tub / "filter.json")
        assert saved.min_throttle == 0.6 and saved.modes == ("user",)
        kept = sum(1 for r in Tub(tub).records() if r["user/throttle"] > 0.6)
        assert f"keeps {kept} of 1000" in page.text_content("#filter-count")
        assert "--filter" in page.text_content("#filter-command")
        assert not errors
        page.close()
    finally:
        server.stop()


def test_tag_three_frames_see_the_counts_and_delete_the_wrong_labels(browser, bundles, tub, tmp_path):  # noqa: F811
    server = serve(tub, bundles[:1], tmp_path / "runs")
    try:
        page, errors = open_page(browser, server.url + "#page=errors", models=1)
        page.wait_for_selector("#error-cards .card")
        cards = page.locator("#error-cards .card")
        indexes = [int(cards.nth(k).get_attribute("data-index")) for k in range(3)]
        cards.nth(0).locator(f"button[data-category='{LABEL_WRONG}']").click()
        cards.nth(1).locator("button[data-category='glare']").click()
        cards.nth(2).locator(".meta").click()  # focus the card (its picture opens the manager)
        page.keyboard.press("2")  # the second category: glare
        glare_row = "#tag-table tr[data-category='glare']"
        page.wait_for_function(
            f"document.querySelector(\"{glare_row}\")?.children[1].textContent === '2'", timeout=10_000
        )
        tags = FrameTags.read(tub)
        assert tags.indexes(LABEL_WRONG) == {indexes[0]} and tags.indexes("glare") == {indexes[1], indexes[2]}

        # the share of the error: the worst frames carry far more than their share of frames
        pilot, reader = Pilot.load(bundles[0]), Tub(tub)
        errors_sq = {r["_index"]: (pilot.run(reader.load_image(r))[0] - r["user/angle"]) ** 2 for r in reader}
        share = (errors_sq[indexes[1]] + errors_sq[indexes[2]]) / sum(errors_sq.values())
        assert page.text_content(f"{glare_row} td:nth-child(4)").strip().endswith(f"{100 * share:.1f}%")
        assert max(errors_sq, key=errors_sq.get) == indexes[0]  # sorted by error, worst first

        page.click("#delete-label-wrong")
        wait_for(lambda: Tub(tub).deleted_indexes == {indexes[0]}, what="the label-wrong delete")
        page.wait_for_function(
            f"!document.querySelector('#error-cards .card[data-index=\"{indexes[0]}\"]')", timeout=10_000
        )
        assert not errors
        page.close()
    finally:
        server.stop()


def test_arena_compares_two_bundles_open_and_closed_loop(browser, bundles, tub, tmp_path):  # noqa: F811
    Tub(tub).delete(range(120, 1000))  # a short stretch keeps the closed-loop run quick
    server = serve(tub, bundles, tmp_path / "runs")
    try:
        page, errors = open_page(browser, server.url + "#page=arena", models=2)
        page.wait_for_function(
            "document.querySelectorAll('#arena-table tbody tr td:nth-child(3)').length === 2"
        )
        page.wait_for_function("!document.querySelector('#arena-table').textContent.includes('computing')")
        for model, bundle in enumerate(bundles):
            expected = open_loop(Tub(tub), Pilot.load(bundle)).metrics()
            row = page.locator(f"#arena-table tr[data-model='{model}']")
            assert row.locator("td").nth(2).text_content() == "120"
            assert row.locator("td").nth(3).text_content() == f"{expected['steering_mse']:.4f}"
            assert row.locator("td").nth(6).text_content() == f"{expected['throttle_mse']:.4f}"
        assert page.evaluate("window.studio.preds.get(1).angle.length") == 1000  # traces on the timeline

        page.locator("#arena-table tr[data-model='1'] button.primary").click()
        page.wait_for_function("document.getElementById('arena-video').readyState >= 2", timeout=60_000)
        arena = page.request.get(server.url + "api/tubs/0/arena").json()
        run = arena["rows"][1]["closed_loop"]
        assert run["state"] == "done" and 0.0 <= run["metrics"]["autonomy"] <= 1.0
        assert run["metrics"]["records"] <= 120
        assert f"autonomy {run['metrics']['autonomy']:.2f}" in page.text_content(
            "#arena-table tr[data-model='1']"
        )
        mp4 = page.request.get(server.url + run["videos"]["mp4"][1:])
        assert mp4.status == 200 and len(mp4.body()) > 10_000
        assert np.isfinite(run["metrics"]["mean_offset"])
        assert not errors
        page.close()
    finally:
        server.stop()
