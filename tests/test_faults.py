"""Faults: divergence (a forced NaN), environment faults, a killed worker, bad checkpoint files."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

import softmod.loop as train_module
from softmod.buffer import MultiTaskReplay
from softmod.checkpoint import CheckpointError, load_agent, load_file, step_checkpoints
from softmod.config import EnvConfig
from softmod.envs import ToyMultiTaskEnv, make_env
from softmod.envs.base import EnvWorkerError, MultiTaskVecEnv, StepResult
from softmod.loop import DivergenceError, train
from softmod.resume import resume
from softmod.sac.agent import MultiTaskSAC

from .test_resume import small_config


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "train.csv").open()))


def _nan_batch_at(monkeypatch, call: int) -> None:
    """The ``call``-th replay sample returns NaN rewards (update j happens at step 4 (24 + j))."""
    real = MultiTaskReplay.sample
    count = {"n": 0}

    def sample(self, batch_size):
        batch = real(self, batch_size)
        count["n"] += 1
        if count["n"] == call:
            batch = batch._replace(reward=torch.full_like(batch.reward, float("nan")))
        return batch

    monkeypatch.setattr(MultiTaskReplay, "sample", sample)


# ----------------------------------------------------------------------------- divergence
def test_a_nan_loss_stops_the_run_naming_step_and_quantity(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    _nan_batch_at(monkeypatch, 30)  # update 30: step 4 * (24 + 30) = 216
    with pytest.raises(DivergenceError, match=r"non-finite loss/q \(nan\) at step 216") as info:
        train(small_config(), run, progress=False)
    assert "step-000000000200.pt is intact" in str(info.value)
    # the warm-up's (100) and the periodic one; nothing after it
    assert [s for s, _ in step_checkpoints(run / "checkpoints")] == [100, 200]
    _, agent = load_agent(run, torch.device("cpu"), "step-000000000200.pt")
    assert all(torch.isfinite(v).all() for v in agent.state_dict().values())
    monkeypatch.undo()
    resume(run, progress=False)  # the last good checkpoint continues
    assert int(_rows(run)[-1]["step"]) == 600


def test_a_nan_parameter_is_never_saved(tmp_path: Path, monkeypatch) -> None:
    real = MultiTaskSAC.update
    count = {"n": 0}

    def update(self, batch):
        metrics = real(self, batch)
        count["n"] += 1
        if count["n"] == 26:  # the update of step 200, just before the checkpoint
            with torch.no_grad():
                self.log_alpha[0] = float("inf")
        return metrics

    monkeypatch.setattr(MultiTaskSAC, "update", update)
    with pytest.raises(DivergenceError, match="non-finite parameter log_alpha at step 200"):
        train(small_config(), tmp_path / "run", progress=False)
    # only the warm-up's checkpoint (step 100), from before the bad update
    assert [s for s, _ in step_checkpoints(tmp_path / "run" / "checkpoints")] == [100]


def test_on_nonfinite_skip_skips_the_bad_update_and_goes_on(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    _nan_batch_at(monkeypatch, 30)
    result = train(small_config(on_nonfinite="skip"), run, progress=False)
    assert result.env_steps == 600
    rows = _rows(run)
    assert [r["train/skipped_updates"] for r in rows] == ["0", "0", "1", "1", "1", "1"]
    assert all(np.isfinite(float(rows[-1][k])) for k in ("loss/q", "loss/policy", "q/mean"))
    _, agent = load_agent(run, torch.device("cpu"))
    assert all(torch.isfinite(v).all() for v in agent.state_dict().values())


# ---------------------------------------------------------------------- environment faults
def test_a_faulty_environment_is_reset_counted_and_the_run_goes_on(
    tmp_path: Path, monkeypatch
) -> None:
    real_make_env = train_module.make_env

    def make_env_with_fault(cfg, seed, stream=0):
        env = real_make_env(cfg, seed, stream)
        if stream == 0:
            step, calls = env.step, {"n": 0}

            def faulty_step(actions):
                calls["n"] += 1
                if calls["n"] == 40:  # env 1 goes non-finite (a MuJoCo-like instability)
                    actions = actions.copy()
                    actions[1] = np.nan
                return step(actions)

            env.step = faulty_step
        return env

    monkeypatch.setattr(train_module, "make_env", make_env_with_fault)
    run = tmp_path / "run"
    result = train(small_config(), run, progress=False)
    assert result.env_steps == 600
    assert [r["env/faults"] for r in _rows(run)] == ["0", "1", "1", "1", "1", "1"]
    assert int(load_file(step_checkpoints(run / "checkpoints")[-1][1])["loop"]["faults"]) == 1


def test_toy_fault_resets_only_that_environment() -> None:
    env = ToyMultiTaskEnv(4, horizon=30)
    env.reset()
    env.step(np.zeros((4, 2), np.float32))
    actions = np.zeros((4, 2), np.float32)
    actions[2] = np.nan
    res = env.step(actions)
    assert res.fault is not None and res.fault.tolist() == [False, False, True, False]
    assert res.truncated.tolist() == [False, False, True, False] and env.t.tolist() == [2, 2, 0, 2]
    assert np.isfinite(res.obs).all() and np.isfinite(res.final_obs).all()


@pytest.mark.slow
def test_a_metaworld_env_that_raises_or_goes_non_finite_is_reset_alone() -> None:
    env = make_env(EnvConfig(benchmark="mt10", horizon=50), seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    env.step(rng.uniform(-1, 1, (10, 4)))

    def raises(action):
        raise RuntimeError("MuJoCo exploded")

    def nan_obs(action, real=env.envs[5].step):
        obs, *rest = real(action)
        return np.full_like(obs, np.nan), *rest

    env.envs[3].step = raises
    env.envs[5].step = nan_obs
    res = env.step(rng.uniform(-1, 1, (10, 4)))
    assert np.flatnonzero(res.fault).tolist() == [3, 5]
    assert "MuJoCo exploded" in env.fault_reasons[3] and "non-finite" in env.fault_reasons[5]
    assert env.faults == 2 and env.t.tolist() == [2, 2, 2, 0, 2, 0, 2, 2, 2, 2]
    assert np.isfinite(res.obs).all()
    del env.envs[3].step, env.envs[5].step  # the reset envs step normally again
    res = env.step(rng.uniform(-1, 1, (10, 4)))
    assert res.fault is None and np.isfinite(res.obs).all()
    env.close()


# ----------------------------------------------------------------------- a killed worker
def _worker(conn: Any, num_tasks: int, horizon: int, seed: int, stream: int) -> None:
    env = ToyMultiTaskEnv(num_tasks, horizon, "fixed", seed, stream)
    while True:
        cmd, arg = conn.recv()
        if cmd == "close":
            return
        conn.send(getattr(env, cmd)(*arg))


class ProcessToyEnv(MultiTaskVecEnv):
    """The toy env stepped in a child process; :meth:`kill` ends it with SIGKILL."""

    def __init__(self, num_tasks: int, horizon: int, seed: int, stream: int) -> None:
        local = ToyMultiTaskEnv(num_tasks, horizon, "fixed", seed, stream)
        self.task_names, self.task_ids = local.task_names, local.task_ids
        self.obs_dim, self.act_dim, self.horizon = local.obs_dim, local.act_dim, horizon
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, num_tasks, horizon, seed, stream))
        self.proc.daemon = True
        self.proc.start()
        child.close()

    def _call(self, cmd: str, *arg: Any) -> Any:
        try:
            self.conn.send((cmd, arg))
            while not self.conn.poll(0.05):  # never block on a dead worker
                if not self.proc.is_alive():
                    raise EOFError
            return self.conn.recv()
        except (EOFError, OSError):
            raise EnvWorkerError(
                f"environment worker {self.proc.pid} died (exit code {self.proc.exitcode})"
            ) from None

    def reset(self) -> np.ndarray:
        return self._call("reset")

    def step(self, actions: np.ndarray) -> StepResult:
        return self._call("step", actions)

    def get_state(self) -> dict[str, Any]:
        return self._call("get_state")

    def set_state(self, state: dict[str, Any]) -> None:
        self._call("set_state", state)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.proc.is_alive():
            self.conn.send(("close", ()))
        self.proc.join(timeout=5)


def test_a_killed_worker_gives_a_clear_error_and_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    envs: list[ProcessToyEnv] = []

    def make_process_env(cfg, seed, stream=0):
        envs.append(ProcessToyEnv(cfg.toy_tasks, cfg.horizon, seed, stream))
        return envs[-1]

    real_update = MultiTaskSAC.update
    count = {"n": 0}

    def update(self, batch):  # the worker is killed during update 60 (step 4 * (24 + 60))
        count["n"] += 1
        if count["n"] == 60:
            envs[0].kill()
        return real_update(self, batch)

    monkeypatch.setattr(train_module, "make_env", make_process_env)
    monkeypatch.setattr(MultiTaskSAC, "update", update)
    run = tmp_path / "run"
    with pytest.raises(EnvWorkerError, match="died") as info:
        train(small_config(), run, progress=False)
    message = str(info.value)
    assert "\n" not in message and "checkpoint at step 336 saved" in message
    assert f"--resume {run}" in message
    assert [s for s, _ in step_checkpoints(run / "checkpoints")] == [200, 336]
    assert load_file(run / "checkpoints" / "step-000000000336.pt")["env"] is None
    assert not any(e.proc.is_alive() for e in envs)  # the eval worker was closed too
    monkeypatch.undo()
    resume(run, progress=False)  # episodes restart from fresh resets
    assert [int(r["step"]) for r in _rows(run)] == [100, 200, 300, 400, 500, 600]


# ---------------------------------------------------------------- bad checkpoint files
@pytest.mark.parametrize("damaged", ["step", "replay"])
def test_a_truncated_checkpoint_is_named_and_resume_falls_back(
    tmp_path: Path, damaged: str, capsys
) -> None:
    run = tmp_path / "run"
    train(small_config(total_steps=400), run, progress=False)
    ckpt = run / "checkpoints"
    bad = ckpt / f"{damaged}-000000000400.pt"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    if damaged == "step":
        with pytest.raises(CheckpointError, match=f"cannot load {bad}: truncated or corrupted"):
            load_file(bad)
    resume(run, {"total_steps": 600}, progress=False, console=Console(stderr=True, width=1000))
    err = capsys.readouterr().err
    assert str(bad) in err and "trying the previous checkpoint" in err
    assert (ckpt / "step-000000000400.pt.bad").exists()
    assert [int(r["step"]) for r in _rows(run)] == [100, 200, 300, 400, 500, 600]


class Payload:
    """Unpickling this would run code: it must never be unpickled."""

    def __reduce__(self):
        return (Path.touch, (Path(os.environ["SOFTMOD_TEST_MARKER"]),))


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "unpickled"
    monkeypatch.setenv("SOFTMOD_TEST_MARKER", str(marker))
    run = tmp_path / "run"
    train(small_config(total_steps=400), run, progress=False)
    for name in ("final.pt", "step-000000000400.pt"):
        evil = {"agent": Payload(), "format": "softmod-checkpoint-1"}
        torch.save(evil, run / "checkpoints" / name)
    with pytest.raises(CheckpointError, match=r"refusing to load .*final\.pt: it holds objects"):
        load_agent(run, torch.device("cpu"))
    resume(run, {"total_steps": 600}, progress=False)  # falls back to step 200
    assert not marker.exists()


def test_a_full_disk_at_a_periodic_checkpoint_is_a_warning(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import errno

    import softmod.checkpoint as checkpoint_module

    real_save = checkpoint_module.atomic_torch_save

    def save(obj, path, what=None):
        if path.name == "step-000000000200.pt":  # the replay is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, what)

    monkeypatch.setattr(checkpoint_module, "atomic_torch_save", save)
    run = tmp_path / "run"
    train(small_config(), run, progress=False, console=Console(stderr=True, width=1000))
    err = capsys.readouterr().err
    assert "cannot write the checkpoint of step 200" in err and "No space left" in err
    assert [s for s, _ in step_checkpoints(run / "checkpoints")] == [400, 600]
    assert not (run / "checkpoints" / "replay-000000000200.pt").exists()
