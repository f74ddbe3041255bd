"""End-to-end training speed: the loop of ``softmod.train`` (act, step, store, sample, update),
without logging or evaluation, timed after a short random warm-up.

Reports environment steps per second and the share of wall time spent outside
``agent.update(replay.sample(...))``. With ``overlap`` the env workers step while the update runs
(``step_async`` / ``step_wait``, as ``EnvConfig.async_step`` does in training).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from softmod.bench.updates import make_agent
from softmod.buffer import MultiTaskReplay
from softmod.config import BenchmarkName, EnvConfig
from softmod.envs import make_env

if TYPE_CHECKING:
    from softmod.envs.subproc import SubprocMultiTaskEnv


def bench_training(
    benchmark: str = "mt10",
    method: str = "soft-shallow",
    iterations: int = 30,
    workers: int = 2,
    overlap: bool = False,
    warmup_per_task: int = 150,
    per_task: int = 128,
    precision: str = "fp32",
) -> dict[str, float]:
    """Run ``iterations`` training iterations (one vector step + one update each) and time them."""
    device = torch.device("cpu")
    env = make_env(EnvConfig(benchmark=cast(BenchmarkName, benchmark), workers=workers), seed=0)
    try:
        n = env.num_envs
        agent = make_agent(method, env.num_tasks, device, precision)
        replay = MultiTaskReplay(env.num_tasks, 10_000, env.obs_dim, env.act_dim, device)
        task_ids = torch.as_tensor(env.task_ids)
        rng = np.random.default_rng(0)
        obs = env.reset()
        for _ in range(warmup_per_task):  # random warm-up, not timed
            action = rng.uniform(-1, 1, (n, env.act_dim)).astype(np.float32)
            res = env.step(action)
            replay.add(res.task_ids, obs, action, res.reward, res.final_obs, res.terminated)
            obs = res.obs
        batch_size = per_task * env.num_tasks
        agent.update(replay.sample(batch_size))  # first update outside the timing
        in_update = 0.0
        start = time.perf_counter()
        for _ in range(iterations):
            action = agent.policy.act(torch.as_tensor(obs), task_ids, deterministic=False).numpy()
            if overlap:
                workers_env = cast("SubprocMultiTaskEnv", env)  # overlap needs workers
                workers_env.step_async(action)
                t0 = time.perf_counter()
                agent.update(replay.sample(batch_size))
                in_update += time.perf_counter() - t0
                res = workers_env.step_wait()
            else:
                res = env.step(action)
            replay.add(res.task_ids, obs, action, res.reward, res.final_obs, res.terminated)
            obs = res.obs
            if not overlap:
                t0 = time.perf_counter()
                agent.update(replay.sample(batch_size))
                in_update += time.perf_counter() - t0
        wall = time.perf_counter() - start
    finally:
        env.close()
    return {
        "env_steps_per_s": iterations * n / wall,
        "ms_per_iteration": 1e3 * wall / iterations,
        "outside_update_share": 1.0 - in_update / wall,
    }
