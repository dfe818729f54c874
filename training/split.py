"""Train/dev/test split by contiguous blocks of frames (or whole sessions), never frame by frame.

At 20 Hz neighbouring frames are near-identical. A per-frame random split puts the twin
of almost every dev frame into the training set, so the dev error measures memory, not
driving. Here each recording session is cut into blocks of consecutive frames and whole
blocks go to one set; `gap` frames at both ends of every held-out block are dropped so
that no held-out frame sits next to a training frame.

Sizes follow the usual recipe: 80/10/10 for small data; once the data is large, dev and
test only need enough frames to measure an error precisely, so each is capped
(`max_eval_frames`, 10,000 by default, i.e. 98/1/1 at a million frames) and the rest trains.
The three sets come from the same distribution (blocks are drawn at random from all tubs).

Training-dev (the recipe's fourth set): `train_dev` of the training share is held out in
whole blocks too. It comes from the training distribution, so train-dev minus train
error is variance, and dev minus train-dev is data mismatch: zero in expectation when
dev/test are blocks of the same tubs (`split_frames`), the gap that matters when they are
other tubs, e.g. real tubs beside simulator training tubs (`split_mismatched`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.flags import flag

SPLIT_UNITS = ("block", "session")
MAX_EVAL_FRAMES = 10_000


@dataclass(frozen=True)
class SplitConfig:
    fractions: tuple[float, float, float] = flag(
        (0.8, 0.1, 0.1), "train/dev/test fractions", name="--split", nargs=3, metavar=("TRAIN", "DEV", "TEST")
    )
    unit: str = flag(
        "block",
        "unit assigned to one set: a block of consecutive frames, or a whole session",
        name="--split-by",
        choices=SPLIT_UNITS,
    )
    block_frames: int = flag(100, "frames per block (100 = 5 s at 20 Hz)")
    gap: int = flag(5, "frames dropped at both ends of each dev/test block", name="--split-gap")
    max_eval_frames: int = flag(MAX_EVAL_FRAMES, "cap on dev and on test size")
    train_dev: float = flag(
        0.1, "share of the training frames held out as training-dev, in whole blocks (0: none)"
    )
    seed: int = flag(0, "seeds the split, weights, shuffling, augmentation")

    def __post_init__(self) -> None:
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValueError(
                f"split fractions must be three non-negative numbers summing to 1, got {self.fractions}"
            )
        if self.fractions[0] == 0:
            raise ValueError("the training fraction must be > 0")
        if self.unit not in SPLIT_UNITS:
            raise ValueError(f"split unit must be one of {SPLIT_UNITS}, got {self.unit!r}")
        if self.block_frames < 1 or self.gap < 0:
            raise ValueError("block_frames must be >= 1 and gap >= 0")
        if not 0.0 <= self.train_dev < 1.0:
            raise ValueError(f"the training-dev share must be in [0, 1), got {self.train_dev}")


@dataclass
class Split:
    """Positions (into the frames array) of each set, each in recording order."""

    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    train_dev: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "train_dev": len(self.train_dev),
            "dev": len(self.dev),
            "test": len(self.test),
        }


def split_units(sessions: np.ndarray, config: SplitConfig) -> list[np.ndarray]:
    """Cut the recording order into units: runs of one session, chopped into blocks."""
    boundaries = np.flatnonzero(sessions[1:] != sessions[:-1]) + 1
    runs = np.split(np.arange(len(sessions)), boundaries)
    if config.unit == "session":
        return runs
    return [
        run[start : start + config.block_frames]
        for run in runs
        for start in range(0, len(run), config.block_frames)
    ]


def split_frames(sessions: np.ndarray, config: SplitConfig = SplitConfig()) -> Split:
    """Assign whole units at random (seeded) to dev and test until each has its share."""
    units = split_units(np.asarray(sessions), config)
    total = len(sessions)
    wanted_sets = sum(1 for f in config.fractions if f > 0)
    if len(units) < wanted_sets:
        raise ValueError(
            f"only {len(units)} {config.unit}(s) of frames for {wanted_sets} sets: record more, "
            f"or use a smaller --block-frames (now {config.block_frames})"
        )
    targets = [min(round(f * total), config.max_eval_frames) if f > 0 else 0 for f in config.fractions[1:]]
    order = np.random.default_rng(config.seed).permutation(len(units))
    assigned: list[list[np.ndarray]] = [[], [], []]
    filled = [0, 0, 0]
    for position, unit_number in enumerate(order):
        unit = units[unit_number]
        # dev (1) and test (2) take turns, the one furthest from its target first, until
        # both have their share; the last unit always trains.
        hungry = [s for s in (1, 2) if filled[s] < targets[s - 1]] if position < len(order) - 1 else []
        which = min(hungry, key=lambda s: filled[s] / targets[s - 1]) if hungry else 0
        assigned[which].append(unit)
        filled[which] += len(unit)
    train, train_dev = _hold_out(assigned[0], config)
    dev, test = (_trim(assigned[which], config.gap) for which in (1, 2))
    return Split(train=train, dev=dev, test=test, train_dev=train_dev)


def split_mismatched(
    train_sessions: np.ndarray, target_sessions: np.ndarray, config: SplitConfig, dev_count: int | None = None
) -> Split:
    """The recipe's mismatched data: the training tubs give train and training-dev, the
    target tubs (`--dev-tub`/`--test-tub`) give dev and test.

    The target frames are the dev tubs' (the first `dev_count`) then the test tubs'; with
    only one kind given (`dev_count` None) they are cut into blocks and dealt half to dev,
    half to test, so that dev and test come from one distribution. Positions count the
    training frames first, then the target frames (the order `Frames.concatenate` joins them).
    """
    train, train_dev = _hold_out(split_units(np.asarray(train_sessions), config), config)
    offset = len(train_sessions)
    if dev_count is not None:
        positions = np.arange(len(target_sessions)) + offset
        return Split(train=train, dev=positions[:dev_count], test=positions[dev_count:], train_dev=train_dev)
    target_units = split_units(np.asarray(target_sessions), config)
    if len(target_units) < 2:
        raise ValueError(
            f"the dev/test tubs hold one {config.unit} of frames: dev and test need one each "
            f"(use a smaller --block-frames, now {config.block_frames})"
        )
    halves: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    filled = [0, 0]
    for unit_number in np.random.default_rng([config.seed, 2]).permutation(len(target_units)):
        which = int(filled[1] < filled[0])  # the emptier half takes the next unit
        halves[which].append(target_units[unit_number] + offset)
        filled[which] += len(target_units[unit_number])
    dev, test = (_trim(half, config.gap) for half in halves)
    return Split(train=train, dev=dev, test=test, train_dev=train_dev)


def _hold_out(units: list[np.ndarray], config: SplitConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training units -> (train, training-dev): whole units at random (seeded) until the
    training-dev share is reached, always leaving one unit to train; training-dev blocks
    lose `gap` frames at both ends, like dev and test."""
    total = sum(len(unit) for unit in units)
    target = round(config.train_dev * total)
    held: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    filled = 0
    for unit_number in np.random.default_rng([config.seed, 1]).permutation(len(units)):
        unit = units[unit_number]
        if filled < target and len(kept) + len(held) < len(units) - 1:
            held.append(unit)
            filled += len(unit)
        else:
            kept.append(unit)
    return np.sort(np.concatenate(kept)), _trim(held, config.gap)


def _trim(units: list[np.ndarray], gap: int) -> np.ndarray:
    """Drop `gap` frames at both ends of each unit (keeping at least one frame per unit)."""
    kept = []
    for unit in units:
        cut = min(gap, (len(unit) - 1) // 2)
        kept.append(unit[cut : len(unit) - cut])
    return np.sort(np.concatenate(kept)) if kept else np.array([], dtype=np.int64)
