"""--precision bf16 (issue 17): what runs in which precision, parity with fp32, the CPU check,
every method through training, the option on the CLI and on resume."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

from softmod import precision
from softmod.bench.updates import make_agent, random_batch
from softmod.config import EnvConfig, RunConfig, SACConfig, load_config
from softmod.loop import train
from softmod.methods import get_method
from softmod.nets.layers import StackedLinear
from softmod.precision import autocast, bf16_support, check_precision
from softmod.validation import ConfigError, validate_config

from .conftest import NETWORK_METHODS, toy_config

CPU = torch.device("cpu")
ONE_PER_NETWORK = ["mt-sac", "mt-mh-sac", "mix-expert", "hard-routing", "single-task-sac",
                   "soft-shallow", "soft-deep"]  # fmt: skip


def test_feature_detection_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    assert bf16_support("cpu") == {"amx_bf16": True, "avx512_bf16": False}
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert bf16_support("cpu") == {"amx_bf16": False, "avx512_bf16": False}


def test_bf16_without_support_warns_once_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    check_precision("bf16", "cpu", said.append)
    assert len(said) == 1 and "amx_bf16 and avx512_bf16" in said[0] and "slower" in said[0]
    check_precision("fp32", "cpu", said.append)  # fp32 never warns
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    check_precision("bf16", "cpu", said.append)  # one feature is enough
    assert len(said) == 1


def test_hidden_products_run_in_bf16_and_output_layers_in_fp32() -> None:
    hidden, out = StackedLinear(2, 8, 16), StackedLinear(2, 16, 1, output=True)
    x = torch.randn(5, 8)
    with autocast("bf16", CPU):
        h = hidden(x)
        y = out(torch.relu(h))
    assert h.dtype == torch.bfloat16 and y.dtype == torch.float32
    assert hidden(x).dtype == torch.float32  # outside the block: fp32 as before


@pytest.mark.parametrize("method", ONE_PER_NETWORK)
def test_bf16_q_values_follow_fp32_and_stay_fp32(method: str) -> None:
    torch.manual_seed(0)
    agent = make_agent(method, 3, CPU)
    with torch.no_grad():  # scale the Q output layer so that Q is O(100), as in training
        for name, p in agent.q.named_parameters():
            if name.startswith("net.out") or name.startswith("net.heads"):
                p.mul_(3e4)
    batch = random_batch(3, 32, CPU)
    with torch.no_grad():
        q32 = agent.q(batch.obs, batch.action, batch.task)
        with autocast("bf16", CPU):
            q16 = agent.q(batch.obs, batch.action, batch.task)
            a16 = agent.policy(batch.obs, batch.task)[0]
    assert q16.dtype == torch.float32 and a16.dtype == torch.float32
    scale = q32.abs().mean()
    assert scale > 1  # the test is not vacuous
    err = (q16 - q32).abs().mean() / scale
    assert 0 < err < 0.03, float(err)  # bf16 changes the numbers, by ~1% (8-bit mantissa)


def test_frozen_critics_get_no_gradient_through_the_bf16_weight_copies() -> None:
    torch.manual_seed(0)
    agent = make_agent("soft-shallow", 2, CPU, "bf16")
    b = random_batch(2, 8, CPU)
    action = torch.zeros_like(b.action, requires_grad=True)
    with autocast("bf16", CPU):
        agent.q(b.obs, b.action, b.task)  # a trainable use casts the weights first
        agent.q.requires_grad_(False)
        q_new = agent.q(b.obs, action, b.task)
        agent.q.requires_grad_(True)
    q_new.sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None for p in agent.q.parameters())


def test_precision_is_validated_recorded_and_fp32_by_default() -> None:
    assert RunConfig().precision == "fp32"
    with pytest.raises(ConfigError, match=r"unknown --precision 'fp16'; allowed: fp32, bf16"):
        validate_config(toy_config(precision="fp16"))


@pytest.mark.slow
@pytest.mark.parametrize("method", NETWORK_METHODS)  # one method per network type
def test_every_network_trains_in_bf16(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short bf16 toy run of each method through the train API: it updates, logs finite losses,
    records its precision, and warns when the CPU has no bf16 units (patched here)."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    spec = get_method(method)
    cfg = toy_config(policy_net=spec.network, q_net=spec.network, method=method,
                     total_steps=600, eval_interval=600, eval_episodes=1, log_interval=200,
                     sac=SACConfig(batch_per_task=16, warmup_per_task=100), precision="bf16",
                     torch_threads=1)  # fmt: skip
    out = io.StringIO()
    result = train(cfg, tmp_path / "run", progress=False, console=Console(file=out, width=200))
    assert result.updates == (600 - 400) // 4 + 1  # from the step completing the warm-up
    assert load_config(tmp_path / "run" / "config.json").precision == "bf16"
    assert out.getvalue().count("without amx_bf16 and avx512_bf16") == 1
    with (tmp_path / "run" / "train.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("loss/q")]
    assert rows and all(math.isfinite(float(r[k])) for r in rows for k in ("loss/q", "q/mean"))


@pytest.mark.slow
def test_cli_bf16_mt10_run_then_resume_cannot_change_the_precision(tmp_path: Path) -> None:
    run = tmp_path / "mt10"

    def softmod(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "softmod", *args], capture_output=True,
                              text=True)  # fmt: skip

    out = softmod(
        "train", "--benchmark", "mt10", "--method", "soft-shallow", "--precision", "bf16",
        "--total-steps", "300", "--warmup-per-task", "20", "--batch-per-task", "16",
        "--eval-interval", "300", "--eval-episodes", "1", "--log-interval", "100",
        "--horizon", "50", "--device", "cpu", "--run-dir", str(run), "--no-progress",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"
    out = softmod("train", "--resume", str(run), "--total-steps", "400", "--precision", "fp32")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--precision fp32 is incompatible" in lines[0], out.stderr
    out = softmod("train", "--precision", "fp16", "--run-dir", str(tmp_path / "x"))
    assert out.returncode == 2 and "fp16" in out.stderr and "fp32, bf16" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_q_parity_script_measures_a_toy_run(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "learning"
    sys.path.insert(0, str(root))
    spec = importlib.util.spec_from_file_location("learning_q_parity", root / "q_parity.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = toy_config(total_steps=2_400, eval_interval=2_400, eval_episodes=1,
                     checkpoint_interval=800, keep_checkpoints=5, precision="bf16",
                     sac=SACConfig(batch_per_task=16, warmup_per_task=200),
                     env=EnvConfig(benchmark="toy", horizon=30, toy_tasks=2))  # fmt: skip
    train(cfg, tmp_path / "run", progress=False, console=Console(file=io.StringIO()))
    path = mod.main(["toy-q", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    rows = json.loads(path.read_text())["run"]["rows"]
    assert [r["step"] for r in rows] == [0, 400, 800, 1600, 2400]  # 400: the warm-up's end
    for r in rows:
        assert 0 < r["q_abs_diff_mean"] <= r["q_abs_diff_max"]
        assert r["q_rel_diff_mean"] < 0.05
    assert rows[-1]["q_abs_mean"] > rows[0]["q_abs_mean"]  # the critics learned something
    (curve,) = json.loads(path.read_text())["run"]["curves"]  # side by side with the Q figures
    assert curve["label"] == "mt-sac s0 bf16" and curve["step"] == [2400]
    assert (tmp_path / "out" / "toy-q.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as err:
        mod.main(["x", str(tmp_path / "nope")])
    assert err.value.code == 2
    # softmod eval: the run's precision by default, --precision overrides it
    from softmod.evaluate import evaluate_run

    assert evaluate_run(tmp_path / "run", 1)[0]["precision"] == "bf16"
    assert evaluate_run(tmp_path / "run", 1, precision="fp32")[0]["precision"] == "fp32"


def test_sweep_precision_reaches_every_trial() -> None:
    from softmod.sweep import SweepArgs, build_trials

    args = SweepArgs(sweep_dir=Path("s"), methods=("mt-sac",), benchmarks=("toy",), seeds=(0,),
                     precision="bf16")  # fmt: skip
    (trial,) = build_trials(args.spec())
    assert "--precision" in trial.args and trial.args[trial.args.index("--precision") + 1] == "bf16"
