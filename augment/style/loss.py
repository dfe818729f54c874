"""Perceptual loss (Johnson et al. 2016): compare images by VGG16 features, not pixels.

Content: the stylised frame must keep the frame's `block2_conv2` features (the layout:
lane lines, edges). Style: its Gram matrices (which features co-occur, regardless of
where) at four depths must match the style image's. A small total-variation term
keeps the output smooth. Each term is normalised by the size of its target, so the
weights mean the same at any image size and with any VGG weights.

VGG weights: the ImageNet weights Keras keeps in `~/.keras/models/` (downloaded once by
the user; nothing is ever downloaded here), a weights file given by path, or `random`
(random features still capture texture statistics, Ustyuzhaninov et al. 2016; weaker).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_NOTOP_FILE
CONTENT_LAYER = "block2_conv2"
STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


class VggWeightsMissing(FileNotFoundError):
    """The perceptual loss needs VGG16 weights that are not on this machine."""


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def resolve_vgg_weights(weights: str | os.PathLike | None) -> str | None:
    """'imagenet' -> the cached Keras file, a path -> itself, 'random'/None -> None; checks existence."""
    if weights is None or str(weights) == "random":
        return None
    path = keras_models_dir() / VGG16_NOTOP_FILE if str(weights) == "imagenet" else Path(weights)
    if not path.is_file():
        raise VggWeightsMissing(
            f"VGG16 weights not found at {path}. This tool never downloads them itself. "
            f"On a machine with internet access, fetch {VGG16_URL} (58 MB; or run once: "
            f'python -c "import keras; keras.applications.VGG16(include_top=False)"), '
            f"copy the file to {keras_models_dir() / VGG16_NOTOP_FILE} or pass --vgg-weights PATH; "
            f"--vgg-weights random trains with untrained VGG features (weaker styles)."
        )
    return str(path)


def feature_extractor(weights: str | os.PathLike | None, seed: int = 0) -> Any:
    """VGG16 up to block4 returning {layer name: features} for RGB 0..255 input."""
    import keras

    resolved = resolve_vgg_weights(weights)
    keras.utils.set_random_seed(seed)  # reproducible random features when no file is given
    vgg = keras.applications.VGG16(include_top=False, weights=resolved, input_shape=(None, None, 3))
    vgg.trainable = False
    names = sorted({CONTENT_LAYER, *STYLE_LAYERS})
    return keras.Model(vgg.input, {name: vgg.get_layer(name).output for name in names}, name="vgg_features")


@dataclass(frozen=True)
class LossWeights:
    content: float = 1.0
    style: float = 1.0
    total_variation: float = 1e-4

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def gram(features: Any) -> Any:
    """(B, H, W, C) features -> (B, C, C) channel co-occurrences averaged over positions."""
    import tensorflow as tf

    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))  # (B, HW, C)
    return tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], features.dtype)


class PerceptualLoss:
    """loss(frames, styled) -> dict of total, content, style, tv for a fixed style image."""

    def __init__(self, extractor: Any, style_image: Any, weights: LossWeights = LossWeights()) -> None:
        import tensorflow as tf

        self.extractor = extractor
        self.weights = weights
        style = tf.convert_to_tensor(style_image, tf.float32)[None]  # (1, h, w, 3)
        features = extractor(self._vgg_input(style))
        self.style_grams = {name: gram(features[name]) for name in STYLE_LAYERS}  # (1, C, C) each

    @staticmethod
    def _vgg_input(rgb: Any) -> Any:
        """RGB 0..255 -> VGG's caffe input (BGR, ImageNet mean removed)."""
        return rgb[..., ::-1] - CAFFE_BGR_MEAN

    def __call__(self, frames: Any, styled: Any) -> dict[str, Any]:
        import tensorflow as tf

        frame_features = self.extractor(self._vgg_input(frames))
        styled_features = self.extractor(self._vgg_input(styled))
        target = frame_features[CONTENT_LAYER]
        content = tf.reduce_mean(tf.square(styled_features[CONTENT_LAYER] - target)) / (
            tf.reduce_mean(tf.square(target)) + 1e-6
        )
        style = tf.add_n(
            [
                tf.reduce_mean(tf.square(gram(styled_features[name]) - self.style_grams[name]))
                / (tf.reduce_mean(tf.square(self.style_grams[name])) + 1e-6)
                for name in STYLE_LAYERS
            ]
        ) / len(STYLE_LAYERS)
        tv = tf.reduce_mean(tf.image.total_variation(styled)) / tf.cast(tf.size(styled[0]), tf.float32)
        total = (
            self.weights.content * content + self.weights.style * style + self.weights.total_variation * tv
        )
        return {"total": total, "content": content, "style": style, "tv": tv}
