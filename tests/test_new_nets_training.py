"""MOORE, PaCo and CARE (issue 20) learn the toy tasks, and train on MT10 / MT50 through the CLI
(fp32 and bf16) followed by ``softmod eval``. All slow: run with ``-m slow``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from softmod.cli import main
from softmod.config import CARENetConfig, EnvConfig, MOORENetConfig, NetworkConfig, PaCoNetConfig
from softmod.loop import train

from .conftest import toy_config

# Widths shrunk from the published 3 x 400 for test speed; the SAC settings are the toy defaults
# of tests/conftest.py (horizon 30, 32 rows per task, warm-up 500 per task). Success on the
# fixed-start toy is 0 or 1 per task: 0.75 is 3 of the 4 tasks.
# NOT YET MEASURED: these thresholds are the MT-SAC toy test's, not a measurement of each method.
# A first run (one thread, machine at load ~13, stopped at 4k of the 10k steps for time) had
# periodic success 0.25 (PaCo) and 0.75 (CARE) at step 4,000, MOORE still at its 2,000-step eval 0.
LEARNING: dict[str, tuple[NetworkConfig, int, float, float]] = {
    # method: (network, env steps, final mean success >=, best periodic eval >=)
    "moore": (MOORENetConfig(experts=2, hidden=(128, 128)), 10_000, 0.75, 0.9),
    "paco": (PaCoNetConfig(param_sets=2, hidden=(128, 128)), 10_000, 0.75, 0.9),
    "care": (CARENetConfig(experts=2, hidden=(128, 128)), 10_000, 0.75, 0.9),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(LEARNING))
def test_new_method_learns_the_toy_tasks(method: str, tmp_path: Path) -> None:
    net, steps, final, best = LEARNING[method]
    cfg = toy_config(
        env=EnvConfig(benchmark="toy", horizon=30, toy_tasks=4),
        policy_net=net,
        q_net=net,
        method=method,
        total_steps=steps,
        eval_interval=2_000,
    )
    result = train(cfg, tmp_path / method, progress=False)
    with (tmp_path / method / "eval.csv").open() as f:
        history = [float(row["eval/mean_success"]) for row in csv.DictReader(f)]
    assert result.final_eval.mean_success >= final, (result.final_eval.success, history)
    assert max(history) >= best, history


# MT10: one process trains the three methods (each precision on one of the two benchmarks), so
# each method trains in fp32 and in bf16 across the two tests; MT50 uses the methods' MT50 sizes.
CLI_RUNS = {
    "mt10": [("moore", "fp32"), ("paco", "bf16"), ("care", "fp32")],
    "mt50": [("moore-mt50", "bf16"), ("paco-mt50", "fp32"), ("care-mt50", "bf16")],
}


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", list(CLI_RUNS))
def test_cli_trains_then_evaluates(benchmark: str, tmp_path: Path) -> None:
    """Each method through ``softmod train`` (a few updates after a warm-up of 4 transitions per
    task, 2 rows per task), then ``softmod eval`` (1 episode per task)."""
    tasks = 10 if benchmark == "mt10" else 50
    steps = 8 * tasks  # 4 vector steps of warm-up, then 4 with an update each
    for method, precision in CLI_RUNS[benchmark]:
        run = tmp_path / method
        main([
            "train", "--method", method, "--benchmark", benchmark, "--precision", precision,
            "--total-steps", str(steps), "--warmup-per-task", "4", "--batch-per-task", "2",
            "--eval-interval", str(steps), "--eval-episodes", "1",
            "--log-interval", str(steps // 2),
            "--horizon", "10", "--device", "cpu", "--run-dir", str(run), "--no-progress",
        ])  # fmt: skip
        config = json.loads((run / "config.json").read_text())
        assert (config["method"], config["precision"]) == (method, precision)
        assert (run / "checkpoints" / "final.pt").exists()
        with (run / "train.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert rows and float(rows[-1]["train/updates"]) > 0, rows
        assert float(rows[-1]["loss/q"]) > 0, rows
        main(["eval", str(run), "--episodes", "1", "--device", "cpu"])
        result = json.loads((run / "eval_1ep.json").read_text())
        assert len(result["tasks"]) == tasks
        assert all(0.0 <= t["success"] <= 1.0 for t in result["tasks"].values())
