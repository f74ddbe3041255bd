"""The command line: --help documents every option, bad input is one line, MT10 smoke run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from softmod.cli import EvalArgs, TrainArgs


def _softmod(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "softmod", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(("command", "args_cls"), [("train", TrainArgs), ("eval", EvalArgs)])
def test_help_documents_every_option(command: str, args_cls: type) -> None:
    out = _softmod(command, "--help")
    assert out.returncode == 0
    for field in dataclasses.fields(args_cls):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "run_dir" and command == "eval":
            flag = "Run directory written by softmod train"  # positional: its help text
        assert flag in out.stdout, f"--help of {command} misses {flag}"


def test_unknown_task_is_a_one_line_error_with_exit_code_2(tmp_path: Path) -> None:
    out = _softmod("train", "--benchmark", "mt1", "--task", "reach-v9", "--run-dir", str(tmp_path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task 'reach-v9'" in lines[0] and "reach-v3" in lines[0]
    assert not (tmp_path / "config.json").exists()  # nothing was started


def test_horizon_above_500_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    out = _softmod("train", "--horizon", "501", "--run-dir", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "--horizon 501" in out.stderr and "1..500" in out.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_mt10_smoke_train_then_eval_gives_a_ten_task_table(tmp_path: Path) -> None:
    run = tmp_path / "mt10"
    out = _softmod(
        "train", "--benchmark", "mt10", "--goals", "conditioned", "--total-steps", "400",
        "--warmup-per-task", "20", "--batch-per-task", "16", "--eval-interval", "200",
        "--eval-episodes", "1", "--log-interval", "100", "--horizon", "50", "--device", "cpu",
        "--run-dir", str(run), "--no-progress",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for name in ("config.json", "train.csv", "eval.csv", "params.json", "checkpoints/final.pt"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((run / "config.json").read_text())["env"]["benchmark"] == "mt10"

    out = _softmod("eval", str(run), "--episodes", "1", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    result = json.loads((run / "eval_1ep.json").read_text())
    assert len(result["tasks"]) == 10
    assert "reach-v3" in result["tasks"] and "window-close-v3" in result["tasks"]
    assert all(0.0 <= t["success"] <= 1.0 for t in result["tasks"].values())
    assert "mean" in out.stdout and "peg-insert-side-v3" in out.stdout
