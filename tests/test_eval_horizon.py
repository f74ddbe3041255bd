"""``softmod eval --horizon H``: a run evaluated on episodes of another length (a horizon-500 run on
the paper's 150 steps), written beside the run's own numbers and never taken for them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from softmod.cli import main
from softmod.evaluate import evaluate_run
from softmod.loop import train
from softmod.report.build import build_report

from .test_resume import small_config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished toy run on 30-step episodes, fixed goals: every episode of a task is the same
    deterministic episode, and the observation holds no time, as on MT10-Fixed."""
    path = tmp_path_factory.mktemp("horizon") / "run"
    train(small_config(total_steps=600), path, progress=False)
    return path


def test_a_shorter_horizon_is_the_start_of_the_runs_own_episodes(run: Path) -> None:
    own_protocol, own = evaluate_run(run, episodes=2)
    assert own_protocol["horizon"] == own_protocol["train_horizon"] == 30
    returns, success = [], []
    for horizon in (1, 2, 5, 10, 29, 30):
        protocol, result = evaluate_run(run, episodes=2, horizon=horizon)
        assert (protocol["horizon"], protocol["train_horizon"]) == (horizon, 30)
        returns.append(result.returns)
        success.append(result.success)
    returns_, success_ = np.array(returns), np.array(success)
    # toy rewards lie in [0, 10] per step: a return can only grow with the horizon, by at most
    # 10 per added step, and success within h steps implies success within more
    steps = np.diff([1, 2, 5, 10, 29, 30])[:, None]
    assert (np.diff(returns_, axis=0) >= 0).all() and (
        np.diff(returns_, axis=0) <= 10 * steps
    ).all()
    assert (np.diff(success_, axis=0) >= 0).all()
    assert (returns_[0] > 0).all() and (returns_[0] <= 10).all()  # one step: one reward
    np.testing.assert_array_equal(returns_[-1], own.returns)  # the run's horizon: its own numbers
    np.testing.assert_array_equal(success_[-1], own.success)
    assert not np.array_equal(returns_[2], own.returns)


def test_eval_horizon_writes_its_own_file_which_the_report_leaves_aside(
    run: Path, tmp_path: Path
) -> None:
    main(["eval", str(run), "--episodes", "2", "--device", "cpu"])
    main(["eval", str(run), "--episodes", "2", "--device", "cpu", "--horizon", "5"])
    own = json.loads((run / "eval_2ep.json").read_text())
    short = json.loads((run / "eval_2ep_h5.json").read_text())
    assert (own["horizon"], short["horizon"], short["train_horizon"]) == (30, 5, 30)
    assert short["step"] == own["step"] == 600
    # the run's own horizon named explicitly: the run's own file, nothing new
    before = sorted(p.name for p in run.iterdir())
    main(["eval", str(run), "--episodes", "2", "--device", "cpu", "--horizon", "30"])
    assert sorted(p.name for p in run.iterdir()) == before
    rep = build_report([run], tmp_path / "report", routing=False, progress=False, videos=False)
    assert [r.source for r in rep.runs] == ["eval_2ep.json"]
    mean_return = np.mean([t["return"] for t in own["tasks"].values()])
    assert rep.runs[0].returns.mean() == pytest.approx(mean_return)
