"""The acceptance experiments run through the library: record, train, drive, score (short runs)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from car.tub import Tub
from experiments.acceptance import SimPlan, record_sim, sim_acceptance
from experiments.real_protocol import VARIANTS, RealPlan, Recipes, make_folds, real_protocol
from training.fit import FitConfig
from training.train import TrainOptions

QUICK = TrainOptions(fit=FitConfig(epochs=1, verbose=0), augment_workers=0)


@pytest.mark.slow
def test_sim_acceptance_records_trains_and_drives_unseen_tracks(tmp_path: Path) -> None:
    plan = SimPlan(
        train_seeds=(1,), train_laps=2, test_seeds=(101, 102), drive_laps=1, unseen_seeds=2, unseen_laps=1
    )
    summary = sim_acceptance(tmp_path, ["fast"], QUICK, plan, log=lambda _: None)

    # The expert's laps, recorded by sim.record_tub: one tub per lap, each on the next floor.
    tubs = [Tub(tmp_path / "tubs" / f"track1-floor{floor}") for floor in (0, 1)]
    assert [tub.metadata["track"] for tub in tubs] == ["seed 1 on glossy green-grey", "seed 1 on concrete"]
    for tub in tubs:
        assert tub.metadata["controller"]["kind"] == "sim expert"
        assert tub.metadata["controller"]["steering_noise"] == plan.noise
        assert len(tub) > 300
    assert summary["train_laps"] == 2 and summary["span_floors"]
    model = summary["models"]["fast"]
    stages = model["train_stages"]  # where the timed seconds went, in running order
    assert list(stages) == ["set-up", "data", "fit", "evaluate", "report", "export"]
    assert all(seconds >= 0 for seconds in stages.values()) and stages["fit"] > 0
    assert sum(stages.values()) == pytest.approx(model["train_seconds"], abs=0.2)
    assert set(model["drives"]) == {"101", "102"}  # each unseen seed driven by the exported bundle
    for drive in model["drives"].values():
        assert 0.0 <= drive["autonomy"] <= 1.0 and drive["laps"] <= 1 and drive["mean_cte"] >= 0
    assert model["passed"] == all(
        d["completed"] and d["interventions"] == 0 for d in model["drives"].values()
    )
    robust = summary["robustness"]  # the default model on seeds the script picked
    assert robust["model"] == "fast" and len(robust["seeds"]) == 2 == len(robust["drives"])
    assert not set(robust["seeds"]) & {1, 101, 102} and robust["seeds"] == plan.picked_seeds()
    assert robust["passed"] == all(
        d["completed"] and d["interventions"] == 0 for d in robust["drives"].values()
    )
    assert summary["preset"] == "mixed" and summary["driver"]["lane"] == "centre"
    assert "latency" not in summary  # the latency ratio needs all three architectures
    assert json.loads((tmp_path / "acceptance.json").read_text()) == summary


def test_sim_acceptance_records_the_preset_with_its_driver_and_the_lane_flags_on_top(tmp_path: Path) -> None:
    plan = SimPlan(preset="warehouse", lane="left", lane_offset=0.2)
    (tub_path,) = record_sim(tmp_path, (2,), 1, 0.0, plan.preset, **plan.driver())
    assert tub_path.name == "warehouse2"
    meta = Tub(tub_path).metadata
    assert meta["track_preset"] == "warehouse"
    driver = meta["controller"]
    assert (driver["lane"], driver["lane_offset_m"], driver["corner_cut_m2"]) == ("left", 0.2, 0.7)


def test_the_few_real_records_are_spread_over_the_fold_or_one_block_beside_it() -> None:
    """sim_real200's 200 real records: by default spread over all of the fold's training
    records (both sides of the held-out block, in proportion); `block`: the 10 s after
    the held-out block, or before it for the last fold."""
    folds = make_folds(np.arange(1000), RealPlan())
    middle, last = folds[1], folds[4]  # hold out 200-399 (training 0-179, 420-999) and 800-999
    spread = middle.spread(200)
    assert len(np.unique(spread)) == 200 and np.isin(spread, middle.training).all()
    assert (spread[0], spread[-1]) == (0, 999)
    assert 40 <= np.sum(spread < 200) <= 55  # 180 of the 760 training records lie before the block
    assert np.array_equal(middle.block(200), np.arange(420, 620))
    assert np.array_equal(last.block(200), np.arange(580, 780))


@pytest.mark.slow
def test_real_protocol_holds_out_each_fold_and_scores_the_variants(donkey_tub: Path, tmp_path: Path) -> None:
    plan = RealPlan(folds=2, few_frames=200, sim_seeds=(1,), sim_laps=1, mix_frames=100, mix_weight=0.25)
    fixed = replace(QUICK, fit=replace(QUICK.fit, early_stopping=False))  # no dev block: all records train
    quick = Recipes(real=fixed, sim=QUICK, fine_tune=fixed, mix=fixed, few_tune=fixed)
    result = real_protocol(donkey_tub, tmp_path, quick, plan, log=lambda _: None)

    assert result["folds"] == [[0, 500], [500, 1000]]
    for variant in VARIANTS:
        ratios = result[variant]["ratios"]
        assert len(ratios) == 2 and result[variant]["worst_ratio"] == max(ratios)
        assert result[variant]["mean_ratio"] == pytest.approx(sum(ratios) / 2, abs=1e-4)
    for fold, (start, stop) in enumerate(result["folds"]):
        card = json.loads((tmp_path / "real" / f"fold{fold}" / "model.json").read_text())
        records = card["training"]["records"]
        assert set(records) == {"train", "test"}
        learnt = [r for used in records["train"].values() for r in used["ranges"]]
        assert all(b <= start - 20 or a >= stop + 20 for a, b in learnt), (
            "a training record within 1 s of the fold"
        )
        tested = [r for used in records["test"].values() for r in used["ranges"]]
        assert tested == [[start, stop]]
        few = json.loads((tmp_path / "sim_real200" / f"fold{fold}" / "model.json").read_text())["training"]
        assert few["records"]["train"][str(donkey_tub)]["records"] == 200  # and the sim_mix frames
        spread = few["records"]["train"][str(donkey_tub)]["ranges"]  # from end to end of the training side
        assert [spread[0][0], spread[-1][1]] == ([520, 1000] if fold == 0 else [0, 480]) and len(spread) > 50
        assert few["records"]["train"][str(tmp_path / "sim_tubs" / "warehouse1")]["records"] == 100
        assert few["parent"]["bundle"] == str((tmp_path / "sim").resolve())
        mix = json.loads((tmp_path / "sim_mix" / f"fold{fold}" / "model.json").read_text())["training"]
        assert mix["records"]["train"][str(tmp_path / "sim_tubs" / "warehouse1")]["records"] == 100
        assert mix["records"]["train"][str(donkey_tub)] == records["train"][str(donkey_tub)]
        assert mix["tub_weights"] == {str(donkey_tub): 1.0, str(tmp_path / "sim_tubs" / "warehouse1"): 0.25}
        assert "parent" not in mix  # from scratch: the recipe's alternative to fine-tuning
    sim = json.loads((tmp_path / "sim" / "model.json").read_text())["training"]["records"]
    assert all("warehouse" in tub for name in sim for tub in sim[name])  # not one real frame
    assert json.loads((tmp_path / "acceptance_real.json").read_text())["folds"] == result["folds"]
