"""Training end to end on the toy environment: it learns, it is deterministic, it logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from softmod.checkpoint import load_agent
from softmod.config import SACConfig, load_config
from softmod.loop import train

from .conftest import toy_config


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_agent(run_dir, torch.device("cpu"))[1].state_dict()


# Learning (fp32 and bf16): tests/test_learning.py.


@pytest.mark.slow
def test_same_seed_gives_bit_identical_parameters(tmp_path: Path) -> None:
    cfg = toy_config(
        total_steps=1_200, sac=SACConfig(batch_per_task=16, warmup_per_task=100), eval_interval=600
    )
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    train(toy_config(**{**cfg.__dict__, "seed": 1}), tmp_path / "c", progress=False)
    a, b, c = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical after 200 updates
    assert not all(torch.equal(a[k], c[k]) for k in a)  # and the seed matters


@pytest.mark.slow
def test_run_directory_holds_config_csv_tensorboard_and_weights(tmp_path: Path) -> None:
    cfg = toy_config(
        total_steps=800,
        sac=SACConfig(batch_per_task=8, warmup_per_task=50),
        eval_interval=400,
        log_interval=200,
    )
    run = tmp_path / "run"
    result = train(cfg, run, progress=False)
    assert load_config(run / "config.json") == cfg  # the resolved config round-trips
    rows = list(csv.DictReader((run / "train.csv").open()))
    assert [int(r["step"]) for r in rows] == [200, 400, 600, 800]
    assert float(rows[-1]["loss/q"]) > 0 and float(rows[-1]["alpha/toy-3"]) > 0
    assert float(rows[-1]["train/steps_per_s"]) > 0
    evals = list(csv.DictReader((run / "eval.csv").open()))
    assert [int(r["step"]) for r in evals] == [400, 800]
    assert {f"eval/toy-{t}/success" for t in range(4)} <= set(evals[0])
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((run / "params.json").read_text()) == result.parameter_counts
    assert (run / "checkpoints" / "final.pt").exists()
    final = json.loads((run / "final_eval.json").read_text())
    assert set(final["tasks"]) == {f"toy-{t}" for t in range(4)}


def test_tensorboard_events_hold_per_task_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = toy_config(
        total_steps=400, sac=SACConfig(batch_per_task=8, warmup_per_task=50), eval_interval=400
    )
    train(cfg, tmp_path / "run", progress=False)
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"eval/toy-0/success", "eval/mean_success", "loss/q", "alpha/toy-2"} <= tags
    assert "train/steps_per_s" in tags


def test_an_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    from softmod.validation import ConfigError

    cfg = toy_config(total_steps=200, sac=SACConfig(batch_per_task=8, warmup_per_task=50))
    train(cfg, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "train.csv").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "train.csv").read_bytes() == before


@pytest.mark.parametrize("balance", [False, True])
def test_train_csv_logs_the_balance_weights_the_update_applies(
    tmp_path: Path, balance: bool
) -> None:
    sac = SACConfig(batch_per_task=8, warmup_per_task=50, balance=balance)
    cfg = toy_config(total_steps=400, eval_interval=400, log_interval=200, sac=sac)
    train(cfg, tmp_path / "run", progress=False)
    row = list(csv.DictReader((tmp_path / "run" / "train.csv").open()))[-1]
    log_alpha = torch.tensor([float(row[f"alpha/toy-{t}"]) for t in range(4)]).log()
    weights = torch.tensor([float(row[f"balance/toy-{t}"]) for t in range(4)])
    assert len(set(log_alpha.tolist())) > 1  # the temperatures differ, so the weights would too
    expected = 4 * torch.softmax(-log_alpha, 0) if balance else torch.ones(4)
    torch.testing.assert_close(weights, expected, rtol=1e-4, atol=1e-5)
