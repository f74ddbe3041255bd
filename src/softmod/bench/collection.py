"""Collection speed: softmod's environments against Meta-World's own async vector env.

Random actions, the same number of environments (one per task), the same horizon; the figure is
environment steps per second (one vector step of T envs = T environment steps). Construction and a
short warm-up are not timed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast

import numpy as np

from softmod.config import BenchmarkName, EnvConfig


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by this process and the processes ``pids``."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def _rate(
    step, num_envs: int, act_dim: int, steps: int, pids: list[int], seed: int = 0
) -> dict[str, float]:
    """Env-steps per wall second and per CPU second (this process and ``pids``) over ``steps``
    vector steps, after 10 untimed ones. The CPU figure does not depend on how many other jobs
    share the machine; the wall figure does."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps + 10, num_envs, act_dim)).astype(np.float32)
    for a in actions[:10]:
        step(a)
    cpu0, start = cpu_seconds(pids), time.perf_counter()
    for a in actions[10:]:
        step(a)
    wall, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu0
    return {
        "env_steps_per_s": steps * num_envs / wall,
        "env_steps_per_cpu_s": steps * num_envs / max(cpu, 1e-9),
    }


def softmod_rate(
    benchmark: str, steps: int, workers: int, horizon: int = 150, overlap: bool = False
) -> dict[str, float]:
    """softmod's vector env: ``workers = 0`` in-process, else subprocess workers.

    ``overlap`` times ``step_async`` + ``step_wait`` with nothing in between (the collection side
    of the overlapped mode; the same work as ``step``).
    """
    from softmod.envs import make_env

    t0 = time.perf_counter()
    env_cfg = EnvConfig(benchmark=cast(BenchmarkName, benchmark), horizon=horizon, workers=workers)
    env = make_env(env_cfg, seed=0)
    build = time.perf_counter() - t0
    try:
        env.reset()
        pids = [p.pid for p in getattr(env, "_procs", [])]
        rate = _rate(env.step, env.num_envs, env.act_dim, steps, pids)
        rss = env_rss_bytes(env)
    finally:
        env.close()
    return {**rate, "build_s": build, "env_rss_bytes": rss, "processes": len(pids)}


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
        n, act_dim = env.num_envs, env.single_action_space.shape[0]  # type: ignore[index]
        pids = [p.pid for p in getattr(env, "processes", [])]
        rate = _rate(lambda a: env.step(a), n, act_dim, steps, pids)
    finally:
        env.close()
    return {**rate, "build_s": build, "processes": len(pids)}


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

    env_cfg = EnvConfig(benchmark=cast(BenchmarkName, benchmark), horizon=500)
    env = MetaWorldMultiTaskEnv(env_cfg, seed=0)
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
