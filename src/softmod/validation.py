"""Checks of a run's options, done before any environment or network is built.

Each failure is a :class:`ConfigError` whose message is one line naming the bad value and what is
allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from softmod.config import (
    MAX_HORIZON,
    HardRoutingNetConfig,
    MixExpertNetConfig,
    NetworkConfig,
    RunConfig,
    SoftModularNetConfig,
)
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
    for name, value in [
        ("--checkpoint-interval", cfg.checkpoint_interval),
        ("--keep-checkpoints", cfg.keep_checkpoints),
    ]:
        if value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    from softmod.precision import PRECISIONS

    if cfg.precision not in PRECISIONS:
        raise ConfigError(
            f"unknown --precision {cfg.precision!r}; allowed: {', '.join(PRECISIONS)}"
        )
    if cfg.on_nonfinite not in ("stop", "skip"):
        raise ConfigError(f"unknown --on-nonfinite {cfg.on_nonfinite!r}; allowed: stop, skip")
    from softmod.methods import METHODS

    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; allowed: {', '.join(METHODS)}")
    validate_network(cfg.policy_net, "policy")
    validate_network(cfg.q_net, "Q-function")
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


def validate_network(net: NetworkConfig, which: str) -> None:
    """Layer and module counts and widths of a network config."""
    kind = type(net).__name__
    if isinstance(net, SoftModularNetConfig) and net.layers < 2:
        raise ConfigError(f"soft modularization needs L >= 2 module layers, got L={net.layers}")
    if isinstance(net, SoftModularNetConfig | HardRoutingNetConfig) and net.modules < 1:
        raise ConfigError(f"{kind} needs n >= 1 modules per layer, got n={net.modules}")
    if isinstance(net, HardRoutingNetConfig) and net.layers < 1:
        raise ConfigError(f"hard routing needs >= 1 module layer, got {net.layers}")
    if isinstance(net, MixExpertNetConfig) and net.experts < 1:
        raise ConfigError(f"mix-expert needs >= 1 expert, got {net.experts}")
    for f in dataclasses.fields(net):
        value = getattr(net, f.name)
        sizes = value if isinstance(value, tuple) else (value,)
        if f.name.endswith(("hidden", "_dim")) and any(int(v) < 1 for v in sizes):
            raise ConfigError(f"{which} network {kind}.{f.name} must be positive, got {value}")


def batch_per_task_of(batch_size: int, num_tasks: int) -> int:
    """Rows per task of a total batch, which must be a positive multiple of the task count."""
    if batch_size < 1 or batch_size % num_tasks:
        raise ConfigError(
            f"--batch-size {batch_size} is not a positive multiple of the task count "
            f"{num_tasks}; allowed: {num_tasks}, {2 * num_tasks}, ..."
        )
    return batch_size // num_tasks


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
    if not parent.is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} is not writable ({parent} is a file)")
    try:  # os.access is not enough: root, read-only file systems
        if not os.access(parent, os.W_OK):
            raise OSError
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        raise ConfigError(f"run directory {str(run_dir)!r} is not writable") from None
