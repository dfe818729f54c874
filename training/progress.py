"""A progress bar over the epochs of a training run: how many, how long left, how it goes.

Keras's own progress shows one epoch at a time; a run of up to 30 epochs needs a total and
an estimate of the time left (early stopping may end it sooner: the estimate is then an
upper bound). Each epoch's losses are written above the bar as one line.
"""

from __future__ import annotations

from typing import Any

SHOWN = ("loss", "val_loss", "angle_loss", "val_angle_loss", "throttle_loss", "val_throttle_loss")


def epoch_line(epoch: int, epochs: int, logs: dict[str, Any]) -> str:
    """`epoch 3/30: loss 0.0123, val_loss 0.0150, ...` with the losses Keras reported."""
    shown = ", ".join(f"{name} {float(logs[name]):.4g}" for name in SHOWN if name in logs)
    return f"epoch {epoch + 1}/{epochs}: {shown}"


def epoch_bar(epochs: int, desc: str = "train"):
    """A Keras callback drawing a tqdm bar over `epochs` epochs."""
    import keras
    from tqdm import tqdm

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None) -> None:
            self.bar = tqdm(total=epochs, desc=desc, unit="epoch")

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.bar.write(epoch_line(epoch, epochs, logs or {}))
            self.bar.update()

        def on_train_end(self, logs=None) -> None:
            self.bar.close()

    return EpochBar()
