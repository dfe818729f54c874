"""Error-analysis tags beside a tub (tags.json): the file, its edits and each tag's share of the error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from car.tub import TubError, TubWriter
from evaluation.tags import (
    LABEL_WRONG,
    PRESET_CATEGORIES,
    TAGS_FILE,
    UNTAGGED,
    FrameTags,
    error_by_tag,
    update_tags,
)


@pytest.fixture()
def tub(tmp_path):
    path = tmp_path / "tub"
    TubWriter(path, ["user/angle"], ["float"]).close()
    return path


def test_tags_round_trip_through_the_file_and_keep_the_users_categories(tub):
    assert FrameTags.read(tub).categories == list(PRESET_CATEGORIES)  # no file yet
    _, added = update_tags(tub, lambda tags: tags.tag([3, 4, 5], "  wet   floor "))
    assert added == {3, 4, 5}
    _, added = update_tags(tub, lambda tags: tags.tag([5, 6], "wet floor"))
    assert added == {6}
    _, removed = update_tags(tub, lambda tags: tags.untag([3, 9], "wet floor"))
    assert removed == {3}
    update_tags(tub, lambda tags: tags.tag([4], LABEL_WRONG))
    tags = FrameTags.read(tub)
    assert tags.categories == [*PRESET_CATEGORIES, "wet floor"]
    assert tags.frames == {4: {"wet floor", LABEL_WRONG}, 5: {"wet floor"}, 6: {"wet floor"}}
    assert tags.counts()["wet floor"] == 3 and tags.counts()["glare"] == 0
    stored = json.loads((tub / TAGS_FILE).read_text())
    assert stored["frames"]["4"] == [LABEL_WRONG, "wet floor"]
    with pytest.raises(ValueError, match="1 to 40 characters"):
        FrameTags().tag([1], "   ")


def test_a_damaged_tags_file_is_an_error_naming_it(tub):
    (tub / TAGS_FILE).write_text('{"format": "tubcar-tags/1", "categories": [], "frames": {"x": []}}')
    with pytest.raises(TubError, match=rf"{TAGS_FILE}: not a readable tags file"):
        FrameTags.read(tub)


def test_each_tag_carries_its_share_of_the_squared_steering_error():
    indexes = np.array([10, 11, 12, 13])
    recorded = np.zeros((4, 2))
    predicted = np.array([[0.1, 0], [0.3, 0], [0.0, 0], [0.2, 0]])  # squared errors .01 .09 0 .04
    tags = FrameTags(frames={11: {"glare"}, 13: {"glare", "curve entry"}, 99: {"glare"}})
    groups = {g.name: g for g in error_by_tag(tags, indexes, recorded, predicted)}
    assert set(groups) == {"glare", "curve entry", UNTAGGED}  # categories without frames are left out
    assert groups["glare"].frames == 2 and groups["glare"].error_share == pytest.approx(0.13 / 0.14)
    assert groups["glare"].steering_mse == pytest.approx(0.065)
    assert groups["curve entry"].error_share == pytest.approx(0.04 / 0.14)
    assert groups[UNTAGGED].frames == 2 and groups[UNTAGGED].error_share == pytest.approx(0.01 / 0.14)
