"""The multi-task vector environment interface every benchmark implements."""

from __future__ import annotations

import abc
from typing import NamedTuple

import numpy as np


class StepResult(NamedTuple):
    """One step of all environments of a :class:`MultiTaskVecEnv` (arrays over environments)."""

    obs: np.ndarray  # (N, obs_dim) float32: observation to act on next (after auto-reset)
    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: a true terminal (never on Meta-World)
    truncated: np.ndarray  # (N,) bool: the horizon was reached; the env was reset
    success: np.ndarray  # (N,) float32: the success flag of this step (0/1)
    final_obs: np.ndarray  # (N, obs_dim) float32: the real next observation (before auto-reset)
    task_ids: np.ndarray  # (N,) int64: the task index of each environment


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (worker processes, simulators)."""
