"""Subprocess collection: same transitions as in-process, faults, dead workers, RNG state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from softmod.config import EnvConfig
from softmod.envs import make_env
from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv
from softmod.envs.subproc import (
    EnvWorkerError,
    SubprocMultiTaskEnv,
    get_env_state,
    lpt_assign,
)


def test_lpt_assignment_balances_costs_and_keeps_every_task_once() -> None:
    costs = [9.0, 7.0, 6.0, 5.0, 5.0, 4.0, 1.0]
    bins = lpt_assign(costs, 3)
    assert sorted(i for b in bins for i in b) == list(range(len(costs)))
    loads = [sum(costs[i] for i in b) for b in bins]
    assert max(loads) - min(loads) <= 2.0  # LPT: 9+4=13 / 7+5+1=13 / 6+5=11
    assert lpt_assign([1.0, 1.0], 5)[2:] == [[], [], []]  # more workers than tasks: empty bins


@pytest.mark.slow
def test_mt10_synchronous_workers_give_the_in_process_transitions() -> None:
    cfg = EnvConfig(benchmark="mt10", goals="conditioned", horizon=15)
    ref = MetaWorldMultiTaskEnv(cfg, seed=5, stream=0)
    env = make_env(EnvConfig(**{**cfg.__dict__, "workers": 2}), seed=5, stream=0)
    try:
        assert isinstance(env, SubprocMultiTaskEnv)
        assert len(env.assignment) == 2
        assert sorted(i for b in env.assignment for i in b) == list(range(10))
        assert (env.num_envs, env.num_tasks, env.obs_dim, env.act_dim) == (10, 10, 39, 4)
        assert np.array_equal(env.reset(), ref.reset())
        rng = np.random.default_rng(0)
        for i in range(40):  # two truncations and conditioned resets on the way
            action = rng.uniform(-1.5, 1.5, (10, 4)).astype(np.float32)
            if i % 2:
                a = ref.step(action)
                env.step_async(action)
                b = env.step_wait()
            else:
                a, b = ref.step(action), env.step(action)
            for field in a._fields:
                assert np.array_equal(getattr(a, field), getattr(b, field)), (i, field)
        assert np.array_equal(np.concatenate(env.current_configs()),
                              np.concatenate(ref.current_configs()))  # fmt: skip
        # RNG state in task order, interchangeable with the in-process vector's
        state = env.get_state()
        assert [s["np_random"] for s in state] == [s["np_random"] for s in get_env_state(ref)]
        first = env.reset()
        env.set_state(state)
        assert np.array_equal(env.reset(), first)  # the same conditioned draws again
        assert env.fault_counts.sum() == 0
    finally:
        env.close()
        ref.close()


@pytest.mark.slow
def test_an_instability_is_reset_and_counted_the_same_in_process_and_in_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import metaworld.env_dict as env_dict

    import softmod.envs.metaworld_env as mw

    drawer = env_dict.ALL_V3_ENVIRONMENTS["drawer-close-v3"]

    def bad_qacc_count(env) -> int:  # "MuJoCo reset itself" at the 7th step of every episode
        return int(isinstance(env, drawer) and env.curr_path_length >= 7)

    monkeypatch.setattr(mw, "_bad_qacc_count", bad_qacc_count)  # forked workers inherit it
    cfg = EnvConfig(benchmark="mt10", horizon=15)
    ref = MetaWorldMultiTaskEnv(cfg, seed=1)
    env = SubprocMultiTaskEnv(cfg, 1, workers=2, start_method="fork", timeout_s=30.0)
    try:
        assert np.array_equal(env.reset(), ref.reset())
        rng, faults = np.random.default_rng(1), 0
        for i in range(20):
            action = rng.uniform(-1, 1, (10, 4)).astype(np.float32)
            a, b = ref.step(action), env.step(action)
            for field in a._fields:
                assert np.array_equal(getattr(a, field), getattr(b, field)), (i, field)
            faults += a.fault is not None
        assert faults == 2 and ref.faults == 2  # at steps 7 and 14 (after the reset at 7)
        drawer_row = ref.task_names.index("drawer-close-v3")
        assert env.fault_counts.tolist() == [2 * (k == drawer_row) for k in range(10)]
    finally:
        env.close()
        ref.close()


FAULT = 0.125  # an action whose first component is exactly this raises in the patched env


@pytest.fixture()
def reach(monkeypatch: pytest.MonkeyPatch) -> SubprocMultiTaskEnv:
    import metaworld.env_dict as env_dict

    cls = env_dict.ALL_V3_ENVIRONMENTS["reach-v3"]
    original = cls.step

    def faulty_step(self, action):
        if action[0] == FAULT:
            raise RuntimeError("injected fault")
        return original(self, action)

    monkeypatch.setattr(cls, "step", faulty_step)  # forked workers inherit the patch
    env = SubprocMultiTaskEnv(EnvConfig(benchmark="mt1", task="reach-v3"), 0, workers=1,
                              start_method="fork", timeout_s=10.0)  # fmt: skip
    yield env
    env.close()


def test_a_faulty_env_is_reset_and_counted(reach: SubprocMultiTaskEnv) -> None:
    obs = reach.reset()
    res = reach.step(np.full((1, 4), FAULT, np.float32))
    assert reach.fault_counts.tolist() == [1]
    assert np.array_equal(res.final_obs, obs)  # the observation the action was taken in
    assert res.truncated.tolist() == [True] and res.reward.tolist() == [0.0]
    assert np.isfinite(res.obs).all() and np.isfinite(res.final_obs).all()
    res = reach.step(np.zeros((1, 4), np.float32))
    assert np.isfinite(res.obs).all() and reach.fault_counts.tolist() == [1]


def test_a_dead_worker_raises_instead_of_hanging(reach: SubprocMultiTaskEnv) -> None:
    reach.reset()
    os.kill(reach._procs[0].pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(EnvWorkerError, match="died"):
        reach.step(np.zeros((1, 4), np.float32))
    assert time.monotonic() - start < 5.0


@pytest.mark.slow
def test_training_with_overlapped_workers(tmp_path) -> None:
    from softmod.config import MLPNetConfig, RunConfig, SACConfig
    from softmod.loop import train

    env = EnvConfig(benchmark="mt1", task="reach-v3", horizon=10, workers=1, async_step=True)
    cfg = RunConfig(env=env, sac=SACConfig(batch_per_task=4, warmup_per_task=5),
                    policy_net=MLPNetConfig(hidden=(16,)), q_net=MLPNetConfig(hidden=(16,)),
                    total_steps=30, eval_interval=30, eval_episodes=1, log_interval=10,
                    device="cpu")  # fmt: skip
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.env_steps == 30 and result.updates == 30 - 5  # the first 5 steps: warm-up


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_process_group_stops_a_worker_run_cleanly(tmp_path, sig, code) -> None:
    """Ctrl-C and job managers signal the whole group, workers included: the run still writes
    its checkpoint and exits 130/143 instead of reporting a dead worker (signalled while the
    workers step: the warm-up lasts the whole run)."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "OMP_NUM_THREADS": "1", "COLUMNS": "500"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "softmod", "train", "--benchmark", "mt1", "--task", "reach-v3",
         "--workers", "1", "--total-steps", "100000", "--warmup-per-task", "90000",
         "--batch-per-task", "8", "--log-interval", "20", "--horizon", "20", "--threads", "1",
         "--device", "cpu", "--no-progress", "--run-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    end = time.monotonic() + 120
    while not (run / "train.csv").exists() or len((run / "train.csv").read_text().split()) < 2:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, "no training row in time"
        time.sleep(0.1)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(sig).name} at step" in err
    assert "died" not in err
    assert list((run / "checkpoints").glob("step-*.pt"))
