"""Collection speed: softmod's environments against Meta-World's own async vector env.

Random actions, the same number of environments (one per task), the same horizon; the figure is
environment steps per second (one vector step of T envs = T environment steps). Construction and a
short warm-up are not timed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from softmod.config import EnvConfig


def _rate(step, num_envs: int, act_dim: int, steps: int, seed: int = 0) -> float:
    """Env-steps/s of ``step(actions)`` over ``steps`` vector steps (after 10 untimed ones)."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps + 10, num_envs, act_dim)).astype(np.float32)
    for a in actions[:10]:
        step(a)
    start = time.perf_counter()
    for a in actions[10:]:
        step(a)
    return steps * num_envs / (time.perf_counter() - start)


def softmod_rate(
    benchmark: str, steps: int, workers: int, horizon: int = 150, overlap: bool = False
) -> dict[str, float]:
    """softmod's vector env: ``workers = 0`` in-process, else subprocess workers.

    ``overlap`` times ``step_async`` + ``step_wait`` with nothing in between (the collection side
    of the overlapped mode; the same work as ``step``).
    """
    from softmod.envs import make_env

    t0 = time.perf_counter()
    env = make_env(EnvConfig(benchmark=benchmark, horizon=horizon, workers=workers), seed=0)
    build = time.perf_counter() - t0
    try:
        env.reset()
        rate = _rate(env.step, env.num_envs, env.act_dim, steps)
        rss = env_rss_bytes(env)
    finally:
        env.close()
    return {"env_steps_per_s": rate, "build_s": build, "env_rss_bytes": rss}


def gymnasium_async_rate(benchmark: str, steps: int, horizon: int = 150) -> dict[str, float]:
    """Meta-World's ``gymnasium.make_vec("Meta-World/MTxx", vector_strategy="async")``."""
    import gymnasium
    import metaworld  # noqa: F401 - registers the Meta-World ids

    t0 = time.perf_counter()
    env = gymnasium.make_vec(
        f"Meta-World/{benchmark.upper()}",
        vector_strategy="async",
        seed=0,
        max_episode_steps=horizon,
    )
    build = time.perf_counter() - t0
    try:
        env.reset(seed=0)
        n, act_dim = env.num_envs, env.single_action_space.shape[0]
        rate = _rate(lambda a: env.step(a), n, act_dim, steps)
    finally:
        env.close()
    return {"env_steps_per_s": rate, "build_s": build}


def env_rss_bytes(env: object) -> int:
    """Resident memory of the env's worker processes (0 for an in-process env: not separable)."""
    total = 0
    for proc in getattr(env, "_procs", []):
        status = Path(f"/proc/{proc.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def measure_task_costs(benchmark: str = "mt50", steps: int = 200) -> dict[str, float]:
    """Microseconds per step of each task's env, random actions (regenerates the cost table)."""
    from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv

    env = MetaWorldMultiTaskEnv(EnvConfig(benchmark=benchmark, horizon=500), seed=0)
    rng = np.random.default_rng(0)
    out = {}
    for name, e in zip(env.task_names, env.envs, strict=True):
        e.reset()
        acts = rng.uniform(-1, 1, (steps, env.act_dim)).astype(np.float32)
        start = time.perf_counter()
        for a in acts:
            e.step(a)
        out[name] = (time.perf_counter() - start) / steps * 1e6
    env.close()
    return out


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
