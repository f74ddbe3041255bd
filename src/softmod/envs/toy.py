"""A tiny multi-task point-mass environment, pure NumPy, for fast tests.

Each task t has its own goal on a circle of radius 0.6 at angle 2πt/T. The goal is NOT in the
observation (the observation is the 2-D position only), so the tasks conflict: from the same state,
different tasks need opposite actions, and only a task-conditioned policy can solve all of them.

- Dynamics: ``pos ← clip(pos + 0.1 · clip(a, -1, 1), -1, 1)``.
- Reward: ``5 · max(0, 1 - ||pos - goal||) + 5 · success``, in [0, 10] like Meta-World's shaped
  rewards (dense, with a bonus on success).
- Success: ``||pos - goal|| < 0.15`` at a step (an episode succeeds if it does at any step).
- ``fixed``: each task starts every episode from the same position (drawn once from the seed);
  ``conditioned``: a new start position at every reset, from the environment's seeded RNG.
- Faults: a row whose action is not finite (its position would go non-finite) is reset alone and
  flagged in ``StepResult.fault``, like a MuJoCo instability in a Meta-World env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from softmod.envs.base import MultiTaskVecEnv, StepResult

GOAL_RADIUS = 0.6
SUCCESS_RADIUS = 0.15
STEP_SIZE = 0.1


class ToyMultiTaskEnv(MultiTaskVecEnv):
    """T conflicting point-mass tasks, one environment per task, stepped as one NumPy vector."""

    def __init__(
        self,
        num_tasks: int = 4,
        horizon: int = 30,
        goals: str = "fixed",
        seed: int = 0,
        stream: int = 0,
    ) -> None:
        if num_tasks < 1:
            raise ValueError(f"toy num_tasks must be >= 1, got {num_tasks}")
        self.task_names = [f"toy-{t}" for t in range(num_tasks)]
        self.task_ids = np.arange(num_tasks, dtype=np.int64)
        self.obs_dim = 2
        self.act_dim = 2
        self.horizon = horizon
        self.goals = goals
        angles = 2 * np.pi * np.arange(num_tasks) / num_tasks
        self.goal = (GOAL_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)).astype(np.float32)
        # the fixed start positions depend on the seed only (identical for train and eval streams)
        self.fixed_start = (
            np.random.default_rng([seed, 0]).uniform(-0.3, 0.3, (num_tasks, 2)).astype(np.float32)
        )
        self.rng = np.random.default_rng([seed, 1 + stream])
        self.pos = np.zeros((num_tasks, 2), np.float32)
        self.t = np.zeros(num_tasks, np.int64)

    def _start(self, n: int) -> np.ndarray:
        if self.goals == "fixed":
            return self.fixed_start.copy()
        return self.rng.uniform(-0.3, 0.3, (n, 2)).astype(np.float32)

    def reset(self) -> np.ndarray:
        """Start a new episode in every task."""
        self.pos = self._start(self.num_envs)
        self.t[:] = 0
        return self.pos.copy()

    def get_state(self) -> dict[str, Any]:
        """The start-position RNG and the running episodes (positions, step counts)."""
        return {
            "rng": self.rng.bit_generator.state,
            "pos": torch.from_numpy(self.pos.copy()),
            "t": self.t.tolist(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`get_state` result."""
        self.rng.bit_generator.state = state["rng"]
        self.pos = state["pos"].numpy().astype(np.float32).copy()
        self.t = np.asarray(state["t"], np.int64)

    def step(self, actions: np.ndarray) -> StepResult:
        """Move every point mass; reset the ones that reached the horizon."""
        a = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)
        self.pos = np.clip(self.pos + STEP_SIZE * a, -1.0, 1.0)
        self.t += 1
        fault = ~np.isfinite(self.pos).all(axis=1)
        dist = np.linalg.norm(self.pos - self.goal, axis=1)
        success = (dist < SUCCESS_RADIUS).astype(np.float32)
        reward = (5.0 * np.maximum(0.0, 1.0 - dist) + 5.0 * success).astype(np.float32)
        if fault.any():  # a non-finite row: report it, zero its outputs, reset it below
            success[fault], reward[fault] = 0.0, 0.0
            self.pos[fault] = 0.0
        final_obs = self.pos.copy()
        truncated = (self.t >= self.horizon) | fault
        if truncated.any():
            start = self._start(self.num_envs)
            self.pos = np.where(truncated[:, None], start, self.pos)
            self.t[truncated] = 0
        return StepResult(
            obs=self.pos.copy(),
            reward=reward,
            terminated=np.zeros(self.num_envs, bool),
            truncated=truncated,
            success=success,
            final_obs=final_obs,
            task_ids=self.task_ids,
            fault=np.asarray(fault) if fault.any() else None,
        )
