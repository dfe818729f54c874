"""Training on several GPUs or machines: the tf.distribute strategy behind `--distribute`.

- `mirrored`: one machine, every local GPU (MirroredStrategy). Each batch is split over
  the GPUs and the gradients are summed, so the batch size given is the *global* one.
- `multiworker`: several machines (MultiWorkerMirroredStrategy). Every machine runs the
  same command with its own TF_CONFIG, e.g. on the first of two:
      TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                  "task": {"type": "worker", "index": 0}}'
  Worker 0 is the chief: it writes the bundle and reports; the others write theirs into
  scratch folders (they hold the same weights, gradients being all-reduced every step).

Use with `mirrored`: build and compile the model inside `strategy.scope()`; `fit` and
datasets need no change (tf.data batches are split across the replicas automatically).
With `multiworker`, train with `fit_multiworker`: Keras 3's `Model.fit` fails under
MultiWorkerMirroredStrategy (keras-team/keras#20585: its symbolic build all-reduces the
nested (image, labels) batch, which the collective strategy cannot), so the same
optimisation runs as a custom loop here.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

CHOICES = ("none", "mirrored", "multiworker")


class DistributeError(ValueError):
    """A distribution setting that cannot work; the message says what to fix."""


def cluster_config(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """TF_CONFIG parsed and checked, or None when it is not set."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise DistributeError(f"TF_CONFIG is not valid JSON ({err.msg}): {text[:80]!r}") from err
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task", {}) if isinstance(config, dict) else {}
    if not isinstance(workers, list) or not workers:
        raise DistributeError('TF_CONFIG needs {"cluster": {"worker": ["host:port", ...]}}')
    if (
        task.get("type") != "worker"
        or not isinstance(task.get("index"), int)
        or not 0 <= task["index"] < len(workers)
    ):
        raise DistributeError(
            f'TF_CONFIG needs "task": {{"type": "worker", "index": 0..{len(workers) - 1}}}, got {task!r}'
        )
    return config


def worker_config(workers: list[str], index: int) -> dict[str, Any]:
    """The TF_CONFIG of worker `index` of a cluster of `workers` ("host:port" each)."""
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def is_chief(environ: dict[str, str] | None = None) -> bool:
    """Whether this process writes the results: worker 0, or any process outside a cluster."""
    config = cluster_config(environ)
    return config is None or config["task"]["index"] == 0


def output_dir(out: str | os.PathLike, environ: dict[str, str] | None = None) -> Path:
    """Where this process writes: `out` for the chief, a scratch folder inside it for others.

    Every worker must save (saving is collective), but only the chief's files are kept.
    """
    config = cluster_config(environ)
    if config is None or config["task"]["index"] == 0:
        return Path(out)
    return Path(out) / "workers" / f"worker_{config['task']['index']}"


def strategy_from_flag(name: str | None):
    """The tf.distribute strategy for `--distribute` (none, mirrored, multiworker)."""
    import tensorflow as tf

    if name in (None, "", "none"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if cluster_config() is None:
            raise DistributeError(
                "--distribute multiworker needs TF_CONFIG naming the workers and this one's index, e.g. "
                + json.dumps(worker_config(["host1:12345", "host2:12345"], 0))
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DistributeError(f"--distribute must be one of {CHOICES}, got {name!r}")


def fit_multiworker(
    model, dataset, steps_per_epoch: int, config, strategy, dev_data=None, log=print
) -> dict[str, list[float]]:
    """Train `model` (built inside `strategy.scope()`) as `training.fit.fit` would, on all workers.

    Same optimiser (Adam with `config`'s learning-rate schedule) and loss (angle MSE +
    config.throttle_weight * throttle MSE); `dataset` yields (image batch, {"angle",
    "throttle"}) with the *global* batch size, repeated, and tf.data shards it across the
    workers; or it is a function (tf.distribute.InputContext) -> this worker's per-replica
    batches, for input that each worker makes only its share of (training.pipeline's
    `worker_augmented_dataset`). `dev_data` (finite, same
    structure) is evaluated by every worker in full after each epoch. No early stopping:
    the epochs are `config.epochs`. Returns {"loss": [...], "val_loss": [...]} per epoch.
    """
    import keras
    import tensorflow as tf

    from training.fit import check_loss, learning_rate

    with strategy.scope():
        optimizer = keras.optimizers.Adam(learning_rate(config, steps_per_epoch))
        optimizer.build(model.trainable_variables)

    def per_example_loss(images, labels, training: bool):
        angle, throttle = model(images, training=training)  # each (B, 1)
        # Labels may be (B,) or (B, 1) (training.pipeline's); (B, 1) - (B,) would broadcast to (B, B).
        return tf.square(
            angle[:, 0] - tf.reshape(labels["angle"], [-1])
        ) + config.throttle_weight * tf.square(throttle[:, 0] - tf.reshape(labels["throttle"], [-1]))

    def replica_step(batch):
        images, labels = batch  # images (B/R, H, W, C) on each of the R replicas
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(
                per_example_loss(images, labels, True), global_batch_size=config.batch_size
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))  # all-reduced
        return loss

    @tf.function
    def train_step(iterator):
        return strategy.reduce("SUM", strategy.run(replica_step, args=(next(iterator),)), axis=None)

    @tf.function
    def dev_sums(images, labels):  # (sum of losses, examples) of one batch, this worker alone
        losses = per_example_loss(images, labels, False)
        return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)

    if callable(dataset):
        batches = iter(strategy.distribute_datasets_from_function(dataset))
    else:
        batches = iter(strategy.experimental_distribute_dataset(dataset))
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    for epoch in range(config.epochs):
        losses = []
        for batch in range(steps_per_epoch):
            losses.append(float(train_step(batches)))
            check_loss(losses[-1], epoch, batch)
        history["loss"].append(sum(losses) / len(losses))
        if dev_data is not None:
            sums = [tuple(float(v) for v in dev_sums(images, labels)) for images, labels in dev_data]
            history["val_loss"].append(sum(s for s, _ in sums) / max(1.0, sum(n for _, n in sums)))
        if config.verbose:
            dev = f", dev loss {history['val_loss'][-1]:.4f}" if history["val_loss"] else ""
            log(
                f"epoch {epoch + 1}/{config.epochs}: loss {history['loss'][-1]:.4f}{dev} "
                f"({strategy.num_replicas_in_sync} replicas)"
            )
    return history


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` TCP ports free right now on `host` (for a local cluster of workers)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
