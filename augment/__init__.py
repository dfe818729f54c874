"""Training-time augmentation: label-aware image transforms and neural style transfer.

Training uses these calls (scripts/train.py, training/pipeline.py and
training/augment_workers.py wire them):

    augment.add_arguments(parser)             # --augment default|none, --aug-flip P, ...
    config = augment.config_from_args(args)   # AugmentConfig, .to_dict() for model.json
    augmenter = augment.build_augmenter(config, seed)
    image, angle, throttle = augmenter(image, angle, throttle, key=index)
    images, angles, throttles = augmenter.augment_batch(images, angles, throttles, keys, prepare)

Pass a per-sample `key` (a running sample number) for results that do not depend on
thread or process scheduling; training/pipeline.py's `draw_plan` numbers the samples.
Style transfer (TensorFlow) lives in augment.style and is imported only when used.
"""

from augment.config import AugmentConfig, add_arguments, config_from_args
from augment.steering import DEFAULT_STEER_PER_PX, steer_per_pixel
from augment.transforms import Augmented, Augmenter, build_augmenter

__all__ = [
    "DEFAULT_STEER_PER_PX",
    "AugmentConfig",
    "Augmented",
    "Augmenter",
    "add_arguments",
    "build_augmenter",
    "config_from_args",
    "steer_per_pixel",
]
