"""The multi-task vector environment interface every benchmark implements."""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import numpy as np


class EnvWorkerError(RuntimeError):
    """An environment worker process died or stopped answering.

    Vector envs that step their environments in other processes raise it (never hang); the training
    loop catches it, writes a checkpoint and stops with a one-line message.
    """


class StepResult(NamedTuple):
    """One step of all environments of a :class:`MultiTaskVecEnv` (arrays over environments)."""

    obs: np.ndarray  # (N, obs_dim) float32: observation to act on next (after auto-reset)
    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: a true terminal (never on Meta-World)
    truncated: np.ndarray  # (N,) bool: the horizon was reached; the env was reset
    success: np.ndarray  # (N,) float32: the success flag of this step (0/1)
    final_obs: np.ndarray  # (N, obs_dim) float32: the real next observation (before auto-reset)
    task_ids: np.ndarray  # (N,) int64: the task index of each environment
    # (N,) bool: this env raised or went non-finite (a MuJoCo instability); it was reset, ``obs`` is
    # its new first observation, ``truncated`` is set and the transition must not be learned from.
    # None: no fault in this step.
    fault: np.ndarray | None = None


class MultiTaskVecEnv(abc.ABC):
    """N environments (one per task for the multi-task benchmarks) stepped as one vector.

    The task index travels explicitly with every observation (``task_ids``); it is never hidden in
    the observation. Episodes end only at the horizon (``truncated``); the environment then resets
    itself and ``final_obs`` holds the observation that ended the episode, so that the learner can
    bootstrap through the time limit.
    """

    task_names: list[str]
    task_ids: np.ndarray
    obs_dim: int
    act_dim: int
    horizon: int

    @property
    def num_tasks(self) -> int:
        """Number of distinct tasks."""
        return len(self.task_names)

    @property
    def num_envs(self) -> int:
        """Number of environments stepped per vector step."""
        return len(self.task_ids)

    @abc.abstractmethod
    def reset(self) -> np.ndarray:
        """Start a new episode in every environment; returns observations (N, obs_dim)."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> StepResult:
        """Apply actions (N, act_dim) in [-1, 1]; environments at the horizon reset themselves."""

    def get_state(self) -> Any:
        """Everything needed to continue exactly where the envs are: every RNG state and the
        running episodes. Values are tensors, numbers, strings, None, or lists / tuples / dicts of
        them (a checkpoint loads them with ``torch.load(weights_only=True)``; no NumPy arrays).
        A worker-process env whose worker died raises :class:`EnvWorkerError`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_state()")

    def set_state(self, state: Any) -> None:
        """Restore a :meth:`get_state` result (the env was built with the same config and seed);
        the next :meth:`step` continues the saved episodes. Do not call :meth:`reset` after it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement set_state()")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (worker processes, simulators)."""
