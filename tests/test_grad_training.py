"""Gradient methods (issue 21) in training: exact resume, learning on the toy tasks, logging."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from softmod.checkpoint import load_file, step_checkpoints
from softmod.config import CAGradConfig, FAMOConfig, GradNormConfig, PCGradConfig
from softmod.loop import RunInterrupted, train
from softmod.resume import resume

from .conftest import NETWORK_METHODS
from .test_resume import assert_same_run, small_config

GRADS = {
    "pcgrad": PCGradConfig(),
    "cagrad": CAGradConfig(),
    "gradnorm": GradNormConfig(),
    "famo": FAMOConfig(),
}


def _grad_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """The gradient method's tensors in the newest full checkpoint, flattened."""
    _, path = step_checkpoints(run_dir / "checkpoints")[-1]
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, torch.Tensor):
            out[prefix] = value

    walk("grad", load_file(path)["grad"])
    return out


# Learning with each method: tests/test_learning.py.


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRADS))
def test_stop_and_resume_with_each_method_is_bit_identical(name: str, tmp_path: Path) -> None:
    cfg = small_config(grad=GRADS[name], total_steps=400)
    train(cfg, tmp_path / "a", progress=False)
    with pytest.raises(RunInterrupted):  # mid log interval and mid checkpoint interval
        train(cfg, tmp_path / "b", progress=False, stop_at=150)
    resume(tmp_path / "b", progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    sa, sb = _grad_state(tmp_path / "a"), _grad_state(tmp_path / "b")
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), sa
    if name in ("gradnorm", "famo"):  # the methods that learn: their state is saved and moved
        assert any("weights" in k or "logits" in k for k in sa)
        assert not torch.equal(next(v for k, v in sa.items() if "weights" in k or "logits" in k),
                               torch.ones(4) if name == "gradnorm" else torch.zeros(4))  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "b" / "train.csv").open()))
    header = rows[0].keys()
    if name != "famo":  # per-task gradients exist: their mean pairwise cosine is logged
        assert -1.0 <= float(rows[-1]["grad/q_cosine"]) <= 1.0
        assert -1.0 <= float(rows[-1]["grad/policy_cosine"]) <= 1.0
    if name != "pcgrad":  # the weights each method assigns, per task by name
        assert [h for h in header if h.startswith("grad/q_weight/")] == [
            f"grad/q_weight/toy-{i}" for i in range(4)
        ]
        assert float(rows[-1]["grad/q_weight/toy-0"]) > 0


@pytest.mark.slow
def test_bench_grad_prints_each_methods_update_time_relative_to_plain(tmp_path: Path, capsys):
    from softmod.bench import BenchArgs, run_bench

    args = BenchArgs(quick=True, sections=("grad",), mt50=False, methods=("mt-sac",),
                     out=tmp_path, device="cpu")  # fmt: skip
    res = run_bench(args)
    grad = res["grad"]
    assert list(grad) == [f"mt10 mt-sac {g}" for g in ("plain", *GRADS)]
    assert all(grad[f"mt10 mt-sac {g}"]["vs_plain"] > 0 for g in GRADS)
    out = capsys.readouterr().out
    assert "gradient method" in out and "pcgrad" in out and "x)" in out


@pytest.mark.parametrize("goals", ["fixed", "conditioned"])
@pytest.mark.parametrize("method", ["mt-sac", "soft-shallow"])
def test_mt10_presets_with_each_gradient_method(method: str, goals: str) -> None:
    from softmod.cli import parse_train_preset
    from softmod.methods import METHODS, default_total_steps

    for name, cfg_type in GRADS.items():
        args = parse_train_preset(["train", "--preset", f"{method}-{name}-mt10-{goals}"])
        assert args is not None
        cfg = args.to_config()
        assert type(cfg.grad) is type(cfg_type)
        assert (cfg.method, cfg.env.benchmark, cfg.env.goals) == (method, "mt10", goals)
        assert cfg.sac.balance == METHODS[method].balance
        assert cfg.total_steps == default_total_steps(method, "mt10")
    # an explicit option of the preset's method is taken, another method's is refused
    args = parse_train_preset(["train", "--preset", f"{method}-cagrad-mt10-{goals}",
                               "--cagrad-c", "0.5"])  # fmt: skip
    assert args is not None and args.to_config().grad == CAGradConfig(c=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRADS))
def test_each_method_trains_on_mt10_through_the_cli_with_soft_shallow(name: str, tmp_path: Path):
    """200 MT10 steps (11 updates) of soft-shallow with ``softmod train --grad NAME``: the run
    finishes and train.csv holds the method's finite per-task metrics under the task names."""
    import math

    from softmod.cli import main

    run = tmp_path / "run"
    main(["train", "--benchmark", "mt10", "--method", "soft-shallow", "--grad", name,
          "--total-steps", "200", "--warmup-per-task", "10", "--batch-per-task", "8",
          "--eval-interval", "200", "--eval-episodes", "1", "--log-interval", "100",
          "--horizon", "25", "--device", "cpu", "--threads", "1", "--run-dir", str(run),
          "--no-progress"])  # fmt: skip
    rows = list(csv.DictReader((run / "train.csv").open()))
    last = rows[-1]
    assert int(last["train/updates"]) == 11  # from the 10th vector step on (warm-up 10 per task)
    cols = ["grad/q_cosine", "grad/policy_cosine"] if name != "famo" else []
    if name != "pcgrad":
        cols += ["grad/q_weight/reach-v3", "grad/q_weight/window-close-v3"]
    for col in cols:
        assert math.isfinite(float(last[col])), (col, last[col])
    assert (run / "checkpoints" / "final.pt").exists()


# Issue 21: every network with every gradient method, through the CLI, one method per network
# type (conftest.NETWORK_METHODS, checked there to cover every type).
@pytest.mark.slow
@pytest.mark.parametrize("method", NETWORK_METHODS)
def test_every_gradient_method_trains_every_network_through_the_cli(method: str, tmp_path: Path):
    """``softmod train --method M --grad G`` on the 2-task toy at the method's own sizes: 11
    updates each, finite losses, the method's per-task metrics logged, a final checkpoint."""
    import math

    from softmod.cli import main

    for name in GRADS:
        run = tmp_path / name
        main(["train", "--benchmark", "toy", "--toy-tasks", "2", "--method", method,
              "--grad", name, "--total-steps", "40", "--warmup-per-task", "10",
              "--batch-per-task", "4", "--eval-interval", "40", "--eval-episodes", "1",
              "--log-interval", "20", "--horizon", "10", "--device", "cpu", "--threads", "1",
              "--run-dir", str(run), "--no-progress"])  # fmt: skip
        last = list(csv.DictReader((run / "train.csv").open()))[-1]
        assert int(last["train/updates"]) == 11, (name, last)  # from the 10th vector step on
        cols = ["loss/q", "loss/policy"]
        cols += ["grad/q_cosine"] if name != "famo" else []
        cols += ["grad/q_weight/toy-1"] if name != "pcgrad" else []
        for col in cols:
            assert math.isfinite(float(last[col])), (name, col, last[col])
        assert (run / "checkpoints" / "final.pt").exists()
