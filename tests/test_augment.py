"""Label-aware augmentation: geometry changes the label, photometry does not, seeds reproduce."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

import augment
from augment.config import PROBABILITY_FIELDS, AugmentConfig
from augment.steering import focal_length_px, steer_per_pixel, steer_per_pixel_for
from car.channels import CAMERA_IMAGE, USER_ANGLE, USER_THROTTLE
from car.config import CarConfig
from car.tub import Tub

NONE = AugmentConfig.preset_named("none")


def only(**settings: float) -> AugmentConfig:
    """The `none` preset with a few knobs set."""
    return replace(NONE, **settings)


def stripe_frame(column: int = 80) -> np.ndarray:
    """A grey 120x160 frame with one bright vertical stripe (a lane line we can track)."""
    frame = np.full((120, 160, 3), 60, np.uint8)
    frame[:, column : column + 2] = 250
    return frame


def stripe_column(frame: np.ndarray) -> float:
    return float(np.flatnonzero(frame[60, :, 0] > 150).mean())


@pytest.fixture(scope="module")
def real_frames(donkey_tub: Path) -> list[tuple[np.ndarray, float, float]]:
    records = islice(Tub(donkey_tub).records(load_images=True), 0, 400, 20)
    return [(r[CAMERA_IMAGE], r[USER_ANGLE], r[USER_THROTTLE]) for r in records]


def test_flip_mirrors_image_and_negates_angle_only(real_frames):
    augmenter = augment.build_augmenter(only(flip=1.0), seed=0)
    for image, angle, throttle in real_frames:
        out, out_angle, out_throttle = augmenter(image, angle, throttle)
        np.testing.assert_array_equal(out, image[:, ::-1])
        assert out_angle == pytest.approx(-angle)
        assert out_throttle == throttle


def test_flip_removes_steering_bias_on_real_frames(real_frames):
    augmenter = augment.build_augmenter(only(flip=0.5), seed=1)
    angles = [augmenter(image, 0.3, t, key=k)[1] for k, (image, _, t) in enumerate(real_frames * 10)]
    assert set(np.round(angles, 6)) == {-0.3, 0.3}
    assert abs(np.mean(angles)) < 0.1  # 200 fair coin flips: |mean| < 0.1 with p > 0.99


def test_shift_correction_follows_the_measured_displacement():
    k = 0.02
    augmenter = augment.build_augmenter(
        only(shift=1.0, shift_px=12, shift_y_px=0, shift_steer_per_px=k), seed=2
    )
    frame = stripe_frame()
    moved = []
    for key in range(40):
        out, angle, throttle = augmenter(frame, 0.1, 0.4, key=key)
        dx = stripe_column(out) - stripe_column(frame)
        assert abs(dx) <= 12
        # Content moved right -> the car points left of the road -> steer more to the right.
        assert angle == pytest.approx(0.1 + k * dx, abs=1e-6)
        assert throttle == pytest.approx(0.4)
        moved.append(dx)
    assert min(moved) < -3 and max(moved) > 3


def test_flip_then_shift_compose_labels_in_order():
    k = 0.01
    augmenter = augment.build_augmenter(
        only(flip=1.0, shift=1.0, shift_px=8, shift_y_px=0, shift_steer_per_px=k), 3
    )
    frame = stripe_frame(40)
    for key in range(10):
        out, angle, _ = augmenter(frame, 0.5, 0.2, key=key)
        dx = stripe_column(out) - (159 - stripe_column(frame))  # displacement after the mirror
        assert angle == pytest.approx(float(np.clip(-0.5 + k * dx, -1, 1)), abs=1e-6)


def test_corrected_angle_stays_in_range():
    augmenter = augment.build_augmenter(only(shift=1.0, shift_px=20, shift_steer_per_px=0.2), seed=4)
    angles = [augmenter(stripe_frame(), 0.95, 0.1, key=k)[1] for k in range(30)]
    assert min(angles) >= -1.0 and max(angles) <= 1.0
    assert 1.0 in angles and -1.0 in angles


def test_photometric_transforms_change_pixels_not_labels(real_frames):
    photometric = {"shadow": 1.0, "brightness": 1.0, "gamma": 1.0, "color": 1.0, "blur": 1.0, "noise": 1.0}
    augmenter = augment.build_augmenter(only(**photometric), seed=5)
    image, angle, throttle = real_frames[0]
    result = augmenter.apply(image, angle, throttle, key=0)
    assert result.angle == pytest.approx(angle) and result.throttle == pytest.approx(throttle)
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    assert np.abs(result.image.astype(int) - image).mean() > 2.0
    assert {
        "RandomShadow",
        "RandomBrightnessContrast",
        "RandomGamma",
        "HueSaturationValue",
        "GaussNoise",
    } <= set(result.applied)


# Every strength knob (and its --aug-* flag) with the transform it tunes and another value.
STRENGTH_KNOBS = {
    "shift_px": ("shift", 3.0),
    "shift_steer_per_px": ("shift", 0.01),
    "shift_y_px": ("shift", 0.0),
    "shadow_intensity": ("shadow", 0.95),
    "brightness_limit": ("brightness", 0.05),
    "gamma_limit": ("gamma", 0.05),
    "color_strength": ("color", 0.05),
    "blur_kernel": ("blur", 9.0),
    "noise_std": ("noise", 0.2),
}


def test_every_augmentation_knob_is_covered():
    knobs = {f for f in AugmentConfig.__dataclass_fields__ if f not in PROBABILITY_FIELDS}
    assert knobs == {*STRENGTH_KNOBS, "group", "preset"}  # group: test_a_group_shares_one_draw...


@pytest.mark.parametrize("knob", sorted(STRENGTH_KNOBS))
def test_each_strength_knob_changes_what_its_transform_does(real_frames, knob):
    transform, other = STRENGTH_KNOBS[knob]
    image, angle, throttle = real_frames[4]
    flag = "--aug-" + knob.replace("_", "-")
    parser = argparse.ArgumentParser()
    augment.add_arguments(parser)
    tuned = augment.config_from_args(
        parser.parse_args(["--augment", "none", f"--aug-{transform}", "1", flag, str(other)])
    )
    assert getattr(tuned, knob) == other and getattr(only(**{transform: 1.0}), knob) != other
    outputs = []
    for config in (only(**{transform: 1.0}), tuned):
        results = [
            augment.build_augmenter(config, seed=3).apply(image, angle, throttle, key=k) for k in range(8)
        ]
        outputs.append((np.stack([r.image for r in results]), [r.angle for r in results]))
    (default_images, default_angles), (tuned_images, tuned_angles) = outputs
    assert not np.array_equal(default_images, tuned_images) or default_angles != tuned_angles


def test_same_seed_and_key_reproduce_and_others_differ(real_frames):
    image, angle, throttle = real_frames[3]
    first = augment.build_augmenter(AugmentConfig(), seed=7)
    again = augment.build_augmenter(AugmentConfig(), seed=7)
    other = augment.build_augmenter(AugmentConfig(), seed=8)
    runs = [[aug.apply(image, angle, throttle, key=k) for k in range(12)] for aug in (first, again, other)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a.image, b.image)
        assert (a.angle, a.applied) == (b.angle, b.applied)
    assert any(not np.array_equal(a.image, c.image) for a, c in zip(runs[0], runs[2]))
    assert len({r.applied for r in runs[0]}) > 3  # keys draw different transforms
    # Without a key, calls are numbered in order: a fresh augmenter repeats the sequence.
    seq = augment.build_augmenter(AugmentConfig(), seed=7)
    np.testing.assert_array_equal(seq(image, angle, throttle)[0], runs[0][0].image)
    np.testing.assert_array_equal(seq(image, angle, throttle)[0], runs[0][1].image)


def test_default_preset_fires_each_transform_near_its_probability(real_frames):
    config = AugmentConfig()
    augmenter = augment.build_augmenter(config, seed=9)
    image, angle, throttle = real_frames[1]
    n = 300
    counts: dict[str, int] = {}
    for key in range(n):
        for name in augmenter.apply(image, angle, throttle, key=key).applied:
            counts[name] = counts.get(name, 0) + 1
    counts["Blur"] = counts.pop("GaussianBlur", 0) + counts.pop("MotionBlur", 0)
    expected = {
        "HorizontalFlip": config.flip,
        "Shift": config.shift,
        "RandomShadow": config.shadow,
        "RandomBrightnessContrast": config.brightness,
        "GaussNoise": config.noise,
        "Blur": config.blur,
    }
    for name, p in expected.items():
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts.get(name, 0) - n * p) < 4 * sigma, (name, counts.get(name), n * p)


def test_none_preset_is_the_identity(real_frames):
    augmenter = augment.build_augmenter(NONE, seed=0)
    assert not NONE.enabled
    image, angle, throttle = real_frames[2]
    out, out_angle, out_throttle = augmenter(image, angle, throttle)
    assert np.shares_memory(out, image) and np.array_equal(out, image)  # untouched, not even copied
    assert (out_angle, out_throttle) == (angle, throttle)


def test_rejects_frames_that_are_not_rgb_uint8():
    augmenter = augment.build_augmenter(AugmentConfig(), seed=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        augmenter(np.zeros((120, 160, 3), np.float32), 0.0, 0.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        augmenter(np.zeros((120, 160), np.uint8), 0.0, 0.0)


def test_flags_pick_a_preset_and_override_single_knobs():
    parser = argparse.ArgumentParser()
    augment.add_arguments(parser)
    default = augment.config_from_args(parser.parse_args([]))
    assert default == AugmentConfig()
    config = augment.config_from_args(
        parser.parse_args(["--augment", "none", "--aug-flip", "0.5", "--aug-shift-px", "6"])
    )
    assert config.flip == 0.5 and config.shift_px == 6 and config.preset == "none"
    assert all(getattr(config, p) == 0 for p in PROBABILITY_FIELDS if p != "flip")
    assert AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="outside"):
        augment.config_from_args(parser.parse_args(["--aug-blur", "1.5"]))
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        AugmentConfig.from_dict({"flip": 0.5, "flop": 1})


def test_steering_constant_matches_exact_pure_pursuit_for_small_shifts():
    config = CarConfig()  # the real Donkey car's camera and steering scale
    f, b, lookahead = focal_length_px(160, config.camera.fov_deg), config.steering.wheelbase_m, 0.7
    max_deg = config.steering.max_wheel_angle_deg
    per_px = steer_per_pixel(f, b, lookahead, max_deg)
    for dx in (1.0, 4.0, 8.0):
        exact = math.atan(2 * b * math.sin(math.atan(dx / f)) / lookahead) / math.radians(max_deg)
        assert per_px * dx == pytest.approx(exact, rel=0.03)
    assert pytest.approx(per_px, abs=1e-4) == augment.DEFAULT_STEER_PER_PX == 0.0259


def test_steering_constant_follows_the_car_config():
    config = CarConfig()
    config.camera.fov_deg = 120.0  # the old pinhole simulator camera and a 25-degree car
    config.steering.max_wheel_angle_deg = 25.0
    assert steer_per_pixel_for(config) == pytest.approx(0.0369, abs=1e-4)


def test_preview_cli_draws_the_grid_of_what_training_sees(tmp_path, donkey_tub):
    import subprocess
    import sys

    out = tmp_path / "grid.png"
    script = Path(__file__).resolve().parents[1] / "scripts" / "augment.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "preview",
            "--tub",
            str(donkey_tub),
            "--out",
            str(out),
            "--rows",
            "3",
            "--variants",
            "4",
            "--aug-flip",
            "1.0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "3 frames x 4 augmented copies" in result.stdout
    import cv2

    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[1] > grid.shape[0] > 300  # 5 columns x 3 rows of tiles
    assert grid.std() > 20  # real pictures, not a blank canvas


def test_preview_cli_names_a_missing_tub(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "augment.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "preview",
            "--tub",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "g.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "nope" in result.stderr
    assert not (tmp_path / "g.png").exists()


def test_batch_call_with_groups_of_one_equals_per_frame_calls_and_can_prepare_first(real_frames):
    from car.frames import FrameSpec, prepare_frame

    spec = FrameSpec(crop_top=40, width=80, height=40)
    prepare = lambda frame: prepare_frame(frame, spec)  # noqa: E731
    augmenter = augment.build_augmenter(AugmentConfig(group=1), seed=12)
    images = np.stack([image for image, _, _ in real_frames[:6]])
    angles = np.array([a for _, a, _ in real_frames[:6]], np.float32)
    throttles = np.array([t for _, _, t in real_frames[:6]], np.float32)
    keys = np.arange(100, 106)
    batch, batch_angles, batch_throttles = augmenter.augment_batch(images, angles, throttles, keys, prepare)
    assert batch.shape == (6, 40, 80, 3) and batch.dtype == np.uint8 and batch_angles.dtype == np.float32
    for i in range(6):
        single = augmenter.apply(
            images[i], float(angles[i]), float(throttles[i]), key=int(keys[i]), prepare=prepare
        )
        np.testing.assert_array_equal(batch[i], single.image)
        assert batch_angles[i] == pytest.approx(single.angle) and batch_throttles[i] == pytest.approx(
            single.throttle
        )
    # Geometry runs before preparation: a flipped sample is the mirrored camera frame, prepared.
    flipper = augment.build_augmenter(only(flip=1.0), seed=0)
    np.testing.assert_array_equal(
        flipper(images[0], 0.2, 0.5, prepare=prepare)[0], prepare(images[0][:, ::-1])
    )


def test_a_group_shares_one_draw_and_groups_differ(real_frames):
    image, angle, throttle = real_frames[3]
    images = np.stack([image] * 6)  # the same frame six times: any difference comes from the draws
    angles, throttles = np.full(6, angle, np.float32), np.full(6, throttle, np.float32)
    grouped = augment.build_augmenter(AugmentConfig(group=3), seed=4)
    batch, batch_angles, _ = grouped.augment_batch(images, angles, throttles, np.arange(6))
    for first, second in ((0, 1), (0, 2), (3, 4), (3, 5)):
        np.testing.assert_array_equal(batch[first], batch[second])
        assert batch_angles[first] == batch_angles[second]
    assert not np.array_equal(batch[0], batch[3])
    alone, _, _ = augment.build_augmenter(AugmentConfig(group=1), seed=4).augment_batch(
        images, angles, throttles, np.arange(6)
    )
    assert len({frame.tobytes() for frame in alone}) > 2  # one draw per frame: more than two looks
    with pytest.raises(ValueError, match="group"):
        AugmentConfig(group=2.5)


GROUPED_CASES = {  # augment/grouped.py class -> constructor arguments that make it fire
    "RandomShadow": {"shadow_roi": (0.0, 0.3, 1.0, 1.0), "num_shadows_limit": (1, 2), "p": 1.0},
    "HueSaturationValue": {"hue_shift_limit": 10, "sat_shift_limit": 60, "val_shift_limit": 20, "p": 1.0},
    "GaussNoise": {"std_range": (0.02, 0.1), "p": 1.0},
    "PadIfNeeded": {"min_height": 126, "min_width": 176, "border_mode": 4, "p": 1.0},  # 4: BORDER_REPLICATE
}


@pytest.mark.parametrize("name", sorted(GROUPED_CASES))
def test_grouped_transforms_equal_albumentations_frame_by_frame(real_frames, name):
    """A group in one call gives exactly what albumentations' own class gives, frame by frame."""
    import albumentations as A

    from augment import grouped

    images = np.stack([image for image, _, _ in real_frames[:8]])  # eight different real frames
    for seed in range(6):  # shadows with one and two polygons, several hue and saturation shifts
        ours = A.Compose([getattr(grouped, name)(**GROUPED_CASES[name])], seed=seed)(images=images)["images"]
        stock = A.Compose([getattr(A, name)(**GROUPED_CASES[name])], seed=seed)(images=images)["images"]
        assert ours.shape == stock.shape and ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, stock)
    assert not np.array_equal(
        ours, images[:, : ours.shape[1], : ours.shape[2]]
    )  # the transform did something


def test_draw_plan_deals_every_frame_once_per_epoch_with_running_draw_numbers():
    from training.pipeline import draw_plan

    plan = list(islice(draw_plan(10, 4, seed=1), 5))  # 20 draws = two epochs of 10 frames
    draws = np.concatenate([d for d, _ in plan])
    picks = np.concatenate([p for _, p in plan])
    np.testing.assert_array_equal(draws, np.arange(20))
    assert sorted(picks[:10]) == list(range(10)) and sorted(picks[10:]) == list(range(10))
    assert not np.array_equal(picks[:10], picks[10:])  # a fresh order each epoch
    again = np.concatenate([p for _, p in islice(draw_plan(10, 4, seed=1), 5)])
    np.testing.assert_array_equal(picks, again)


def test_training_pipeline_is_reproducible_and_the_same_with_worker_processes(real_frames):
    """Batches depend on the seed only, not on how many processes augment them."""
    from car.frames import FrameSpec
    from training.augment_workers import AugmentedBatches
    from training.pipeline import augmented_dataset

    spec = FrameSpec(crop_top=40, width=80, height=40)
    images = np.stack([image for image, _, _ in real_frames])  # (20, 120, 160, 3)
    angles = np.array([a for _, a, _ in real_frames], np.float32)
    throttles = np.array([t for _, _, t in real_frames], np.float32)

    def first_batches(seed: int, workers: int) -> list:
        augmenter = augment.build_augmenter(AugmentConfig(group=4), seed=seed)
        with AugmentedBatches(images, angles, throttles, augmenter, spec, workers) as source:
            dataset = augmented_dataset(source, spec, batch_size=8, seed=3)
            return [(x.numpy(), y["angle"].numpy()) for x, y in islice(dataset, 24)]  # slots reused

    run, again, in_workers, other_seed = (
        first_batches(5, 0),
        first_batches(5, 0),
        first_batches(5, 2),
        first_batches(6, 0),
    )
    for (x, angle), (x2, angle2), (x3, angle3) in zip(run, again, in_workers):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(x, x3)
        np.testing.assert_array_equal(angle, angle2)
        np.testing.assert_array_equal(angle, angle3)
    assert any(not np.array_equal(x, x2) for (x, _), (x2, _) in zip(run, other_seed))
    assert run[0][0].shape == (8, 40, 80, 3) and run[0][1].shape == (8, 1)
    assert run[0][0].min() >= 0.0 and run[0][0].max() <= 1.0  # normalised as the car does


def test_workers_of_a_distributed_run_each_augment_only_their_share_of_the_global_batch(real_frames):
    from car.frames import FrameSpec
    from training.augment_workers import AugmentedBatches
    from training.pipeline import augmented_dataset

    spec = FrameSpec(crop_top=40, width=80, height=40)
    images = np.stack([image for image, _, _ in real_frames])
    angles = np.array([a for _, a, _ in real_frames], np.float32)
    augmenter = augment.build_augmenter(AugmentConfig(group=4), seed=1)
    source = AugmentedBatches(images, angles, angles, augmenter, spec)
    whole, first, second = (
        [
            (x.numpy(), y["angle"].numpy())
            for x, y in islice(augmented_dataset(source, spec, 16, 7, pipeline), 6)
        ]
        for pipeline in [(0, 1), (0, 2), (1, 2)]
    )
    for (x, angle), (x0, angle0), (x1, angle1) in zip(whole, first, second):
        assert x0.shape == x1.shape == (8, 40, 80, 3)
        np.testing.assert_array_equal(np.concatenate([x0, x1]), x)  # the two shares are the global batch
        np.testing.assert_array_equal(np.concatenate([angle0, angle1]), angle)
    with pytest.raises(ValueError, match="cannot be shared by 3 workers"):
        augmented_dataset(source, spec, 16, 7, (0, 3))


def test_worker_batches_come_through_a_ring_that_is_removed_when_the_consumer_stops(
    real_frames, tmp_path, monkeypatch
):
    import tempfile

    from car.frames import FrameSpec
    from training.augment_workers import AugmentedBatches
    from training.pipeline import draw_plan

    spec = FrameSpec(crop_top=40, width=80, height=40)
    images = np.stack([image for image, _, _ in real_frames])
    angles = np.array([a for _, a, _ in real_frames], np.float32)
    augmenter = augment.build_augmenter(AugmentConfig(group=2), seed=0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the frames file and rings go
    with AugmentedBatches(images, angles, angles, augmenter, spec, workers=1) as source:
        (scratch,) = tmp_path.iterdir()
        in_process = AugmentedBatches(images, angles, angles, augmenter, spec, workers=0)
        expected = list(islice(in_process.batches(draw_plan(len(images), 6, seed=2)), 5))
        consumer = source.batches(draw_plan(len(images), 6, seed=2))
        got = list(islice(consumer, 5))  # 5 batches through a ring of 2 slots
        assert [path.name for path in scratch.glob("batches-*.npy")] == ["batches-0.npy"]
        consumer.close()
        assert not list(scratch.glob("batches-*.npy"))  # the consumer stopped: its ring is gone
        for (frames, batch_angles, _), (want, want_angles, _) in zip(got, expected):
            np.testing.assert_array_equal(frames, want)
            np.testing.assert_array_equal(batch_angles, want_angles)
        uneven = source.batches([(np.arange(6), np.arange(6)), (np.arange(6, 10), np.arange(4))])
        with pytest.raises(ValueError, match="must all pick 6 frames"):
            list(uneven)
    assert not scratch.exists()
