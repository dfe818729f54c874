"""Replay validation as if real: a simulator lap replayed with its pose ignored (the path
from its pictures) must give the simulator's verdicts, and the odometry must follow the
recorded pose. A tiny run: one recorded lap, two reference pilots of opposite quality."""

from __future__ import annotations

from pathlib import Path

from evaluation.reference import StraightPilot, YellowLinePilot
from experiments.replay_validation import validate
from sim import Simulation, Track, record_tub


def test_as_real_validation_gives_the_simulators_verdicts_on_a_tiny_tub(tmp_path: Path) -> None:
    track = Track.from_seed(1)
    record_tub(Simulation(track), tmp_path / "lap", laps=1, noise=0.1, seed=99, progress=False)
    pilots = {"line follower": YellowLinePilot(), "never steers": StraightPilot()}

    results = validate(track, tmp_path / "lap", pilots, sim_laps=1, log=lambda *_: None)

    summary = results["as_real"]
    assert summary["pilots"] == 2 and summary["as_real_agree"] == 2
    rows = {row["model"]: row for row in results["rows"]}
    assert rows["line follower"]["as_real_verdict"] == "drives"
    assert rows["never steers"]["as_real_verdict"] == "fails"
    assert summary["vo_position_error_m_per_m"] < 0.05  # a few cm per metre travelled
    assert summary["vo_heading_error_deg_per_m"] < 3.0
