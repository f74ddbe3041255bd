"""Figure 5 of ``softmod report`` keeps the curve of a method whose runs are all unfinished
(final report) or all short of ``--at`` (equal samples); the tables leave them out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softmod.config import EnvConfig, RunConfig, SACConfig, save_config
from softmod.report.collect import collect_runs, curve_groups, group_key, load_run

TASKS = ["reach-v3", "push-v3"]


def _run(root: Path, method: str, steps: list[int], finished: bool) -> Path:
    run = root / method
    run.mkdir(parents=True)
    cfg = RunConfig(env=EnvConfig(benchmark="mt10", goals="fixed"), method=method,
                    sac=SACConfig(balance=method == "soft-shallow"))  # fmt: skip
    save_config(cfg, run / "config.json")
    head = "step,eval/mean_success,eval/mean_return," + ",".join(
        f"eval/{t}/success,eval/{t}/return" for t in TASKS
    )
    rows = [f"{s},0.5,10,1,15,0,5" for s in steps]
    (run / "eval.csv").write_text("\n".join([head, *rows]) + "\n")
    if finished:
        tasks = {t: {"success": 1.0 - i, "return": 10.0} for i, t in enumerate(TASKS)}
        final = {"step": steps[-1], "episodes_per_task": 5, "tasks": tasks}
        (run / "final_eval.json").write_text(json.dumps(final))
    return run


@pytest.mark.parametrize("at", [None, 30])
def test_a_method_left_out_of_the_tables_keeps_its_curve(tmp_path: Path, at: int | None) -> None:
    done = _run(tmp_path, "mt-mh-sac", [10, 20, 30], finished=True)
    training = _run(tmp_path, "soft-shallow", [10, 20], finished=False)
    runs, skipped = collect_runs([done, training], at)
    assert [r.method for r in runs] == ["mt-mh-sac"] and [s.path for s in skipped] == [training]
    curves = curve_groups(runs, skipped, at)
    assert list(curves) == [("mt10", "fixed", "mt-mh-sac"), ("mt10", "fixed", "soft-shallow")]
    (shown,) = curves[("mt10", "fixed", "soft-shallow")]
    assert shown.curve_steps.tolist() == [10, 20] and shown.curve_success.tolist() == [0.5, 0.5]
    # a run short of a step it has not reached yet, next to a finished one of its own method:
    # the method's curve stays that of the runs in the tables
    extra = _run(tmp_path / "s1", "mt-mh-sac", [10], finished=False)
    runs, skipped = collect_runs([done, training, extra], at)
    assert curve_groups(runs, skipped, at)[("mt10", "fixed", "mt-mh-sac")] == runs


def test_group_key_names_the_setting_and_the_row_from_the_config() -> None:
    """The report and equal_samples.py group runs by this one key."""
    mt1 = {"env": {"benchmark": "mt1", "task": "reach-v3", "goals": "fixed", "horizon": 500},
           "method": "mt-sac", "sac": {"balance": False}, "precision": "bf16"}  # fmt: skip
    assert group_key(mt1, 1) == ("mt1-reach-v3", "fixed", "mt-sac [bf16, h500]")
    toy = {"env": {"benchmark": "toy", "goals": "random", "horizon": 20},
           "method": "soft-shallow", "sac": {"balance": True}}  # fmt: skip
    assert group_key(toy, 4) == ("toy4", "random", "soft-shallow")
    with pytest.raises(KeyError):
        group_key({"env": {"benchmark": "mt10", "goals": "fixed"}, "method": "mt-sac"}, 10)


def test_a_short_video_evaluation_does_not_shadow_the_final_one(tmp_path: Path) -> None:
    """``softmod eval --episodes 1 --video 1`` writes eval_1ep.json; the report keeps reading
    training's 5-episode final_eval.json, and a 100-episode softmod eval beats both."""
    run = _run(tmp_path, "mt-sac", [10], finished=True)
    one = {"episodes_per_task": 1, "checkpoint": "final.pt",
           "tasks": {t: {"success": 0.0, "return": 1.0} for t in TASKS}}  # fmt: skip
    (run / "eval_1ep.json").write_text(json.dumps(one))
    got = load_run(run)
    assert got.source == "final_eval.json" and got.episodes == 5 and got.success.tolist() == [1, 0]
    (run / "eval_100ep.json").write_text(json.dumps({**one, "episodes_per_task": 100}))
    got = load_run(run)
    assert got.source == "eval_100ep.json" and got.episodes == 100


def test_report_at_the_final_step_takes_the_100_episode_final_evaluation(tmp_path: Path) -> None:
    """At the step where a run finished, ``--at`` reads the paper's 100-episode evaluation of the
    final weights, not the 5-episode row of eval.csv; an evaluation of older final weights (a
    run trained further by a softmod that did not rename it) is never taken for the new ones."""
    run = _run(tmp_path, "mt-sac", [10, 20, 30], finished=True)
    hundred = {"episodes_per_task": 100, "checkpoint": "final.pt", "step": 30,
               "tasks": {t: {"success": 0.25, "return": 3.0} for t in TASKS}}  # fmt: skip
    (run / "eval_100ep.json").write_text(json.dumps(hundred))
    got = load_run(run, 30)
    assert got.source == "eval_100ep.json" and got.episodes == 100
    assert got.success.tolist() == [0.25, 0.25] and got.returns.tolist() == [3.0, 3.0]
    got = load_run(run, 20)  # an earlier step: the periodic evaluation there
    assert got.source == "eval.csv@20" and got.success.tolist() == [1.0, 0.0]
    (run / "eval_100ep.json").write_text(json.dumps({**hundred, "step": 20}))  # stale
    assert load_run(run).source == "final_eval.json"
    assert load_run(run, 30).source == "final_eval.json"  # training's, of those weights
