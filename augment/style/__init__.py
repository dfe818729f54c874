"""Neural style transfer for training data (TensorFlow; import only where needed).

train: `train_style_network(style_image, frames, settings, vgg_weights)` -> Keras model,
       `save_style(folder, ...)` (Keras weights + TFLite file); apply: `read_card(folder)`,
       `Stylizer(folder)` (LiteRT), `stylize_tub`.
"""

from augment.style.apply import ORIGIN_KEY, Stylizer, StylizeReport, stylize_tub
from augment.style.loss import LossWeights, PerceptualLoss, VggWeightsMissing, feature_extractor
from augment.style.network import NetworkSpec, build_transform_net, to_tflite
from augment.style.store import StyleError, load_style, read_card, read_image, save_style, tflite_file
from augment.style.train import StyleTraining, train_style_network

__all__ = [
    "ORIGIN_KEY",
    "LossWeights",
    "NetworkSpec",
    "PerceptualLoss",
    "StyleError",
    "StyleTraining",
    "StylizeReport",
    "Stylizer",
    "VggWeightsMissing",
    "build_transform_net",
    "feature_extractor",
    "load_style",
    "read_card",
    "read_image",
    "save_style",
    "stylize_tub",
    "tflite_file",
    "to_tflite",
    "train_style_network",
]
