"""Train one transform network for one style image on frames from the user's own tubs.

Content frames come from the tubs the model will be trained on, so the network learns
to restyle exactly that kind of view. Training is plain Adam on the perceptual loss;
the loss history is kept in the style folder so a user can see it converged, and a
preview picture (content frames, the style, the frames as the network renders them now)
can be made every few steps so they can see what it learnt while it learns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augment.style.loss import LossWeights, PerceptualLoss, feature_extractor
from augment.style.network import NetworkSpec, build_transform_net


@dataclass(frozen=True)
class StyleTraining:
    """Settings of one style-network training run (stored in style.json)."""

    steps: int = 2000
    batch_size: int = 4
    learning_rate: float = 1e-3
    style_size: int = 256  # the style image's longer side, pixels, as VGG sees it
    seed: int = 0
    network: NetworkSpec = field(default_factory=NetworkSpec)
    loss: LossWeights = field(default_factory=LossWeights)


def fit_style_size(style_image: np.ndarray, longer_side: int) -> np.ndarray:
    """Resize so the longer side is `longer_side` pixels: the scale of the brush strokes."""
    import cv2

    height, width = style_image.shape[:2]
    scale = longer_side / max(height, width)
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    return cv2.resize(style_image, size, interpolation=cv2.INTER_AREA)


def preview_image(style_image: np.ndarray, frames: np.ndarray, network: Any, count: int = 3) -> np.ndarray:
    """One RGB picture: the style image on the left; `count` content frames above the
    network's rendering of them."""
    import cv2

    picks = frames[np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int)]
    styled = np.clip(np.asarray(network(picks.astype(np.float32), training=False)), 0, 255).astype(np.uint8)
    height, width = picks.shape[1:3]
    scale = min(width / style_image.shape[1], 2 * height / style_image.shape[0])
    fitted = cv2.resize(
        style_image,
        (max(1, round(style_image.shape[1] * scale)), max(1, round(style_image.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )
    column = np.zeros((2 * height, width, 3), np.uint8)
    top, left = (2 * height - fitted.shape[0]) // 2, (width - fitted.shape[1]) // 2
    column[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted[..., :3]
    return np.hstack([column, np.vstack([np.hstack(list(picks)), np.hstack(list(styled))])])


def train_style_network(
    style_image: np.ndarray,
    frames: np.ndarray,
    settings: StyleTraining = StyleTraining(),
    vgg_weights: str | None = "imagenet",
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_preview: Callable[[np.ndarray, int], None] | None = None,
    preview_every: int = 0,
) -> tuple[Any, list[dict[str, float]]]:
    """Train a transform net; frames: uint8 (N, H, W, 3), H and W divisible by 4.

    `on_preview(picture, steps_done)` gets `preview_image` every `preview_every` steps
    and after the last one. Returns the Keras model and the per-step losses.
    """
    import keras
    import tensorflow as tf

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] % 4 or frames.shape[2] % 4:
        raise ValueError(f"content frames must be (N, H, W, 3) with H, W divisible by 4, got {frames.shape}")
    extractor = feature_extractor(vgg_weights, seed=settings.seed)
    keras.utils.set_random_seed(settings.seed)
    network = build_transform_net(settings.network)
    loss_fn = PerceptualLoss(
        extractor, fit_style_size(style_image, settings.style_size).astype(np.float32), settings.loss
    )
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    rng = np.random.default_rng(settings.seed)

    @tf.function
    def step(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            styled = network(batch, training=True)  # (B, H, W, 3) 0..255
            losses = loss_fn(batch, styled)
        grads = tape.gradient(losses["total"], network.trainable_variables)
        optimizer.apply_gradients(zip(grads, network.trainable_variables))
        return losses

    history = []
    for number in range(settings.steps):
        picks = rng.integers(0, len(frames), settings.batch_size)
        batch = frames[picks].astype(np.float32)
        flips = rng.random(settings.batch_size) < 0.5
        batch[flips] = batch[flips, :, ::-1]
        losses = {name: float(value) for name, value in step(tf.constant(batch)).items()}
        history.append(losses)
        if on_step is not None:
            on_step(number, losses)
        done = number + 1
        due = done == settings.steps or (preview_every > 0 and done % preview_every == 0)
        if on_preview is not None and due:
            on_preview(preview_image(style_image, frames, network), done)
    return network, history
