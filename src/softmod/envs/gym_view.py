"""One task of a softmod benchmark as a ``gymnasium.Env`` (issue 22), for users' own loops.

:class:`TaskEnv` wraps the project's vector env restricted to one task (a Meta-World vector built
with ``indices=[task]``, seeded exactly as that task's row of the full vector, so the fixed goal is
the run's; the toy vector whole, reading its row), so the episodes are the same as that row's of
:func:`softmod.make_env`. Gymnasium's conventions:

- ``step`` returns ``(obs, reward, terminated, truncated, info)``; ``terminated`` is always False
  (Meta-World has no terminals), ``truncated`` is True at the horizon, ``info["success"]`` is the
  step's success flag. At the horizon the vector env has already started the next episode: ``obs``
  is the episode's real last observation and the following ``reset()`` returns the new episode's
  first observation (without drawing a second configuration).
- ``reset(seed=s)`` rebuilds the env with softmod seed ``s`` (the fixed goals depend on it), so two
  resets with the same seed start identically; ``reset()`` continues the env's RNG stream.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from softmod.config import EnvConfig
from softmod.envs.base import MultiTaskVecEnv


class TaskEnv(gymnasium.Env):
    """Task ``index`` of the benchmark ``cfg``, as a gymnasium environment (float32 Boxes)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}  # noqa: RUF012 - gymnasium's

    def __init__(
        self,
        cfg: EnvConfig,
        index: int,
        seed: int = 0,
        stream: int = 0,
        render_mode: str | None = None,
        camera: str = "corner",
        size: tuple[int, int] = (480, 480),
    ) -> None:
        from softmod.envs import task_names

        self.cfg, self.index, self.stream = cfg, index, stream
        self.render_mode = render_mode
        self._render = (camera, int(size[0]), int(size[1])) if render_mode else None
        self.task_name: str = task_names(cfg)[index]
        """The task's name, e.g. ``reach-v3``."""
        self.vec: MultiTaskVecEnv = self._build(seed)
        self.observation_space = _observation_space(self.vec)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (self.vec.act_dim,), np.float32)
        self._pending: np.ndarray | None = None  # first obs of an episode the vector auto-reset

    def _build(self, seed: int) -> MultiTaskVecEnv:
        if self.cfg.benchmark == "toy":
            from softmod.envs.toy import ToyMultiTaskEnv

            c = self.cfg
            self._row = self.index
            return ToyMultiTaskEnv(c.toy_tasks, c.horizon, c.goals, seed, self.stream)
        from softmod.envs.metaworld_env import MetaWorldMultiTaskEnv

        self._row = 0
        vec = MetaWorldMultiTaskEnv(self.cfg, seed, self.stream, [self.index], self._render)
        if self._render is not None:
            check_camera(vec.envs[0], self._render[0])
        return vec

    @property
    def horizon(self) -> int:
        """Steps per episode (the episode is truncated after them)."""
        return self.vec.horizon

    def _info(self) -> dict[str, Any]:
        return {"task": self.task_name, "task_id": self.index}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` rebuilds the env with that softmod seed first."""
        super().reset(seed=seed)
        if seed is not None:
            self.vec.close()
            self.vec = self._build(int(seed))
            self._pending = None
        if self._pending is not None:
            obs, self._pending = self._pending, None
        else:
            obs = self.vec.reset()[self._row]
        return obs.copy(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one action in [-1, 1] (clipped)."""
        actions = np.zeros((self.vec.num_envs, self.vec.act_dim), np.float32)
        actions[self._row] = np.asarray(action, np.float32).reshape(self.vec.act_dim)
        res = self.vec.step(actions)
        r = self._row
        truncated = bool(res.truncated[r])
        self._pending = res.obs[r].copy() if truncated else None
        obs = res.final_obs[r] if truncated else res.obs[r]
        info = {**self._info(), "success": float(res.success[r])}
        if res.fault is not None and res.fault[r]:
            info["fault"] = True
        return obs.copy(), float(res.reward[r]), False, truncated, info

    def render(self) -> np.ndarray | None:
        """The camera image ``(height, width, 3)`` uint8 with ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return self.vec.render(self._row)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the simulator (and its renderer)."""
        self.vec.close()


def _observation_space(vec: MultiTaskVecEnv) -> gymnasium.spaces.Box:
    """Meta-World's own observation bounds (as float32); the toy's positions lie in [-1, 1]."""
    envs = getattr(vec, "envs", None)
    if envs:
        space = envs[0].observation_space
        low, high = space.low.astype(np.float32), space.high.astype(np.float32)
        return gymnasium.spaces.Box(low, high, dtype=np.float32)
    return gymnasium.spaces.Box(-1.0, 1.0, (vec.obs_dim,), np.float32)


def check_camera(env: Any, camera: str) -> None:
    """A camera name of the Meta-World env's model; else a ConfigError listing the cameras."""
    import mujoco

    from softmod.validation import ConfigError

    model = env.model
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    if camera not in names:
        raise ConfigError(f"unknown camera {camera!r}; allowed: {', '.join(map(str, names))}")
