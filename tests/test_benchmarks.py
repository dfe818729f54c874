"""`tubcar bench infer` and `tubcar bench train`: the README's latency and throughput figures."""

from __future__ import annotations

import json

import pytest

from tubcar.commands import bench

pytestmark = pytest.mark.slow  # real int8 exports and real training steps


def test_infer_times_frame_to_command_beside_a_donkeycar_style_reference():
    from benchmarks.infer import ARCHITECTURES, measure

    result = measure(dict.fromkeys(ARCHITECTURES), runs=40, rounds=1)
    for name in ARCHITECTURES:
        timing = result[name]
        assert timing["quantization"] == "int8" and timing["input"][-1] == "uint8"  # the prepared frame
        assert (
            0 < timing["median_ms"] <= timing["p99_ms"]
            and 0 < timing["run_median_ms"] <= timing["run_p99_ms"]
        )
    donkey = result["donkey"]
    assert donkey["quantization"] == "float32" and donkey["input"] == [120, 160, 3, "float32"]
    assert result["ratio_run_fast_donkey"] == pytest.approx(
        result["fast"]["run_median_ms"] / donkey["run_median_ms"], abs=1e-4
    )
    # a quarter of the pixels, int8 and no float copy against the whole frame in float32
    assert result["fast"]["run_median_ms"] < donkey["run_median_ms"] / 2


def test_train_reports_images_per_second_of_training_with_augmentation(capsys):
    bench.main(["train", "--json", "--model", "fast", "--batches", "4", "--augment-workers", "1"])
    result = json.loads(capsys.readouterr().out)
    assert result["fast_images_per_s"] > 0
    assert result["augment"] == "default" and result["batch_size"] == 64 and result["frames"] == 1000
