"""MOORE, PaCo and CARE (issue 20) train on MT10 and MT50 through the CLI (fp32 and bf16), then
``softmod eval``. Their toy learning tests are in tests/test_learning.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from softmod.cli import main

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
