"""Training end to end on small real tubs: data, split, every flag, report, export.

One session-scoped run trains the `fast` model for two epochs on a synthetic tub whose
frames show a bar where the steering says the road goes; most tests reuse it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import augment
from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_MODE, USER_THROTTLE
from car.frames import FrameSpec, normalise, prepare_frame
from car.pilot import Pilot
from car.tub import Tub, TubWriter
from training.augment_workers import AugmentedBatches
from training.cli import add_arguments, options_from_args, sources_from_args
from training.data import RecordFilter, load_frames
from training.fit import FitConfig
from training.flags import flag_fields, flag_name
from training.models import ModelOptions, build_model, default_frame_spec, keras_predictions
from training.pipeline import (
    augmented_dataset,
    evaluation_dataset,
    prepare_all,
    steps_per_epoch,
    training_dataset,
)
from training.split import SplitConfig, split_frames
from training.train import Sources, TrainOptions, train

INPUTS = [CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE, USER_MODE]
TYPES = ["image_array", "float", "float", "str"]


def road_frame(angle: float, rng: np.random.Generator) -> np.ndarray:
    """A 160x120 frame: dark sky, grey floor, a yellow bar whose x position is the steering."""
    frame = np.full((120, 160, 3), (90, 90, 95), np.uint8)
    frame[:40] = (30, 30, 40)
    x = int(80 + 60 * angle)
    frame[40:, max(0, x - 4) : x + 4] = (230, 200, 40)
    noise = rng.integers(-8, 9, frame.shape)
    return np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)


def write_tub(path: Path, count: int, seed: int = 0, modes=None, throttles=None) -> Path:
    """A real JPEG tub of `count` smoothly steering frames (one session per call)."""
    rng = np.random.default_rng(seed)
    with TubWriter(path, INPUTS, TYPES) as writer:
        for i in range(count):
            angle = float(np.sin(i / 9 + seed))
            writer.write(
                {
                    CAMERA_IMAGE: road_frame(angle, rng),
                    USER_ANGLE: angle,
                    USER_THROTTLE: float(throttles[i])
                    if throttles is not None
                    else 0.3 + 0.1 * float(np.cos(i / 13)),
                    USER_MODE: modes[i] if modes is not None else "user",
                }
            )
    return path


@pytest.fixture(scope="session")
def tiny_tub(tmp_path_factory) -> Path:
    return write_tub(tmp_path_factory.mktemp("tubs") / "tub", 240)


@pytest.fixture(scope="session")
def trained(tiny_tub, tmp_path_factory):
    """One real two-epoch run of scripts/train.py's pipeline, with augmentation."""
    out = tmp_path_factory.mktemp("run")
    options = TrainOptions(
        fit=FitConfig(epochs=2, batch_size=32, verbose=0),
        split=SplitConfig(block_frames=20),
        augment=augment.AugmentConfig(),
    )
    return train([tiny_tub], out, options, log=lambda _: None)


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    augment.add_arguments(parser)
    return parser.parse_args(["--tub", "t", "--out", "o", *flags])


# -- the run's outputs ------------------------------------------------------------------


def test_run_writes_bundle_keras_model_report_and_plots(trained):
    out = trained.out
    for name in (
        "pilot.tflite",
        "model.json",
        "model.keras",
        "report.md",
        "metrics.json",
        "learning_curves.png",
        "test_predictions.png",
        "checkpoints/best.keras",
    ):
        assert (out / name).stat().st_size > 0, name
    assert any((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    report = (out / "report.md").read_text()
    for text in (
        "| train |",
        "| training-dev |",
        "| dev |",
        "| test |",
        "baseline: train mean on test",
        "Noise floor",
        "95 % CI",
        "avoidable bias (train - noise floor)",
        "variance (training-dev - train)",
        "data mismatch (dev - training-dev)",
        "overfitting to dev (test - dev)",
        "verdict",
        "next step",
        "## Records used",
    ):
        assert text in report


def test_model_json_describes_everything_the_car_needs(trained):
    card = json.loads((trained.out / "model.json").read_text())
    assert card["architecture"] == "fast" and card["quantization"] in ("int8", "dynamic", "float32")
    model_input_dtype = "uint8" if card["quantization"] == "int8" else "float32"  # int8 folds x / 255 in
    assert card["input"] == {**FrameSpec(crop_top=40, width=80, height=40, dtype=model_input_dtype).to_dict()}
    assert [o["name"] for o in card["outputs"]] == ["angle", "throttle"]
    assert card["training"]["data"]["kept"] == 240
    assert card["training"]["split"]["sizes"]["test"] > 0
    assert card["training"]["augment"]["flip"] == 0.5
    assert set(card["metrics"]["errors"]) == {"train", "train_dev", "dev", "test"}
    assert card["parity"]["angle"]["max_abs_diff"] >= 0 and "passed" in card["parity"]
    latency = card["latency"]
    assert latency["median_ms"] > 0 and latency["p99_ms"] >= latency["median_ms"]
    assert latency["pi_estimate_ms"] == pytest.approx(
        latency["p99_ms"] * latency["pi_scale_factor"], rel=1e-6
    )


def test_exported_model_agrees_with_keras_through_the_car_pilot(trained, tiny_tub):
    pilot = Pilot.load(trained.out)
    frames = [record[CAMERA_IMAGE] for record in Tub(tiny_tub).records(load_images=True)][:20]
    keras_out = trained.model.predict(
        np.stack([normalise(prepare_frame(f, pilot.card.input), pilot.card.input) for f in frames]), verbose=0
    )
    for frame, keras_angle, keras_throttle in zip(
        frames, keras_out[0][:, 0], keras_out[1][:, 0], strict=True
    ):
        angle, throttle = pilot.run(frame)
        assert angle == pytest.approx(np.clip(keras_angle, -1, 1), abs=0.1)
        assert throttle == pytest.approx(np.clip(keras_throttle, -1, 1), abs=0.1)


def test_keras_predictions_are_keras_own_for_a_partial_last_batch(trained, tiny_tub):
    """The report's errors come from `keras_predictions` (eager, batch by batch): the same
    numbers as `model.predict`, whatever the last batch's size, and the test set's MSE in
    metrics.json is theirs."""
    spec = Pilot.load(trained.out).card.input
    frames = [record[CAMERA_IMAGE] for record in Tub(tiny_tub).records(load_images=True)][:23]
    prepared = np.stack([prepare_frame(frame, spec) for frame in frames])
    eager = keras_predictions(trained.model, prepared, spec, batch_size=8)  # 8 + 8 + 7
    keras_angle, keras_throttle = trained.model.predict(normalise(prepared, spec), verbose=0)
    np.testing.assert_allclose(eager["angle"], keras_angle[:, 0], atol=1e-5)
    np.testing.assert_allclose(eager["throttle"], keras_throttle[:, 0], atol=1e-5)
    assert keras_predictions(trained.model, prepared[:0], spec)["angle"].shape == (0,)

    test = trained.split.test
    data_frames, _ = load_frames([tiny_tub], progress=False)
    truth = data_frames.angles[test]
    predicted = keras_predictions(trained.model, prepare_all(data_frames.images[test], spec), spec)["angle"]
    assert trained.metrics["errors"]["test"]["angle"]["mse"] == pytest.approx(
        float(np.mean((predicted - truth) ** 2)), rel=1e-4
    )


def test_model_json_names_exactly_the_records_of_each_set(trained, tiny_tub):
    card = json.loads((trained.out / "model.json").read_text())
    records, sizes = card["training"]["records"], card["training"]["split"]["sizes"]
    seen: set[int] = set()
    for name in ("train", "train_dev", "dev", "test"):
        (tub, used), *others = records[name].items()
        assert not others and Path(tub) == tiny_tub
        indexes = {i for start, stop in used["ranges"] for i in range(start, stop)}
        assert len(indexes) == used["records"] == sizes[name] > 0
        assert not indexes & seen, f"{name} shares records with another set"
        seen |= indexes
    assert len(seen) < 240  # the held-out blocks' gaps are in no set


def test_dev_and_test_tubs_are_the_mismatched_data_of_the_diagnosis(tiny_tub, tmp_path):
    """Training tubs give train and training-dev; --dev-tub/--test-tub give dev and test."""
    other = write_tub(tmp_path / "other", 120, seed=5)
    options = TrainOptions(
        fit=FitConfig(epochs=1, batch_size=32, verbose=0), split=SplitConfig(block_frames=20)
    )
    result = train(Sources(tubs=[tiny_tub], dev_tubs=[other]), tmp_path / "run", options, log=lambda _: None)
    records = result.card.training["records"]
    assert set(records["train"]) == set(records["train_dev"]) == {str(tiny_tub)}
    assert set(records["dev"]) == set(records["test"]) == {str(other)}  # halves of the other tub
    assert result.card.training["dev_test_data"]["kept"] == 120
    gaps = result.metrics["diagnosis"]["gaps"]
    mse = {name: result.metrics["errors"][name]["angle"]["mse"] for name in ("train_dev", "dev")}
    assert gaps["data_mismatch"]["value"] == pytest.approx(mse["dev"] - mse["train_dev"])
    assert "blocks of the same tubs" not in gaps["data_mismatch"]["verdict"]
    assert "other tubs than training" in (tmp_path / "run" / "report.md").read_text()


def test_report_diagnosis_follows_the_errors(trained):
    metrics = trained.metrics
    mse = {name: metrics["errors"][name]["angle"]["mse"] for name in ("train", "train_dev", "dev", "test")}
    diagnosis = metrics["diagnosis"]
    gaps = {name: gap["value"] for name, gap in diagnosis["gaps"].items()}
    assert gaps["variance"] == pytest.approx(mse["train_dev"] - mse["train"])
    assert gaps["data_mismatch"] == pytest.approx(mse["dev"] - mse["train_dev"])
    assert gaps["overfitting_to_dev"] == pytest.approx(mse["test"] - mse["dev"])
    # the noise floor of a smooth sine label is tiny but measurable, with an interval around it
    floor = metrics["noise_floor"]["angle"]
    assert 0 < floor["ci_low"] <= floor["mse"] <= floor["ci_high"] < 0.01


# -- data -------------------------------------------------------------------------------


def test_bad_records_are_skipped_and_counted(tmp_path):
    tub = write_tub(tmp_path / "tub", 30)
    images = sorted((tub / "images").iterdir(), key=lambda p: int(p.name.split("_")[0]))
    images[3].write_bytes(b"not a jpeg")
    images[7].unlink()
    catalog = tub / "catalog_0.catalog"
    lines = catalog.read_text().splitlines()
    lines[10] = lines[10].replace('"user/angle": ', '"user/angle": NaN, "x": ')
    catalog.write_text("\n".join(lines) + "\n")
    frames, report = load_frames([tub], progress=False)
    assert len(frames) == 27 and report.kept == 27
    assert len(report.bad) == 3
    assert any("not a decodable JPEG" in line for line in report.bad)
    assert "bad records skipped: 3" in report.summary()


def test_filters_drop_other_modes_slow_frames_deleted_records_and_ranges(tmp_path):
    modes = ["user"] * 10 + ["local"] * 5 + ["user"] * 5
    throttles = [0.5] * 16 + [0.0] * 4
    tub = write_tub(tmp_path / "tub", 20, modes=modes, throttles=throttles)
    Tub(tub).delete([0, 1])
    frames, report = load_frames([tub], RecordFilter(), progress=False)
    assert len(frames) == 13 and report.deleted == 2
    frames, _ = load_frames([tub], RecordFilter(min_throttle=0.1), progress=False)
    assert len(frames) == 9 and frames.throttles.min() > 0.1
    frames, _ = load_frames([tub], RecordFilter(modes=("user", "local")), progress=False)
    assert len(frames) == 18
    frames, _ = load_frames([tub], RecordFilter(index_range=(2, 6)), progress=False)
    assert list(frames.indexes) == [2, 3, 4, 5]


def test_parallel_decode_gives_the_same_frames(tiny_tub):
    one, _ = load_frames([tiny_tub], workers=1, progress=False)
    four, _ = load_frames([tiny_tub], workers=4, progress=False)
    assert np.array_equal(one.images, four.images) and np.array_equal(one.angles, four.angles)


def test_leading_labels_pairs_each_frame_with_a_later_command_of_its_own_session(tiny_tub):
    frames, _ = load_frames([tiny_tub], progress=False)
    frames.sessions = np.array([f"{tiny_tub}#{i % 2}" for i in range(len(frames))])  # two interleaved
    led = frames.lead_labels(2)
    assert len(led) == len(frames) - 2 * 2  # each session loses its last two frames
    for session in ("0", "1"):
        mine = np.flatnonzero(frames.sessions == f"{tiny_tub}#{session}")
        theirs = np.flatnonzero(led.sessions == f"{tiny_tub}#{session}")
        assert np.array_equal(led.images[theirs], frames.images[mine[:-2]])
        assert np.array_equal(led.angles[theirs], frames.angles[mine[2:]])
        assert np.array_equal(led.throttles[theirs], frames.throttles[mine[2:]])
    assert frames.lead_labels(0) is frames
    with pytest.raises(ValueError, match=">= 0 frames"):
        frames.lead_labels(-1)


# -- split ------------------------------------------------------------------------------


def test_split_is_by_contiguous_blocks_with_gaps_and_no_leak():
    sessions = np.array(["a"] * 600 + ["b"] * 400)
    config = SplitConfig(block_frames=50, gap=3, seed=1)
    split = split_frames(sessions, config)
    sets = [set(split.train), set(split.dev), set(split.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(split.dev) == len(split.test) == 100 - 2 * 3 * 2  # two blocks each, 3 cut at both ends
    for positions in (split.dev, split.test):
        # every dev/test frame is at least gap+1 frames away from any training frame
        distance = np.abs(positions[:, None] - split.train[None, :]).min(axis=1)
        assert distance.min() >= config.gap + 1
        runs = np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1)
        assert all(len(run) >= 50 - 2 * config.gap for run in runs), "dev/test are not whole blocks"
    assert split_frames(sessions, config).sizes() == split.sizes()
    assert not np.array_equal(split_frames(sessions, replace(config, seed=2)).dev, split.dev)


def test_split_flags_change_the_split():
    sessions = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    base = SplitConfig(block_frames=50, gap=0)
    assert split_frames(sessions, replace(base, fractions=(0.6, 0.2, 0.2))).sizes()["dev"] == 200
    by_session = split_frames(sessions, replace(base, unit="session", fractions=(0.5, 0.3, 0.2)))
    assert {len(by_session.dev), len(by_session.test)} <= {500, 300, 200}
    assert len(split_frames(sessions, replace(base, block_frames=100)).dev) == 100
    assert len(split_frames(sessions, replace(base, max_eval_frames=50)).test) == 50
    assert len(split_frames(sessions, replace(base, gap=5)).dev) == 100 - 20


def test_split_refuses_too_few_blocks():
    with pytest.raises(ValueError, match="smaller --block-frames"):
        split_frames(np.array(["a"] * 100), SplitConfig(block_frames=100))


# -- pipeline and augmentation ------------------------------------------------------------


def test_augmentation_touches_only_the_training_split(tiny_tub):
    frames, _ = load_frames([tiny_tub], progress=False)
    spec = FrameSpec(crop_top=40, width=80, height=40)
    prepared = prepare_all(frames.images[:32], spec)
    plain = training_dataset(prepared, frames.angles[:32], frames.throttles[:32], spec, 32, seed=0)
    images, labels = next(iter(plain))
    originals = normalise(prepared, spec)
    for image in images.numpy():  # every training image is one of the prepared frames, untouched
        assert np.abs(originals - image).reshape(len(originals), -1).max(axis=1).min() == 0
    flips_only = augment.AugmentConfig(
        flip=1.0, shift=0.0, shadow=0.0, brightness=0.0, gamma=0.0, color=0.0, blur=0.0, noise=0.0
    )
    augmenter = augment.build_augmenter(flips_only, seed=0)
    with AugmentedBatches(
        frames.images[:32], frames.angles[:32], frames.throttles[:32], augmenter, spec
    ) as source:
        _, labels_aug = next(iter(augmented_dataset(source, spec, 32, seed=0)))
    assert sorted(labels_aug["angle"].numpy().ravel()) == pytest.approx(sorted(-frames.angles[:32]), abs=1e-6)
    assert sorted(labels["angle"].numpy().ravel()) == pytest.approx(sorted(frames.angles[:32]), abs=1e-6)


def test_pipelines_prefetch_a_fixed_number_of_batches_without_the_autotuner(tiny_tub):
    """The autotuner's thread stalled the end of `fit` for 17-19 s (training/pipeline.py's
    `prefetched`): no pipeline that training or evaluation iterates may start it."""
    frames, _ = load_frames([tiny_tub], progress=False)
    spec = FrameSpec(crop_top=40, width=80, height=40)
    images, angles, throttles = frames.images[:16], frames.angles[:16], frames.throttles[:16]
    prepared = prepare_all(images, spec)
    augmenter = augment.build_augmenter(augment.AugmentConfig(), seed=0)
    with AugmentedBatches(images, angles, throttles, augmenter, spec) as source:
        pipelines = {
            "training": training_dataset(prepared, angles, throttles, spec, 8, seed=0),
            "weighted": training_dataset(prepared, angles, throttles, spec, 8, 0, np.ones(16)),
            "augmented": augmented_dataset(source, spec, 8, seed=0),
            "evaluation": evaluation_dataset(prepared, angles, throttles, spec),
        }
        for name, dataset in pipelines.items():
            assert dataset.options().autotune.enabled is False, name
            images_batch, _ = next(iter(dataset))
            assert images_batch.dtype.name == "float32", name


# -- every flag reaches the options and changes training ----------------------------------

FLAG_CASES = [
    (["--model", "linear"], lambda o: o.architecture == "linear"),
    (["--dropout", "0.4"], lambda o: o.model.dropout == 0.4),
    (["--l2", "0.01"], lambda o: o.model.l2 == 0.01),
    (["--no-batch-norm"], lambda o: o.model.batch_norm is False),
    (["--width-multiplier", "2"], lambda o: o.model.width == 2.0),
    (["--epochs", "7"], lambda o: o.fit.epochs == 7),
    (["--batch-size", "8"], lambda o: o.fit.batch_size == 8),
    (["--lr", "0.01"], lambda o: o.fit.lr == 0.01),
    (["--lr-schedule", "exponential"], lambda o: o.fit.lr_schedule == "exponential"),
    (["--lr-decay", "0.5"], lambda o: o.fit.lr_decay == 0.5),
    (["--lr-final-fraction", "0.5"], lambda o: o.fit.lr_final_fraction == 0.5),
    (["--patience", "1"], lambda o: o.fit.patience == 1),
    (["--no-early-stopping"], lambda o: not o.fit.early_stopping),
    (["--min-delta", "0.1"], lambda o: o.fit.min_delta == 0.1),
    (["--throttle-weight", "2"], lambda o: o.fit.throttle_weight == 2),
    (["--verbose", "0"], lambda o: o.fit.verbose == 0),
    (["--steps-per-execution", "2"], lambda o: o.fit.steps_per_execution == 2),  # runs: below
    (["--distribute", "mirrored"], lambda o: o.distribute == "mirrored"),  # runs: tests/test_registry.py
    (["--seed", "3"], lambda o: o.fit.seed == 3 and o.split.seed == 3),
    (["--split", "0.7", "0.2", "0.1"], lambda o: o.split.fractions == (0.7, 0.2, 0.1)),
    (["--split-by", "session"], lambda o: o.split.unit == "session"),
    (["--block-frames", "40"], lambda o: o.split.block_frames == 40),
    (["--split-gap", "0"], lambda o: o.split.gap == 0),
    (["--max-eval-frames", "99"], lambda o: o.split.max_eval_frames == 99),
    (["--train-dev", "0.2"], lambda o: o.split.train_dev == 0.2),
    (["--init-from", "models/sim"], lambda o: o.init_from == "models/sim"),  # runs: tests/test_transfer.py
    (["--init-from", "m", "--freeze-conv"], lambda o: o.freeze_conv),
    (["--modes", "user", "local"], lambda o: o.rules.modes == ("user", "local")),
    (["--min-throttle", "0.2"], lambda o: o.rules.min_throttle == 0.2),
    (["--records", "0:800"], lambda o: o.rules.index_range == (0, 800)),
    (["--label-limit", "2"], lambda o: o.rules.label_limit == 2),
    (["--workers", "1"], lambda o: o.workers == 1),
    (["--augment-workers", "0"], lambda o: o.augment_workers == 0),  # runs: tests/test_augment.py
    (
        ["--crop-top", "30", "--crop-bottom", "2", "--width", "64", "--height", "32", "--color", "bgr"],
        lambda o: (
            o.frame_overrides == {"crop_top": 30, "crop_bottom": 2, "width": 64, "height": 32, "color": "bgr"}
        ),
    ),
    (["--quantize", "float32"], lambda o: o.quantization == "float32"),
    (["--latency-budget-ms", "3"], lambda o: o.budget_ms == 3),
    (["--pi-scale-factor", "4"], lambda o: o.pi_scale_factor == 4),
    (["--augment", "none"], lambda o: not o.augment.enabled),
    (["--aug-flip", "0.9"], lambda o: o.augment.flip == 0.9),
]


@pytest.mark.parametrize("flags,check", FLAG_CASES, ids=[c[0][0] for c in FLAG_CASES])
def test_each_flag_reaches_the_options(flags, check):
    default = options_from_args(args := parse(), augment.config_from_args(args))
    options = options_from_args(args := parse(*flags), augment.config_from_args(args))
    assert check(options) and not check(default)


def test_steps_per_execution_changes_the_speed_not_what_is_learned():
    """Several optimiser steps per call into TensorFlow train the same weights as one step a call."""
    import keras
    import tensorflow as tf

    from training.fit import compile_model

    rng = np.random.default_rng(0)
    images = rng.random((48, 8, 8, 3), np.float32)
    labels = {"angle": rng.random((48, 1), np.float32), "throttle": rng.random((48, 1), np.float32)}
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).repeat()  # endless, as training's

    def trained(steps_per_execution: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 3))
        hidden = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
        model = keras.Model(
            inputs, {name: keras.layers.Dense(1, name=name)(hidden) for name in ("angle", "throttle")}
        )
        compile_model(model, FitConfig(steps_per_execution=steps_per_execution), steps_per_epoch=6)
        model.fit(data, epochs=2, steps_per_epoch=6, verbose=0)
        assert int(model.optimizer.iterations) == 12  # no call straddles an epoch's end
        return [model.steps_per_execution, *model.get_weights()]

    one, several = trained(1), trained(4)
    assert (one[0], several[0]) == (1, 3)  # 4 does not divide an epoch of 6 steps: 3 does
    for a, b in zip(one[1:], several[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("frames", [100, 500, 780, 800, 900, 2990, 20_000])
def test_an_epoch_is_whole_calls_of_at_least_half_the_steps_asked(frames):
    """A prime number of batches (13 for the real tub's 800 frames) must not fall back to one
    step a call: the epoch is rounded by at most one batch to whole calls of 4-8 steps."""
    from training.fit import steps_per_call
    from training.pipeline import steps_per_epoch

    batches = -(-frames // 64)
    steps = steps_per_epoch(frames, 64, most_per_call=8)
    per_call = steps_per_call(8, steps)
    assert steps % per_call == 0 and abs(steps - batches) <= 1
    assert per_call >= min(4, batches)


def test_every_train_flag_is_covered_above():
    """The --aug-* knobs are proved in tests/test_augment.py (STRENGTH_KNOBS and the p tests),
    --filter in tests/test_record_filter.py."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    covered = {flag for flags, _ in FLAG_CASES for flag in flags if flag.startswith("--")} | {
        "--tub",
        "--out",
        "--no-batch-norm",
        "--filter",
        "--tub-weight",  # the data's flags: test_source_flags_name_the_tubs_and_their_weights
        "--dev-tub",
        "--test-tub",
    }
    flags = {s for action in parser._actions for s in action.option_strings if s.startswith("--")} - {
        "--help",
        "--batch-norm",
        "--early-stopping",
    }
    assert flags <= covered, f"flags without a test: {sorted(flags - covered)}"


def test_source_flags_name_the_tubs_and_their_weights():
    plain = sources_from_args(parse())
    assert list(plain.tubs) == ["t"] and plain.tub_weights is None and not plain.mismatched
    mixed = sources_from_args(
        parse("--tub", "sim1", "sim2", "--tub-weight", "0.3", "--dev-tub", "real", "--test-tub", "real2")
    )
    assert list(mixed.tubs) == ["t", "sim1", "sim2"] and mixed.tub_weights == [1.0, 0.3, 0.3]
    assert mixed.dev_tubs == ["real"] and mixed.test_tubs == ["real2"] and mixed.mismatched
    for wrong in (["--tub-weight", "0.5", "--tub-weight", "2"], ["--tub-weight", "0"]):
        with pytest.raises(SystemExit):
            parse(*wrong)
    with pytest.raises(ValueError, match="--init-from"):
        options_from_args(args := parse("--freeze-conv"), augment.config_from_args(args))


def test_flags_default_to_the_configs_and_help_shows_every_default():
    """The flags are generated from the config dataclasses: no flag given is the configs' defaults."""
    assert options_from_args(parse()) == TrainOptions()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for shown in ("--split TRAIN DEV TEST train/dev/test fractions (default: 0.8 0.1 0.1)", "(default: 30)"):
        assert shown in text
    for spec in [
        f for config in (FitConfig, SplitConfig, ModelOptions, RecordFilter) for f in flag_fields(config)
    ]:
        action = next(a for a in parser._actions if flag_name(spec) in a.option_strings)
        assert action.default == spec.default and (spec.default is None or "(default: " in action.help)


def test_model_flags_change_the_network():
    shape = (40, 80, 3)
    layers = lambda m, kind: [layer for layer in m.layers if type(layer).__name__ == kind]  # noqa: E731
    assert not layers(build_model("fast", shape, ModelOptions(dropout=0.0)), "Dropout")
    assert {
        layer.rate for layer in layers(build_model("fast", shape, ModelOptions(dropout=0.35)), "Dropout")
    } == {0.35}
    assert not build_model("fast", shape).losses
    assert len(build_model("fast", shape, ModelOptions(l2=0.01)).losses) == 5  # 4 convs + 1 dense
    assert layers(build_model("fast", shape), "BatchNormalization")
    assert not layers(build_model("fast", shape, ModelOptions(batch_norm=False)), "BatchNormalization")
    assert layers(build_model("linear", (120, 160, 3), ModelOptions(batch_norm=True)), "BatchNormalization")
    filters = lambda m: [layer.filters for layer in layers(m, "Conv2D")]  # noqa: E731
    assert filters(build_model("fast", shape, ModelOptions(width=2.0))) == [
        2 * f for f in filters(build_model("fast", shape))
    ]
    assert (
        build_model("fast", shape, ModelOptions(width=0.5)).count_params()
        < build_model("fast", shape).count_params()
    )


def test_pilotnet_is_nvidias_network_on_its_own_input():
    spec = default_frame_spec("pilotnet")
    assert spec.input_shape == (66, 200, 3)
    model = build_model("pilotnet", spec.input_shape)
    assert [layer.filters for layer in model.layers if type(layer).__name__ == "Conv2D"] == [
        24,
        36,
        48,
        64,
        64,
    ]
    assert [layer.units for layer in model.layers if type(layer).__name__ == "Dense"] == [100, 50, 10, 1, 1]
    assert [tuple(output.shape) for output in model.outputs] == [(None, 1), (None, 1)]


def test_frame_flags_change_the_model_input(trained, tiny_tub):
    from training.train import frame_spec

    frames, _ = load_frames([tiny_tub], progress=False)
    spec = frame_spec(
        frames, TrainOptions(frame_overrides={"crop_top": 20, "width": 64, "height": 48, "color": "gray"})
    )
    assert spec.input_shape == (48, 64, 1) and spec.crop_top == 20


def test_learning_rate_schedules():
    from training.fit import learning_rate

    def at(config, step):
        schedule = learning_rate(config, steps_per_epoch=10)
        return float(schedule(step)) if callable(schedule) else schedule

    constant = FitConfig(lr=0.01, lr_schedule="constant", epochs=5)
    assert at(constant, 0) == at(constant, 49) == 0.01
    cosine = FitConfig(lr=0.01, lr_schedule="cosine", epochs=5, lr_final_fraction=0.1)
    assert at(cosine, 0) == pytest.approx(0.01) and at(cosine, 50) == pytest.approx(0.001)
    assert at(replace(cosine, lr_final_fraction=0.5), 50) == pytest.approx(0.005)
    exponential = FitConfig(lr=0.01, lr_schedule="exponential", lr_decay=0.5)
    assert at(exponential, 9) == pytest.approx(0.01) and at(exponential, 20) == pytest.approx(0.0025)


_FRAMES: dict = {}


def tiny_fit(tub: Path, out: Path, **fit_options):
    """Fit the fast model on the tiny tub (no export); the model carries its start weights."""
    import keras

    from training.fit import fit

    config = FitConfig(**{"epochs": 1, "batch_size": 32, "verbose": 0, **fit_options})
    keras.utils.set_random_seed(config.seed)
    if tub not in _FRAMES:
        _FRAMES[tub] = load_frames([tub], progress=False)[0]
    frames = _FRAMES[tub]
    spec = FrameSpec(crop_top=40, width=40, height=20)
    split = split_frames(frames.sessions, SplitConfig(block_frames=20))
    train_set, dev_set = frames.take(split.train), frames.take(split.dev)
    train_data = training_dataset(
        prepare_all(train_set.images, spec),
        train_set.angles,
        train_set.throttles,
        spec,
        config.batch_size,
        config.seed,
    )
    dev_data = evaluation_dataset(prepare_all(dev_set.images, spec), dev_set.angles, dev_set.throttles, spec)
    model = build_model("fast", spec.input_shape)
    model.initial_weights = trainable_weights_of(model)
    model.train_count = len(train_set)
    history = fit(
        model, train_data, dev_data, steps_per_epoch(len(train_set), config.batch_size), config, out
    )
    return model, history, dev_data


def weights_of(model) -> np.ndarray:
    return np.concatenate([w.ravel() for w in model.get_weights()])


def trainable_weights_of(model) -> np.ndarray:
    return np.concatenate([np.asarray(w).ravel() for w in model.trainable_weights])


SLOW_LR = {"lr": 1e-5, "lr_schedule": "constant", "batch_size": 64}


@pytest.fixture(scope="module")
def slow_lr_fit(tiny_tub, tmp_path_factory):
    return tiny_fit(tiny_tub, tmp_path_factory.mktemp("fit"), **SLOW_LR)[0]


def test_lr_scales_the_update_and_batch_size_the_steps(slow_lr_fit, tiny_tub, tmp_path):
    small = slow_lr_fit
    large, _, _ = tiny_fit(tiny_tub, tmp_path, lr=1e-3, lr_schedule="constant", batch_size=16)
    step_small = np.abs(trainable_weights_of(small) - small.initial_weights).max()
    step_large = np.abs(trainable_weights_of(large) - large.initial_weights).max()
    assert step_large > 10 * step_small
    assert int(small.optimizer.iterations) == -(-small.train_count // 64)
    assert int(large.optimizer.iterations) == -(-large.train_count // 16)
    assert int(large.optimizer.iterations) > int(small.optimizer.iterations)


def test_seed_reproduces_a_run_and_another_seed_does_not(slow_lr_fit, tiny_tub, tmp_path):
    again, _, _ = tiny_fit(tiny_tub, tmp_path, **SLOW_LR)
    other, _, _ = tiny_fit(tiny_tub, tmp_path, seed=1, **SLOW_LR)
    assert np.array_equal(weights_of(slow_lr_fit), weights_of(again))
    assert not np.array_equal(weights_of(slow_lr_fit), weights_of(other))


def test_early_stopping_stops_and_restores_the_best_weights(tiny_tub, tmp_path, capfd):
    # A huge min_delta means no epoch after the first counts as an improvement, so
    # patience 1 stops after epoch 2 and the weights of epoch 1 come back.
    model, history, dev_data = tiny_fit(
        tiny_tub, tmp_path, epochs=6, lr=0.05, lr_schedule="constant", patience=1, min_delta=1e9
    )
    assert len(history["loss"]) == 2
    restored = model.evaluate(dev_data, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(history["val_loss"][0], rel=1e-4)
    assert (tmp_path / "checkpoints" / "best.keras").exists()
    assert "Epoch" not in capfd.readouterr().out  # --verbose 0: silent


def test_throttle_weight_and_progress_output(tiny_tub, tmp_path, capfd):
    _, history, _ = tiny_fit(tiny_tub, tmp_path, throttle_weight=3.0, verbose=2)
    assert history["loss"][0] == pytest.approx(
        history["angle_loss"][0] + 3.0 * history["throttle_loss"][0], rel=1e-3
    )
    assert "throttle_loss" in capfd.readouterr().out  # --verbose 2: one line per epoch


# -- export -----------------------------------------------------------------------------


def test_quantisation_choice_and_latency_budget(trained, tmp_path):
    from training.export import export_bundle

    spec = trained.card.input
    frames = np.random.default_rng(0).integers(0, 256, (16, *spec.input_shape), dtype=np.uint8)
    cards = {
        q: export_bundle(
            trained.model,
            spec,
            tmp_path / q,
            architecture="fast",
            representative=frames,
            parity_inputs=frames,
            quantization=q,
            budget_ms=1e-6,
            log=lambda _: None,
        )
        for q in ("float32", "dynamic", "int8")
    }
    sizes = {q: (tmp_path / q / "pilot.tflite").stat().st_size for q in cards}
    assert sizes["int8"] < sizes["float32"] / 2 and sizes["dynamic"] < sizes["float32"] / 2
    assert (
        cards["float32"].parity["angle"]["max_abs_diff"]
        < 1e-4
        < cards["int8"].parity["angle"]["max_abs_diff"]
    )
    assert all(card.latency.meets_budget is False for card in cards.values())
    from ai_edge_litert.interpreter import Interpreter

    weights = [  # int8 tensors with one row per output channel: conv kernels and dense matrices
        t
        for t in Interpreter(model_path=str(tmp_path / "int8" / "pilot.tflite")).get_tensor_details()
        if t["dtype"] == np.int8 and len(t["shape"]) >= 2 and t["shape"][0] > 1
    ]
    assert len(weights) == 5  # fast: four convolutions and the dense layer, each per output channel
    assert all(len(t["quantization_parameters"]["scales"]) == t["shape"][0] for t in weights)
    generous = export_bundle(
        trained.model,
        spec,
        tmp_path / "g",
        architecture="fast",
        representative=frames,
        parity_inputs=frames,
        quantization="float32",
        budget_ms=1e6,
        pi_scale_factor=2.0,
        log=lambda _: None,
    )
    assert generous.latency.meets_budget and generous.latency.pi_scale_factor == 2.0


def test_export_script_converts_a_saved_keras_model_into_a_bundle_the_car_loads(trained, tiny_tub, tmp_path):
    import subprocess
    import sys

    from car.pilot import Pilot

    out = tmp_path / "bundle"
    script = Path(__file__).resolve().parents[1] / "scripts" / "export.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "convert",
            "--keras",
            str(trained.out / "model.keras"),
            "--tub",
            str(tiny_tub),
            "--block-frames",
            "20",
            "--quantize",
            "float32",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "float32" in done.stdout
    pilot = Pilot.load(out)
    # preprocessing taken from the model.json beside the .keras; a float32 model takes the float input
    assert pilot.card.input == replace(trained.card.input, dtype="float32")
    frame = road_frame(0.5, np.random.default_rng(1))
    expected = Pilot.load(trained.out).run(frame)
    assert pilot.run(frame) == pytest.approx(
        expected, abs=0.1
    )  # float32 export vs the int8 bundle of the run


def test_batch_norm_statistics_settle_on_a_small_tub_so_dev_beats_the_mean(tiny_tub, tmp_path):
    """With Keras's default momentum (0.99) the moving statistics of 60 steps are still mostly
    their start values: at inference the model then predicts about the mean, dev loss never
    improves, and early stopping keeps epoch 1 (the evaluation in the report shows it)."""
    options = TrainOptions(
        fit=FitConfig(epochs=10, batch_size=32, verbose=0, patience=10),
        split=SplitConfig(block_frames=20),
        quantization="float32",
    )
    result = train([tiny_tub], tmp_path / "run", options, log=lambda _: None)
    errors, baseline = result.metrics["errors"], result.metrics["baseline"]
    assert errors["train"]["angle"]["mse"] < 0.2 * baseline["train"]["angle"]["mse"]
    assert errors["dev"]["angle"]["mse"] < 0.3 * baseline["dev"]["angle"]["mse"]


# The normalisations the models use: each architecture's own, and [-1, 1] inputs (offset -1).
NORMALISED_INPUTS = {
    "linear": default_frame_spec("linear"),
    "pilotnet": default_frame_spec("pilotnet"),
    "fast": default_frame_spec("fast"),
    "fast to [-1, 1]": replace(default_frame_spec("fast"), scale=2 / 255, offset=-1.0),
}


@pytest.mark.parametrize("name", NORMALISED_INPUTS)
def test_tensorflow_normalisation_equals_the_cars_on_real_frames(name, donkey_tub):
    """Training feeds the model through `normalise_batch` (TensorFlow), the car through
    `car.frames.normalise` (NumPy): on real frames both give the same float32 inputs."""
    from training.pipeline import normalise_batch

    spec = NORMALISED_INPUTS[name]
    frames, _ = load_frames([donkey_tub], progress=False)
    prepared = prepare_all(frames.images[::5], spec)  # 200 real frames, (200, H, W, C) uint8
    car = normalise(prepared, spec)

    direct, _ = normalise_batch(spec)(prepared, {})
    batched = np.concatenate(
        [images for images, _ in evaluation_dataset(prepared, *np.zeros((2, 200)), spec)]
    )
    for tensorflow in (np.asarray(direct), batched):
        assert tensorflow.dtype == car.dtype == np.float32 and tensorflow.shape == car.shape
        np.testing.assert_allclose(tensorflow, car, rtol=0, atol=2**-23)  # one float32 step at 1.0
