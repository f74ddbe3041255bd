"""softmod from Python (issue 22): :func:`train`, :func:`load` -> :class:`Policy`, :func:`make_env`.

Everything here is a thin face over the code the command line runs:

- :func:`train` resolves its options with :func:`softmod.resolve.resolve_config`, the resolver
  behind ``softmod train`` (presets included; no second set of defaults), and runs
  :func:`softmod.loop.train`;
- :func:`load` rebuilds a run's agent with :func:`softmod.checkpoint.load_agent` and keeps its
  policy; :meth:`Policy.act` calls the same ``TanhGaussianPolicy.act`` as
  :func:`softmod.evaluate.evaluate`, so its deterministic actions are the evaluation's;
- :func:`make_env` is :func:`softmod.envs.make_env` behind ``validation.validate_config``;
  :func:`make_task_env` is the gymnasium view of one task (``softmod/envs/gym_view.py``).

Bad arguments raise ``ConfigError`` (a ``ValueError``) or ``CheckpointError`` (a ``ValueError``)
whose one-line message names the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

    from softmod.config import RunConfig
    from softmod.envs.base import MultiTaskVecEnv
    from softmod.envs.gym_view import TaskEnv

TaskSpec = int | str | Sequence[int] | Sequence[str] | np.ndarray


# ----------------------------------------------------------------------------------- train
def train(
    config_or_options: RunConfig | Mapping[str, Any] | None = None,
    run_dir: str | Path | None = None,
    *,
    preset: str | None = None,
    progress: bool = True,
    wandb: str | None = None,
    **options: Any,
) -> Path:
    """Train one multi-task SAC agent and return its run directory.

    ``config_or_options``: a resolved :class:`~softmod.config.RunConfig`, or a mapping of
    ``softmod train`` options by name (``{"benchmark": "mt10", "method": "soft-shallow",
    "total_steps": 2_000_000}``); options may also be given as keywords
    (``softmod.train(benchmark="toy", total_steps=2000)``; a keyword wins over the mapping) and
    ``preset`` names a row of the paper whose values fill the options not given. The options are
    resolved by :func:`softmod.resolve.resolve_config`, the command line's resolver: the same
    defaults, derived defaults and checks. ``run_dir``: where the run is written (it must not hold
    a run); default ``runs/<benchmark>-<goals>-<method>-s<seed>-<time>``. ``progress``: show the
    progress bar (on stderr). ``wandb``: also log to this Weights & Biases project (as
    ``softmod train --wandb``).

    Raises ``ConfigError`` (a ``ValueError``, one line) for a bad option, before any work.
    """
    from softmod.config import RunConfig
    from softmod.resolve import default_run_dir, resolve_config
    from softmod.validation import ConfigError, validate_config
    from softmod.wandb_log import check_wandb

    if isinstance(config_or_options, RunConfig):
        if preset is not None or options:
            raise ConfigError("give a RunConfig or options (a mapping, keywords, preset), not both")
        cfg = config_or_options
        validate_config(cfg)
    elif config_or_options is None or isinstance(config_or_options, Mapping):
        cfg = resolve_config(config_or_options, preset=preset, **options)
    else:
        raise ConfigError(
            f"softmod.train takes a RunConfig or a mapping of options, got "
            f"{type(config_or_options).__name__}"
        )
    check_wandb(wandb)  # before any work: a one-line install hint without the package
    from softmod.loop import train as train_run

    out = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    return train_run(cfg, out, progress=progress, wandb_project=wandb).run_dir


# ----------------------------------------------------------------------------------- policy
class Routing(NamedTuple):
    """Routing probabilities of a soft-modular policy (NumPy, float32).

    ``layers[l]``: ``(B, n, n)``, row ``j`` = the weights with which module ``j`` of layer
    ``l + 2`` mixes the ``n`` modules of layer ``l + 1`` (each row sums to 1); ``final``:
    ``(B, n)``, the weights of the last layer's modules (sums to 1). For one observation the
    leading ``B`` is dropped.
    """

    layers: tuple[np.ndarray, ...]
    final: np.ndarray


class Policy:
    """A trained run's policy: NumPy in, NumPy out. Build it with :func:`softmod.load`."""

    def __init__(
        self, config: RunConfig, policy: Any, task_names: list[str], obs_dim: int, device: Any
    ) -> None:
        self.config = config
        self.task_names: list[str] = list(task_names)
        """The run's tasks, in task-index order."""
        self.device = device
        self._policy = policy.eval()
        self.act_dim: int = int(policy.act_dim)
        """Action size (4 on Meta-World, 2 on the toy benchmark)."""
        self.obs_dim: int = int(obs_dim)
        """Observation size (39 on Meta-World, 2 on the toy benchmark)."""

    @property
    def has_routing(self) -> bool:
        """Whether the policy's network computes routing probabilities (the network protocol's
        ``TaskNetwork.has_routing``: the soft-modular networks)."""
        return bool(self._policy.net.has_routing)

    @property
    def method(self) -> str:
        """The run's method (network), e.g. ``soft-shallow``."""
        return self.config.method

    def __repr__(self) -> str:
        e = self.config.env
        return (
            f"Policy({self.method} on {e.benchmark}-{e.goals}, {len(self.task_names)} tasks, "
            f"obs {self.obs_dim}, act {self.act_dim}, device {self.device})"
        )

    def _inputs(self, obs: Any, task: TaskSpec) -> tuple[Any, Any, bool]:
        """Checked ``(obs (B, D), task (B,))`` tensors and whether one row was given."""
        import torch

        arr = np.asarray(obs, dtype=np.float32)
        one = arr.ndim == 1
        if one:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs has shape {tuple(np.shape(obs))}; allowed: ({self.obs_dim},) or "
                f"(B, {self.obs_dim})"
            )
        if not np.isfinite(arr).all():
            raise ValueError("obs holds non-finite values (nan or inf); allowed: finite numbers")
        ids = self._task_ids(task, arr.shape[0])
        dev = self.device
        return torch.as_tensor(arr, device=dev), torch.as_tensor(ids, device=dev), one

    def _task_ids(self, task: TaskSpec, rows: int) -> np.ndarray:
        names = self.task_names
        allowed = f"allowed: 0..{len(names) - 1} or a name ({', '.join(names)})"

        def one_id(t: Any) -> int:
            if isinstance(t, str):
                if t not in names:
                    raise ValueError(f"unknown task {t!r}; {allowed}")
                return names.index(t)
            if isinstance(t, bool) or not isinstance(t, int | np.integer):
                raise ValueError(f"task {t!r} is not a task index or name; {allowed}")
            if not 0 <= int(t) < len(names):
                raise ValueError(f"task {int(t)} is out of range; {allowed}")
            return int(t)

        if not isinstance(task, Sequence | np.ndarray) or isinstance(task, str):
            return np.full(rows, one_id(task), np.int64)
        seq = list(np.asarray(task).reshape(-1).tolist()) if isinstance(task, np.ndarray) else task
        if len(seq) != rows:
            raise ValueError(
                f"{len(seq)} tasks for {rows} observations; allowed: one task, or one per row"
            )
        return np.array([one_id(t) for t in seq], np.int64)

    def act(self, obs: Any, task: TaskSpec, deterministic: bool = True) -> np.ndarray:
        """Actions in [-1, 1] for observations ``obs`` (``(obs_dim,)`` or ``(B, obs_dim)``) of
        ``task`` (an index or a name, one for all rows or one per row): ``(act_dim,)`` or
        ``(B, act_dim)`` float32. ``deterministic``: ``tanh`` of the Gaussian's mean, exactly the
        evaluation's actions; else a sample (PyTorch's global RNG)."""
        obs_t, task_t, one = self._inputs(obs, task)
        out = self._policy.act(obs_t, task_t, deterministic=deterministic)
        actions = out.float().cpu().numpy()
        return actions[0] if one else actions

    def routing(self, obs: Any, task: TaskSpec) -> Routing:
        """The routing probabilities the policy computes for ``obs`` and ``task`` (arguments as
        in :meth:`act`); soft-modular policies only (:attr:`has_routing`, methods ``soft-*``):
        any other is a ``TypeError`` naming the method."""
        import torch

        if not self.has_routing:
            raise TypeError(
                f"method {self.method!r} has no routing network: routing probabilities exist "
                "only for soft-modular policies (methods soft-*)"
            )
        obs_t, task_t, one = self._inputs(obs, task)
        with torch.no_grad():
            probs = self._policy.routing(obs_t, task_t)
        pick = (lambda a: a[0]) if one else (lambda a: a)
        layers = tuple(pick(p[0].float().cpu().numpy()) for p in probs.layers)
        return Routing(layers, pick(probs.final[0].float().cpu().numpy()))


def load(
    run_dir: str | Path,
    checkpoint: str = "final.pt",
    device: str | torch.device = "cpu",
) -> Policy:
    """The policy of a run directory written by ``softmod train`` / :func:`softmod.train`.

    ``checkpoint``: a file of ``RUN_DIR/checkpoints`` (``final.pt``, ``best.pt`` or a full
    ``step-<S>.pt``); ``device``: ``cpu``, ``cuda``, ``auto`` or a ``torch.device``. A bad run
    directory or checkpoint name is a ``CheckpointError`` (a ``ValueError``) listing what exists.
    """
    import torch

    from softmod.checkpoint import load_agent
    from softmod.envs import task_names
    from softmod.loop import resolve_device
    from softmod.validation import check_device

    if not isinstance(device, torch.device):
        check_device(str(device), "device")
        device = resolve_device(str(device))
    cfg, agent = load_agent(Path(run_dir), device, checkpoint)
    return Policy(cfg, agent.policy, task_names(cfg.env), agent.obs_dim, device)


# ----------------------------------------------------------------------------------- envs
def _env_config(
    benchmark: str,
    goals: str,
    seed: int,
    task: str | None,
    horizon: int,
    reward_version: str,
    toy_tasks: int,
    workers: int = 0,
) -> tuple[Any, list[str]]:
    """A validated EnvConfig (the same checks as a run's) and its task names."""
    from softmod.config import EnvConfig, RunConfig
    from softmod.validation import ConfigError, validate_config

    env = EnvConfig(
        benchmark=benchmark,  # type: ignore[arg-type]
        task=task,
        goals=goals,  # type: ignore[arg-type]
        horizon=horizon,
        reward_version=reward_version,  # type: ignore[arg-type]
        toy_tasks=toy_tasks,
        workers=workers,
    )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed {seed!r} is not an integer")
    return env, validate_config(RunConfig(env=env, seed=int(seed)))


def make_env(
    benchmark: str = "mt10",
    goals: str = "fixed",
    seed: int = 0,
    *,
    task: str | None = None,
    horizon: int = 150,
    reward_version: str = "v2",
    toy_tasks: int = 4,
    workers: int = 0,
    stream: int = 0,
) -> MultiTaskVecEnv:
    """The project's vector environment: one environment per task, stepped together
    (``reset() -> (N, obs_dim)``, ``step(actions (N, act_dim)) -> StepResult``; an episode is
    truncated after ``horizon`` steps and reset by the env itself).

    ``benchmark``: toy | mt1 (with ``task``, e.g. ``reach-v3``) | mt10 | mt50; ``goals``: fixed |
    conditioned; ``seed``: the run seed (fixed goals depend on it alone: ``seed`` gives a run's
    own goals); ``stream``: the RNG stream (0 training, 1 periodic evaluation, 2 ``softmod eval``);
    ``workers``: Meta-World worker processes (0: in this process). Close it with ``env.close()``.
    """
    from softmod.envs import make_env as build
    from softmod.validation import ConfigError

    cfg, _ = _env_config(benchmark, goals, seed, task, horizon, reward_version, toy_tasks, workers)
    if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
        raise ConfigError(f"stream {stream!r} is not allowed; allowed: an integer >= 0")
    return build(cfg, int(seed), stream)


def make_task_env(
    benchmark: str,
    task: str | int,
    goals: str = "fixed",
    seed: int = 0,
    *,
    horizon: int = 150,
    reward_version: str = "v2",
    toy_tasks: int = 4,
    stream: int = 0,
    render_mode: str | None = None,
    camera: str = "corner",
    size: tuple[int, int] = (480, 480),
) -> TaskEnv:
    """One task of a benchmark as a ``gymnasium.Env`` (for your own loop): the same environment,
    goals and horizon as that task's row of :func:`make_env` with the same arguments.

    ``task``: a name (``reach-v3``, ``toy-2``) or an index into the benchmark's tasks; for mt1 the
    benchmark's task is ``task`` itself. ``render_mode="rgb_array"`` (Meta-World only) renders the
    ``camera`` view at ``size`` (width, height) offscreen; see the README for ``MUJOCO_GL``.
    """
    from softmod.envs.gym_view import TaskEnv
    from softmod.validation import ConfigError

    mt1_task = task if benchmark == "mt1" and isinstance(task, str) else None
    cfg, names = _env_config(benchmark, goals, seed, mt1_task, horizon, reward_version, toy_tasks)
    allowed = f"allowed: 0..{len(names) - 1} or a name ({', '.join(names)})"
    if isinstance(task, str):
        if task not in names:
            raise ConfigError(f"unknown task {task!r} for {benchmark}; {allowed}")
        index = names.index(task)
    elif isinstance(task, int | np.integer) and not isinstance(task, bool):
        if not 0 <= int(task) < len(names):
            raise ConfigError(f"task {int(task)} is out of range for {benchmark}; {allowed}")
        index = int(task)
    else:
        raise ConfigError(f"task {task!r} is not a task name or index; {allowed}")
    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"render_mode {render_mode!r} is not allowed; allowed: None, 'rgb_array'")
    if render_mode is not None and benchmark == "toy":
        raise ConfigError("render_mode 'rgb_array' needs a Meta-World benchmark (mt1, mt10, mt50)")
    if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
        raise ConfigError(f"stream {stream!r} is not allowed; allowed: an integer >= 0")
    return TaskEnv(cfg, index, int(seed), stream, render_mode, camera, size)
