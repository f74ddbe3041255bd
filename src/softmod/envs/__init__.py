"""Benchmarks: Meta-World MT1 / MT10 / MT50 (fixed or conditioned) and a toy multi-task env."""

from __future__ import annotations

from softmod.config import MAX_HORIZON, EnvConfig
from softmod.envs.base import MultiTaskVecEnv, StepResult
from softmod.envs.toy import ToyMultiTaskEnv

__all__ = ["MultiTaskVecEnv", "StepResult", "ToyMultiTaskEnv", "make_env", "task_names"]


def task_names(cfg: EnvConfig) -> list[str]:
    """The task names a config selects, validated without building any environment."""
    if cfg.benchmark == "toy":
        return [f"toy-{t}" for t in range(cfg.toy_tasks)]
    from softmod.envs.metaworld_env import benchmark_task_names

    return benchmark_task_names(cfg)


def make_env(cfg: EnvConfig, seed: int, stream: int = 0) -> MultiTaskVecEnv:
    """Build the benchmark's vector of task environments.

    ``stream`` separates RNG streams: 0 for training, 1 for evaluation. Fixed configurations depend
    on ``seed`` only, so training and evaluation see the same fixed goals.

    Backend: ``cfg.workers == 0`` steps every env in this process; ``cfg.workers = N > 0`` runs the
    Meta-World tasks in N worker processes (:class:`~softmod.envs.subproc.SubprocMultiTaskEnv`,
    shared memory, same transitions). The toy benchmark always runs in-process.
    """
    if not 1 <= cfg.horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be in [1, {MAX_HORIZON}], got {cfg.horizon}")
    if cfg.benchmark == "toy":
        return ToyMultiTaskEnv(cfg.toy_tasks, cfg.horizon, cfg.goals, seed, stream)
    if cfg.workers < 0:
        raise ValueError(f"workers must be >= 0, got {cfg.workers}")
    if cfg.workers > 0:
        from softmod.envs.subproc import SubprocMultiTaskEnv

        return SubprocMultiTaskEnv(cfg, seed, stream, workers=cfg.workers)
    from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv

    return MetaWorldMultiTaskEnv(cfg, seed, stream)
