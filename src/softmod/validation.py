"""Checks of a run's options, done before any environment or network is built.

Each failure is a :class:`ConfigError` whose message is one line naming the bad value and what is
allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path

from softmod.config import MAX_HORIZON, RunConfig
from softmod.envs import task_names


class ConfigError(ValueError):
    """A run option that is not allowed."""


def validate_config(cfg: RunConfig) -> list[str]:
    """Validate every option; returns the selected task names (so no env is built to learn them)."""
    e, s = cfg.env, cfg.sac
    if e.benchmark not in ("toy", "mt1", "mt10", "mt50"):
        raise ConfigError(f"unknown benchmark {e.benchmark!r}; allowed: toy, mt1, mt10, mt50")
    if e.goals not in ("fixed", "conditioned"):
        raise ConfigError(f"unknown goals setting {e.goals!r}; allowed: fixed, conditioned")
    if e.reward_version not in ("v1", "v2"):
        raise ConfigError(f"unknown reward version {e.reward_version!r}; allowed: v1, v2")
    if not 1 <= e.horizon <= MAX_HORIZON:
        raise ConfigError(f"--horizon {e.horizon} is out of range; allowed: 1..{MAX_HORIZON}")
    if e.task is not None and e.benchmark != "mt1":
        raise ConfigError(f"--task {e.task!r} is only allowed with --benchmark mt1")
    if e.benchmark == "toy" and e.toy_tasks < 1:
        raise ConfigError(f"--toy-tasks {e.toy_tasks} must be >= 1")
    for name, value in [
        ("--total-steps", cfg.total_steps),
        ("--eval-interval", cfg.eval_interval),
        ("--eval-episodes", cfg.eval_episodes),
        ("--log-interval", cfg.log_interval),
        ("--batch-per-task", s.batch_per_task),
        ("--buffer-per-task", s.buffer_per_task),
    ]:
        if value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    if s.warmup_per_task < 1:
        raise ConfigError(f"--warmup-per-task must be >= 1, got {s.warmup_per_task}")
    for name, value in [
        ("--lr-policy", s.lr_policy),
        ("--lr-q", s.lr_q),
        ("--lr-alpha", s.lr_alpha),
    ]:
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if not 0 < s.gamma <= 1:
        raise ConfigError(f"--gamma must be in (0, 1], got {s.gamma}")
    if not 0 < s.tau <= 1:
        raise ConfigError(f"--tau must be in (0, 1], got {s.tau}")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {cfg.device!r}; allowed: auto, cpu, cuda")
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA device is available")
    try:
        return task_names(e)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def check_run_dir(run_dir: Path) -> None:
    """The run directory must be new (or empty) and writable; a run is never overwritten."""
    if (run_dir / "config.json").exists():
        raise ConfigError(
            f"run directory {str(run_dir)!r} already holds a run; choose another --run-dir"
        )
    parent = run_dir if run_dir.exists() else run_dir.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} exists and is not a directory")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"run directory {str(run_dir)!r} is not writable")
