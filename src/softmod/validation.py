"""Checks of a run's options, done before any environment or network is built.

Each failure is a :class:`ConfigError` whose message is one line naming the bad value and what is
allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import get_args

from softmod.config import (
    MAX_HORIZON,
    BenchmarkName,
    GoalSetting,
    GradConfig,
    HardRoutingNetConfig,
    MixExpertNetConfig,
    NetworkConfig,
    NonFinitePolicy,
    RewardVersion,
    RunConfig,
    SoftModularNetConfig,
    network_types,
)
from softmod.envs import task_names


class ConfigError(ValueError):
    """A run option that is not allowed."""


MAX_TOTAL_STEPS = 10**12  # 1,000x the paper's largest budget (MT50, 100M); guards typos like 1e23
MAX_SEED = 2**63 - 1  # torch.manual_seed's range


def check_device(device: str, flag: str = "--device") -> None:
    """``auto``, ``cpu`` or ``cuda``; ``cuda`` needs a CUDA device on this machine."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown {flag} {device!r}; allowed: auto, cpu, cuda")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"{flag} cuda was asked for but no CUDA device is available; allowed here: "
                f"auto, cpu"
            )


def check_output_path(path: Path, flag: str, kind: str = "file") -> None:
    """An output ``--out`` must be creatable and writable, checked before any work: a ``file``
    must not be a directory, a ``dir`` must not be a file; its nearest existing parent writable."""
    if str(path) == "":
        raise ConfigError(f"{flag} is empty; give a path")
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a directory; give a file name")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} exists and is not a directory")
    parent = path if kind == "dir" and path.exists() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is not writable ({parent} is a file)")
    try:  # os.access is not enough: root, read-only or virtual file systems (/proc)
        if not os.access(parent, os.W_OK):
            raise OSError
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        raise ConfigError(f"{flag} {str(path)!r} is not writable") from None


def check_horizon(horizon: int) -> None:
    """An episode length (``--horizon`` of train and eval): 1..500, Meta-World's
    ``max_path_length``."""
    if not 1 <= horizon <= MAX_HORIZON:
        raise ConfigError(f"--horizon {horizon} is out of range; allowed: 1..{MAX_HORIZON}")


def validate_config(cfg: RunConfig) -> list[str]:
    """Validate every option; returns the selected task names (so no env is built to learn them)."""
    e, s = cfg.env, cfg.sac
    choices: list[tuple[str, str, tuple[str, ...]]] = [  # the config's Literal types (one place)
        ("benchmark", e.benchmark, get_args(BenchmarkName)),
        ("goals setting", e.goals, get_args(GoalSetting)),
        ("reward version", e.reward_version, get_args(RewardVersion)),
    ]
    for what, choice, options in choices:
        if choice not in options:
            raise ConfigError(f"unknown {what} {choice!r}; allowed: {', '.join(options)}")
    check_horizon(e.horizon)
    if e.task is not None and e.benchmark != "mt1":
        raise ConfigError(f"--task {e.task!r} is only allowed with --benchmark mt1")
    if e.benchmark == "toy" and e.toy_tasks < 1:
        raise ConfigError(f"--toy-tasks {e.toy_tasks} must be >= 1")
    if e.workers < 0:
        raise ConfigError(f"--workers {e.workers} is negative; allowed: 0 (in-process) or N >= 1")
    if e.async_step and e.workers < 1:
        raise ConfigError("--async-step needs env worker processes: add --workers N (N >= 1)")
    if e.workers > 0 and e.benchmark == "toy":
        raise ConfigError(f"--workers {e.workers}: the toy benchmark runs in-process; allowed: 0")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"--seed {cfg.seed} is out of range; allowed: 0..{MAX_SEED}")
    if cfg.torch_threads < 0:
        raise ConfigError(
            f"--threads {cfg.torch_threads} is negative; allowed: 0 (PyTorch's default) or N >= 1"
        )
    if cfg.total_steps > MAX_TOTAL_STEPS:
        raise ConfigError(
            f"--total-steps {cfg.total_steps:,} is too large; allowed: 1..{MAX_TOTAL_STEPS:,}"
        )
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
    need = max(s.batch_per_task, s.warmup_per_task)
    if s.buffer_per_task < need:  # a ring that never holds the warm-up never trains
        raise ConfigError(
            f"--buffer-per-task {s.buffer_per_task} is smaller than the warm-up "
            f"({s.warmup_per_task}) or the batch per task ({s.batch_per_task}); allowed: >= {need}"
        )
    for name, rate in [
        ("--lr-policy", s.lr_policy),
        ("--lr-q", s.lr_q),
        ("--lr-alpha", s.lr_alpha),
    ]:
        if not rate > 0:
            raise ConfigError(f"{name} must be positive, got {rate}")
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
    if cfg.on_nonfinite not in get_args(NonFinitePolicy):
        policies = ", ".join(get_args(NonFinitePolicy))
        raise ConfigError(f"unknown --on-nonfinite {cfg.on_nonfinite!r}; allowed: {policies}")
    from softmod.methods import METHODS

    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; allowed: {', '.join(METHODS)}")
    validate_network(cfg.policy_net, "policy")
    validate_network(cfg.q_net, "Q-function")
    check_device(cfg.device)
    try:
        names = task_names(e)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    validate_grad(cfg.grad, len(names))
    return names


def validate_grad(grad: GradConfig, num_tasks: int) -> None:
    """The gradient method's options (issue 21); a method other than plain needs >= 2 tasks."""
    from softmod.grad import GRAD_METHODS, grad_name

    if type(grad) not in GRAD_METHODS.values():
        raise ConfigError(
            f"unknown --grad {type(grad).__name__}; allowed: {', '.join(GRAD_METHODS)}"
        )
    name = grad_name(grad)
    if name != "plain" and num_tasks < 2:
        raise ConfigError(
            f"--grad {name} combines the gradients of several tasks, this benchmark has "
            f"{num_tasks}; allowed: --grad plain"
        )
    for f in dataclasses.fields(grad):
        value = getattr(grad, f.name)
        flag = f"--{name}-{f.name}"
        positive = f.name == "lr"
        if not (value > 0 if positive else value >= 0) or value != value:
            raise ConfigError(f"{flag} must be {'positive' if positive else '>= 0'}, got {value}")


def validate_network(net: NetworkConfig, which: str) -> None:
    """Layer and module counts and widths of a network config."""
    kind = type(net).__name__
    if network_types().get(kind) is not type(net):  # a config left out of the union
        allowed = ", ".join(network_types())
        raise ConfigError(
            f"{which} network config {kind} is not a NetworkConfig; allowed: {allowed}"
        )
    if isinstance(net, SoftModularNetConfig) and net.layers < 2:
        raise ConfigError(f"soft modularization needs L >= 2 module layers, got L={net.layers}")
    if isinstance(net, SoftModularNetConfig | HardRoutingNetConfig) and net.modules < 1:
        raise ConfigError(f"{kind} needs n >= 1 modules per layer, got n={net.modules}")
    if isinstance(net, HardRoutingNetConfig) and net.layers < 1:
        raise ConfigError(f"hard routing needs >= 1 module layer, got {net.layers}")
    if isinstance(net, MixExpertNetConfig) and net.experts < 1:
        raise ConfigError(f"mix-expert needs >= 1 expert, got {net.experts}")
    _validate_new_network(net, which)
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
        from softmod.checkpoint import step_checkpoints

        if step_checkpoints(run_dir / "checkpoints"):
            way_out = f"continue it with softmod train --resume {run_dir}"
        else:
            way_out = f"it stopped before its first checkpoint: remove it (rm -r {run_dir})"
        raise ConfigError(
            f"run directory {str(run_dir)!r} already holds a run; {way_out}, or choose another "
            f"--run-dir"
        )
    check_output_path(run_dir, "run directory", "dir")


def _validate_new_network(net: NetworkConfig, which: str) -> None:
    """MOORE, PaCo and CARE (issue 20): expert / parameter-set counts and their options."""
    from softmod.config import CARENetConfig, MOORENetConfig, PaCoNetConfig

    if isinstance(net, MOORENetConfig | CARENetConfig) and net.experts < 1:
        raise ConfigError(
            f"{which} network {type(net).__name__} needs >= 1 expert, got {net.experts}"
        )
    if isinstance(net, PaCoNetConfig):
        from softmod.nets.paco import RESETS

        if net.param_sets < 1:
            raise ConfigError(f"PaCo needs >= 1 parameter set, got {net.param_sets}")
        if net.reset not in RESETS:
            raise ConfigError(f"unknown PaCo reset {net.reset!r}; allowed: {', '.join(RESETS)}")
        if not net.mask_threshold >= 0:
            raise ConfigError(
                f"PaCo mask_threshold must be >= 0 (0: off), got {net.mask_threshold}"
            )
    if isinstance(net, CARENetConfig) and not net.temperature > 0:
        raise ConfigError(f"CARE attention temperature must be > 0, got {net.temperature}")
