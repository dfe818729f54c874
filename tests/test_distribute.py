"""Scaling out: TF_CONFIG handling, and two real workers training together on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.distribute import (
    DistributeError,
    cluster_config,
    free_ports,
    is_chief,
    output_dir,
    strategy_from_flag,
    worker_config,
)

REPO = Path(__file__).resolve().parents[1]

# One worker of a multi-worker run: the project's `fast` model built inside the strategy's
# scope, a few steps of `fit_multiworker` on real tub frames, then its weights.
WORKER = """
import json, sys
import numpy as np
import keras
import tensorflow as tf
from car.frames import to_model_input
from car.tub import Tub
from training.distribute import fit_multiworker, output_dir, strategy_from_flag
from training.fit import FitConfig
from training.models import build_model, default_frame_spec

tub, out = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
strategy = strategy_from_flag("multiworker")
spec = default_frame_spec("fast")
records = [r for _, r in zip(range(64), Tub(tub).records(load_images=True))]
images = np.stack([to_model_input(r["cam/image_array"], spec) for r in records])  # (64, 40, 80, 3)
labels = {"angle": np.array([r["user/angle"] for r in records], np.float32),
          "throttle": np.array([r["user/throttle"] for r in records], np.float32)}
config = FitConfig(epochs=2, batch_size=16, lr=1e-2, lr_schedule="constant", verbose=1)
data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(config.batch_size).repeat()
with strategy.scope():
    model = build_model("fast", spec.input_shape)
before = [w.numpy().copy() for w in model.trainable_weights]
dev = tf.data.Dataset.from_tensor_slices((images[:20], {k: v[:20] for k, v in labels.items()})).batch(8)
history = fit_multiworker(model, data, steps_per_epoch=2, config=config, strategy=strategy, dev_data=dev)
after = [w.numpy() for w in model.trainable_weights]
folder = output_dir(out)
folder.mkdir(parents=True, exist_ok=True)
(folder / "weights.json").write_text(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "loss": history["loss"],
    "val_loss": history["val_loss"],
    "changed": float(sum(np.abs(a - b).sum() for a, b in zip(after, before))),
    "weights": [float(v) for w in after for v in w.reshape(-1)[:10]],
}))
"""


def test_tf_config_is_checked_with_messages_that_say_what_to_fix() -> None:
    assert cluster_config({}) is None
    good = {"TF_CONFIG": json.dumps(worker_config(["a:1", "b:2"], 1))}
    assert cluster_config(good)["task"]["index"] == 1
    assert not is_chief(good) and is_chief({})
    assert output_dir("runs/x", good) == Path("runs/x/workers/worker_1")
    assert output_dir("runs/x", {}) == Path("runs/x")
    with pytest.raises(DistributeError, match="not valid JSON"):
        cluster_config({"TF_CONFIG": "{cluster"})
    with pytest.raises(DistributeError, match="index"):
        cluster_config({"TF_CONFIG": json.dumps(worker_config(["a:1"], 3))})
    with pytest.raises(DistributeError, match="worker"):
        cluster_config({"TF_CONFIG": json.dumps({"task": {"type": "worker", "index": 0}})})


def test_strategy_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy_from_flag("none").num_replicas_in_sync == 1
    assert strategy_from_flag("mirrored").num_replicas_in_sync >= 1  # every local GPU, else the CPU
    with pytest.raises(DistributeError, match="TF_CONFIG"):
        strategy_from_flag("multiworker")
    with pytest.raises(DistributeError, match="must be one of"):
        strategy_from_flag("parameter-server")


@pytest.mark.slow
def test_two_workers_on_loopback_train_in_lockstep(donkey_tub: Path, tmp_path: Path) -> None:
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(worker_config(workers, index)),
            "CUDA_VISIBLE_DEVICES": "-1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(REPO),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, str(script), str(donkey_tub), str(tmp_path / "out")],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outputs = [process.communicate(timeout=240)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]

    chief = json.loads((tmp_path / "out" / "weights.json").read_text())
    other = json.loads((tmp_path / "out" / "workers" / "worker_1" / "weights.json").read_text())
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["changed"] > 0 and len(chief["loss"]) == 2  # it trained, two epochs
    assert chief["loss"] == pytest.approx(other["loss"])  # the loss of the global batch
    # Dev loss per epoch on each worker: equal, as batch norm is synchronised (its batch
    # statistics, and so its moving statistics, are those of the global batch).
    assert len(chief["val_loss"]) == 2 and chief["val_loss"] == pytest.approx(other["val_loss"], rel=1e-4)
    assert chief["weights"] == pytest.approx(other["weights"], abs=1e-6)  # all-reduced: same weights


@pytest.mark.slow
def test_train_script_on_two_loopback_workers(donkey_tub: Path, tmp_path: Path) -> None:
    """`scripts/train.py --distribute multiworker` as two local workers: the chief exports and registers."""
    import keras

    from car.pilot import Pilot
    from training.registry import read_registry

    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    out, index = tmp_path / "run", tmp_path / "index.jsonl"
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "--tub",
        str(donkey_tub),
        "--records",
        "0:160",
        "--block-frames",
        "20",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--verbose",
        "0",
        "--augment-workers",
        "0",  # each worker augments its share of the global batch in-process
        "--quantize",
        "float32",
        "--distribute",
        "multiworker",
        "--registry",
        str(index),
    ]
    processes = []
    for worker in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(worker_config(workers, worker)),
            "CUDA_VISIBLE_DEVICES": "-1",
        }
        processes.append(
            subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        outputs = [process.communicate(timeout=240)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "2 replica(s)" in outputs[0] and "worker done" in outputs[1] and "registry:" not in outputs[1]
    scratch = out / "workers" / "worker_1"
    assert (scratch / "model.keras").exists() and not (scratch / "pilot.tflite").exists()
    chief, other = (keras.models.load_model(folder / "model.keras") for folder in (out, scratch))
    for mine, theirs in zip(chief.trainable_weights, other.trainable_weights):  # all-reduced every step
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), atol=1e-6)
    pilot = Pilot.load(out)
    assert pilot.card.training["distribute"] == "multiworker" and pilot.card.training["epochs_run"] == 1
    assert np.isfinite(pilot.run(np.zeros((120, 160, 3), np.uint8))).all()
    # The custom loop's dev loss is the exported model's: angle MSE + throttle_weight * throttle MSE.
    dev = pilot.card.metrics["errors"]["dev"]
    expected = dev["angle"]["mse"] + pilot.card.training["fit"]["throttle_weight"] * dev["throttle"]["mse"]
    assert pilot.card.training["best_dev_loss"] == pytest.approx(expected, rel=1e-3)
    runs = read_registry(index).runs
    assert len(runs) == 1 and runs[0]["bundle"] == str(out.resolve())  # the chief's run only


def test_mirrored_strategy_runs_the_training_fit(donkey_tub: Path, tmp_path: Path) -> None:
    """`--distribute mirrored`: the model built in the scope trains with training.fit as is."""
    import tensorflow as tf

    from car.frames import to_model_input
    from car.tub import Tub
    from training.fit import FitConfig, fit
    from training.models import build_model, default_frame_spec

    spec = default_frame_spec("fast")
    records = [r for _, r in zip(range(48), Tub(donkey_tub).records(load_images=True))]
    images = np.stack([to_model_input(r["cam/image_array"], spec) for r in records])
    labels = {
        "angle": np.array([r["user/angle"] for r in records], np.float32),
        "throttle": np.array([r["user/throttle"] for r in records], np.float32),
    }
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    strategy = strategy_from_flag("mirrored")
    with strategy.scope():
        model = build_model("fast", spec.input_shape)
        history = fit(model, data.repeat(), data, 3, FitConfig(epochs=2, verbose=0), tmp_path)
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
    assert model.distribute_strategy is strategy
