"""Desktop training: tubs -> split -> fit -> report -> TFLite model bundle.

    data       tubs -> labelled frames in memory (filters, bad records counted)
    split      train/dev/test by contiguous blocks or sessions, never frame by frame
    pipeline   frames -> tf.data (augment the training split only, normalise as the car does)
    models     linear (Donkeycar), pilotnet (NVIDIA), fast (ours, for the latency budget)
    fit        Adam, learning-rate schedules, early stopping, checkpoints, TensorBoard
    report     errors, baselines, noise floor, bias/variance diagnosis, plots
    export     Keras -> pilot.tflite + model.json, quantisation, parity check
    latency    single-thread latency and the Raspberry Pi 4 budget (no TensorFlow)
    train      one run end to end, in named stages (load, split, fit, evaluate, report, export)
    flags      command-line flags generated from the config dataclasses;  cli: tubcar train's

TensorFlow is imported inside the functions that need it, never at import time.
"""
