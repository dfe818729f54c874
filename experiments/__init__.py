"""The measurements behind the README's results: acceptance, augmentation evidence, replay
validation. Each calls the library (training, evaluation, sim), never a script."""
