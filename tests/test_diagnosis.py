"""The recipe's four-gap diagnosis on synthetic errors, the noise floor's interval, the splits behind it.

No training here: the set errors are made up around a known noise floor, so each verdict,
"at the noise floor" included, can be asked for.
"""

from __future__ import annotations

import numpy as np
import pytest

from training.report import AT_THE_FLOOR, diagnose, diagnosis_lines, noise_floor_interval
from training.split import SplitConfig, split_frames, split_mismatched

FLOOR = {"mse": 0.0040, "ci_low": 0.0032, "ci_high": 0.0050, "method": "synthetic"}  # margin 0.001


@pytest.mark.parametrize(
    ("errors", "verdict"),
    [
        ({"train": 0.0045, "train_dev": 0.0049, "dev": 0.0047, "test": 0.0050}, AT_THE_FLOOR),
        ({"train": 0.0008, "train_dev": 0.0041, "dev": 0.0042, "test": 0.0043}, "high variance"),
        ({"train": 0.0300, "train_dev": 0.0320, "dev": 0.0330, "test": 0.0330}, "high avoidable bias"),
        ({"train": 0.0100, "train_dev": 0.0200, "dev": 0.0200, "test": 0.0200}, "high variance"),
        ({"train": 0.0045, "train_dev": 0.0048, "dev": 0.0600, "test": 0.0610}, "data mismatch"),
        ({"train": 0.0045, "train_dev": 0.0048, "dev": 0.0050, "test": 0.0300}, "overfitting to dev"),
    ],
)
def test_each_verdict_comes_from_its_gap(errors, verdict):
    diagnosis = diagnose(errors, FLOOR)
    assert diagnosis["verdict"] == verdict
    gaps = diagnosis["gaps"]
    assert gaps["avoidable_bias"]["value"] == pytest.approx(errors["train"] - FLOOR["mse"])
    assert gaps["variance"]["value"] == pytest.approx(errors["train_dev"] - errors["train"])
    assert gaps["data_mismatch"]["value"] == pytest.approx(errors["dev"] - errors["train_dev"])
    assert gaps["overfitting_to_dev"]["value"] == pytest.approx(errors["test"] - errors["dev"])
    counting = {name for name, gap in gaps.items() if gap["counts"]}
    assert diagnosis["at_noise_floor"] == (not counting & {"avoidable_bias", "variance"})
    text = "\n".join(diagnosis_lines(diagnosis))
    assert f"verdict: **{verdict}**" in text


def test_at_the_floor_says_go_and_drive_it_not_more_data():
    # The case: dev below the floor used to read "high variance -> more data".
    diagnosis = diagnose({"train": 0.0010, "train_dev": 0.0008, "dev": 0.0008, "test": 0.0009}, FLOOR)
    assert diagnosis["verdict"] == AT_THE_FLOOR and diagnosis["at_noise_floor"]
    assert "drive it" in diagnosis["next_step"]
    assert all(not gap["counts"] for gap in diagnosis["gaps"].values())


def test_bias_and_variance_at_the_floor_but_data_mismatch_leads():
    diagnosis = diagnose({"train": 0.0042, "train_dev": 0.0045, "dev": 0.05, "test": 0.05}, FLOOR)
    assert diagnosis["at_noise_floor"] and diagnosis["verdict"] == "data mismatch"
    assert "look like dev/test" in diagnosis["next_step"]


def test_blocks_of_the_same_tubs_have_no_data_mismatch_to_blame():
    diagnosis = diagnose(
        {"train": 0.0042, "train_dev": 0.0045, "dev": 0.05, "test": 0.05}, FLOOR, mismatched=False
    )
    assert diagnosis["verdict"] == AT_THE_FLOOR
    assert "sampling noise" in diagnosis["gaps"]["data_mismatch"]["verdict"]


def test_without_training_dev_the_variance_is_dev_minus_train():
    diagnosis = diagnose({"train": 0.004, "dev": 0.03}, FLOOR)
    assert set(diagnosis["gaps"]) == {"avoidable_bias", "variance"}
    assert diagnosis["verdict"] == "high variance" and diagnosis["gaps"]["variance"]["sets"] == [
        "dev",
        "train",
    ]
    held_out_block = diagnose({"train": 0.004, "test": 0.0045}, FLOOR)  # the real protocol's folds
    assert held_out_block["gaps"]["variance"]["sets"] == ["test", "train"]
    assert held_out_block["verdict"] == AT_THE_FLOOR


def test_noise_floor_interval_covers_the_true_label_noise():
    rng = np.random.default_rng(3)
    steps = np.arange(4000)
    labels = np.sin(steps / 40.0) + rng.normal(0.0, 0.06, len(steps))  # noise variance 0.0036
    floor = noise_floor_interval(labels, np.zeros(len(steps), dtype=str))
    assert floor["ci_low"] < 0.0036 < floor["ci_high"]
    assert floor["ci_low"] <= floor["mse"] <= floor["ci_high"]
    assert floor["ci_high"] - floor["ci_low"] < 0.001
    # consecutive frames of different sessions are never differenced
    sessions = np.repeat(["a", "b"], 2000)
    jumped = np.where(sessions == "a", labels, labels + 5.0)
    assert noise_floor_interval(jumped, sessions)["mse"] == pytest.approx(floor["mse"], rel=0.01)
    assert noise_floor_interval(labels[:5], np.zeros(5, dtype=str)) is None


def test_training_dev_is_whole_gapped_blocks_of_the_training_share():
    sessions = np.array(["a"] * 600 + ["b"] * 400)
    config = SplitConfig(block_frames=50, gap=3, seed=1, train_dev=0.1)
    split = split_frames(sessions, config)
    sets = [set(getattr(split, name)) for name in ("train", "train_dev", "dev", "test")]
    assert sum(len(s) for s in sets) == len(set().union(*sets))  # disjoint
    assert len(split.train_dev) == 2 * (50 - 2 * 3)  # 10 % of the 800 training frames: two blocks
    distance = np.abs(split.train_dev[:, None] - split.train[None, :]).min(axis=1)
    assert distance.min() >= config.gap + 1
    assert len(split_frames(sessions, SplitConfig(block_frames=50, train_dev=0.0)).train_dev) == 0


def test_mismatched_split_takes_dev_and_test_from_the_other_tubs():
    sim = np.array(["sim#"] * 1000)
    real = np.array(["real#"] * 400)
    config = SplitConfig(block_frames=50, gap=2, train_dev=0.1)
    halves = split_mismatched(sim, real, config)
    assert halves.train.max() < 1000 and halves.train_dev.max() < 1000
    assert min(halves.dev.min(), halves.test.min()) >= 1000
    assert len(halves.dev) == len(halves.test) == 4 * (50 - 4)
    given = split_mismatched(sim, real, config, dev_count=150)
    assert list(given.dev) == list(range(1000, 1150)) and list(given.test) == list(range(1150, 1400))
    with pytest.raises(ValueError, match="dev and test need one each"):
        split_mismatched(sim, real[:40], config)
