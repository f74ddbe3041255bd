"""End-to-end training speed: the loop of ``softmod.train`` (act, step, store, sample, update),
without logging or evaluation, timed after a short random warm-up.

Reports environment steps per second and the share of wall time spent outside
``agent.update(replay.sample(...))``. With ``overlap`` the env workers step while the update runs
(``step_async`` / ``step_wait``, as ``EnvConfig.async_step`` does in training). On CUDA the agent
and the replay live on the GPU and the update is training's (:func:`softmod.sac.graphed.update_fn`:
a replayed CUDA graph for the graph-safe methods); before 2026-12-04 this section ran on the CPU
whatever ``--device`` said.
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
    device: torch.device | None = None,
) -> dict[str, float | str]:
    """Run ``iterations`` training iterations (one vector step + one update each) on ``device``
    (default: the CPU) and time them."""
    from softmod.sac.graphed import update_fn

    device = device or torch.device("cpu")
    cuda = device.type == "cuda"
    env = make_env(EnvConfig(benchmark=cast(BenchmarkName, benchmark), workers=workers), seed=0)
    try:
        n = env.num_envs
        agent = make_agent(method, env.num_tasks, device, precision)
        replay = MultiTaskReplay(env.num_tasks, 10_000, env.obs_dim, env.act_dim, device)
        task_ids = torch.as_tensor(env.task_ids, device=device)
        rng = np.random.default_rng(0)
        obs = env.reset()
        for _ in range(warmup_per_task):  # random warm-up, not timed
            action = rng.uniform(-1, 1, (n, env.act_dim)).astype(np.float32)
            res = env.step(action)
            replay.add(res.task_ids, obs, action, res.reward, res.final_obs, res.terminated)
            obs = res.obs
        batch_size = per_task * env.num_tasks
        update = update_fn(agent, replay.sample(batch_size), True, _raise)
        update(replay.sample(batch_size))  # the first update (and any capture) outside the timing

        def timed_update() -> float:
            t0 = time.perf_counter()
            update(replay.sample(batch_size))
            if cuda:  # the replay returns before the GPU is done
                torch.cuda.synchronize(device)
            return time.perf_counter() - t0

        in_update = 0.0
        start = time.perf_counter()
        for _ in range(iterations):
            x = torch.as_tensor(obs, device=device)
            action = agent.policy.act(x, task_ids, deterministic=False).cpu().numpy()
            if overlap:
                workers_env = cast("SubprocMultiTaskEnv", env)  # overlap needs workers
                workers_env.step_async(action)
                in_update += timed_update()
                res = workers_env.step_wait()
            else:
                res = env.step(action)
            replay.add(res.task_ids, obs, action, res.reward, res.final_obs, res.terminated)
            obs = res.obs
            if not overlap:
                in_update += timed_update()
        wall = time.perf_counter() - start
    finally:
        env.close()
    return {
        "device": device.type,
        "env_steps_per_s": iterations * n / wall,
        "ms_per_iteration": 1e3 * wall / iterations,
        "outside_update_share": 1.0 - in_update / wall,
    }


def _raise(message: str) -> None:
    """A CUDA graph that cannot be used is an error here: the figure would be of another update."""
    raise RuntimeError(message)
