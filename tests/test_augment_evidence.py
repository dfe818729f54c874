"""The evidence experiment's building blocks: restyled tracks and straight-road frames."""

from __future__ import annotations

import numpy as np

from experiments.augment_evidence import STRAIGHT_CURVATURE, Condition, EvidencePlan, default_variants


def test_a_new_look_keeps_the_shape_and_changes_the_picture():
    plain, restyled = Condition("a", "training track", 1), Condition("b", "new look", 1, style_seed=101)
    track, other = plain.track(), restyled.track()
    np.testing.assert_allclose(track.points, other.points, atol=1e-6)
    assert track.style != other.style
    first, second = plain.simulation().reset().image, restyled.simulation().reset().image
    assert first.shape == second.shape == (120, 160, 3)
    assert np.abs(first.astype(int) - second).mean() > 5


def test_straight_road_frames_come_from_straights_only():
    from experiments.augment_evidence import straight_road_frames

    condition = Condition("seed 2", "new track", 2)
    frames = straight_road_frames(condition)
    track = condition.track()
    straight_share = float(np.mean(np.abs(track.curvature) < STRAIGHT_CURVATURE))
    assert frames and all(f.shape == (120, 160, 3) for f in frames)
    assert 0.0 < straight_share < 1.0  # the test track has both curves and straights


def test_plan_covers_every_group_and_variant():
    plan = EvidencePlan(looks=(101,), new_tracks=(2, 3), poor_camera=(2,))
    groups = [c.group for c in plan.conditions()]
    assert groups == ["training track", "new look", "new track", "new track", "new track, poor camera"]
    variants = default_variants()
    assert not variants["none"].enabled and variants["flip"].flip == 0.5 and variants["default"].shift > 0
