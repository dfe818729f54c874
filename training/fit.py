"""Optimisation: Adam with a learning-rate schedule, early stopping on dev loss, checkpoints.

Without early stopping (`--no-early-stopping`) every epoch runs and the last epoch's
weights are kept: a fixed schedule needs no dev frames to pick an epoch, so a small tub
can train on all its frames (the dev set, if any, is only watched).

Every knob is a field of `FitConfig` and a flag of `tubcar train` (training/flags.py
generates them); the tests check that each one changes what training does.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.flags import flag

LR_SCHEDULES = ("constant", "cosine", "exponential")


class NonFiniteLoss(ValueError):
    """Training stopped at the first NaN or inf loss: nothing after it can be trusted."""


def check_loss(loss: float, epoch: int, batch: int) -> None:
    """Raise NonFiniteLoss, saying where and what to look at, when `loss` is NaN or inf."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(
            f"training stopped: the loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; nothing "
            "was exported. Non-finite or huge labels, or too high a learning rate: check the tubs with "
            "`tubcar tub check`, or lower --lr"
        )


@dataclass(frozen=True)
class FitConfig:
    epochs: int = flag(30, "most epochs (early stopping may end sooner)")
    batch_size: int = flag(64, "frames per optimiser step")
    lr: float = flag(1e-3, "initial learning rate")
    lr_schedule: str = flag(
        "cosine", "cosine decays to lr * lr_final_fraction over all epochs", choices=LR_SCHEDULES
    )
    lr_decay: float = flag(0.9, "exponential: lr multiplied by this once per epoch")
    lr_final_fraction: float = flag(0.05, "cosine: the final lr as a fraction of --lr")
    early_stopping: bool = flag(
        True,
        "stop when the dev loss stops improving and keep the best dev epoch; with --no-early-stopping "
        "every epoch runs and the last one's weights are kept (no dev set needed)",
        action=argparse.BooleanOptionalAction,
    )
    patience: int = flag(6, "early stopping: epochs without dev-loss improvement before stopping")
    min_delta: float = flag(0.0, "smallest dev-loss decrease that counts as an improvement")
    throttle_weight: float = flag(0.5, "loss = angle MSE + throttle_weight * throttle MSE")
    steps_per_execution: int = flag(
        8,
        "most optimiser steps per call into TensorFlow (a divisor of an epoch's steps, the epoch rounded "
        "to whole calls of at least half as many); the progress "
        "bar and batch callbacks see every Nth step. Per-call overhead slows the small `fast` model",
    )
    seed: int = 0  # weights, shuffling, augmentation; tubcar train's --seed (SplitConfig) sets both
    verbose: int = flag(
        2,
        "progress: 0 silent, 1 Keras's bar per epoch, 2 a bar over all epochs (total, time left) with "
        "one line per epoch",
        choices=(0, 1, 2),
    )

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if (
            min(self.epochs, self.batch_size, self.steps_per_execution) < 1
            or self.lr <= 0
            or self.patience < 0
        ):
            raise ValueError("epochs, batch size and steps per execution must be >= 1, lr > 0, patience >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(config: FitConfig, steps_per_epoch: int):
    """The learning rate, or a Keras schedule over optimizer steps."""
    import keras

    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.lr, decay_steps=config.epochs * steps_per_epoch, alpha=config.lr_final_fraction
        )
    return keras.optimizers.schedules.ExponentialDecay(
        config.lr, decay_steps=steps_per_epoch, decay_rate=config.lr_decay, staircase=True
    )


def compile_model(model, config: FitConfig, steps_per_epoch: int) -> None:
    """Adam on MSE of both outputs (throttle weighted), `steps_per_execution` steps a call.

    No Keras metrics: the report computes its errors (MSE, MAE) from predictions on
    un-augmented frames, and every metric is one more thing to trace and update per step.
    """
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch)),
        loss={"angle": "mse", "throttle": "mse"},
        loss_weights={"angle": 1.0, "throttle": config.throttle_weight},
        steps_per_execution=steps_per_call(config.steps_per_execution, steps_per_epoch),
    )


def steps_per_call(most: int, steps_per_epoch: int) -> int:
    """The largest divisor of `steps_per_epoch` not above `most`.

    Keras runs whole calls of `steps_per_execution` steps on an endless dataset, so a call
    that straddled an epoch's end would train steps the epoch does not have.
    """
    return max(d for d in range(1, max(1, min(most, steps_per_epoch)) + 1) if steps_per_epoch % d == 0)


def callbacks(config: FitConfig, out: Path, watch_dev: bool = True) -> list:
    """Early stopping (restoring the best weights), best checkpoint, TensorBoard logs, and
    with `verbose` 2 a progress bar over the epochs.

    Without early stopping, or without a dev set to watch (`watch_dev`), no early stopping
    and the checkpoint keeps the epoch of the lowest dev loss, or training loss.
    """
    import keras

    from training.progress import epoch_bar

    progress = [epoch_bar(config.epochs)] if config.verbose == 2 else []
    monitor = "val_loss" if watch_dev else "loss"
    stopping = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.patience,
            min_delta=config.min_delta,
            restore_best_weights=True,
            verbose=1 if config.verbose else 0,
        )
    ]
    return [
        *progress,
        *(stopping if config.early_stopping and watch_dev else []),
        keras.callbacks.ModelCheckpoint(
            out / "checkpoints" / "best.keras", monitor=monitor, save_best_only=True
        ),
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), histogram_freq=0),
    ]


def fit(model, train_data, dev_data, steps: int, config: FitConfig, out: Path) -> dict[str, list[float]]:
    """Train until early stopping or `epochs`; the model ends with its best dev-loss weights,
    or with its last epoch's without early stopping (`dev_data` may then be None).

    NonFiniteLoss at the first batch whose loss is NaN or inf.
    """
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    compile_model(model, config, steps)
    guard = _loss_guard()
    history = model.fit(
        train_data,
        validation_data=dev_data,
        epochs=config.epochs,
        steps_per_epoch=steps,
        shuffle=False,  # the tf.data pipeline shuffles (seeded); Keras cannot shuffle a dataset
        callbacks=[guard, *callbacks(config, out, watch_dev=dev_data is not None)],
        verbose=1 if config.verbose == 1 else 0,  # verbose 2: our bar over the epochs instead
    )
    if guard.error is not None:
        raise guard.error
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def _loss_guard():
    """A Keras callback that stops training at the first non-finite loss and keeps why."""
    import keras

    class LossGuard(keras.callbacks.Callback):
        error: NonFiniteLoss | None = None
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            try:
                check_loss(float((logs or {}).get("loss", 0.0)), self.epoch, batch)
            except NonFiniteLoss as err:
                self.error = err
                self.model.stop_training = True

    return LossGuard()
