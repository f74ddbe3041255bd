"""Meta-World v3 benchmarks (MT1, MT10, MT50) in the paper's two settings, fixed and conditioned.

Built directly on the `metaworld` package's environment classes and its ``Task`` mechanism:

- **fixed**: for each task one object/goal configuration (``rand_vec``) is drawn from the run seed
  and frozen with ``env.set_task`` (``_freeze_rand_vec = True``), so every reset of that task starts
  from the identical configuration. Training and evaluation use the same configuration.
- **conditioned**: ``_freeze_rand_vec = False`` and ``seeded_rand_vec = True`` after
  ``env.seed(s)``, so every reset draws a fresh configuration from the task's full random range,
  from the env's own seeded RNG (reproducible). Evaluation uses a separate RNG stream, so it sees
  fresh goals.

Departure from ``metaworld.MT10()``: that class draws 50 configurations per task with 50 resets each
(≈ 20 s for MT50) and we need at most one per task; we draw the configuration from the same range
(``env._random_reset_space``) with our own seeded generator instead. The goal is observable
(``partially_observable=False``), as in Meta-World's MT benchmarks.

The horizon (default 150, the paper's; at most 500, Meta-World's ``max_path_length``) is enforced
here: an episode is truncated after ``horizon`` steps and the env reset.

Faults: an exception in one env's ``step``, a non-finite observation or reward, or a MuJoCo
instability warning (``mjWARN_BADQACC``: MuJoCo reset the simulation itself) resets that env alone;
the step reports it in ``StepResult.fault`` and the run goes on.

Exact state (:meth:`MetaWorldMultiTaskEnv.get_state`): each env's RNG state just before its last
reset plus the actions since. Restoring resets the env from that RNG state and replays the actions;
MuJoCo is deterministic, so the simulator ends in the identical state (at most one horizon of
steps per env).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from softmod.config import MAX_HORIZON, EnvConfig
from softmod.envs.base import MultiTaskVecEnv, StepResult


def _env_dict():  # imported lazily: `import metaworld` costs ~1 s
    import metaworld.env_dict as env_dict

    return env_dict


def all_task_names() -> list[str]:
    """All 50 Meta-World v3 task names, in the package's order."""
    return list(_env_dict().ALL_V3_ENVIRONMENTS.keys())


def benchmark_task_names(cfg: EnvConfig) -> list[str]:
    """The task names of a Meta-World benchmark config; an unknown name raises ValueError."""
    d = _env_dict()
    if cfg.benchmark == "mt10":
        return list(d.MT10_V3.keys())
    if cfg.benchmark == "mt50":
        return list(d.MT50_V3.keys())
    if cfg.benchmark == "mt1":
        valid = all_task_names()
        if cfg.task is None:
            raise ValueError(f"--task is required for mt1; valid tasks: {', '.join(valid)}")
        if cfg.task not in valid:
            raise ValueError(f"unknown task {cfg.task!r}; valid tasks: {', '.join(valid)}")
        return [cfg.task]
    raise ValueError(f"not a Meta-World benchmark: {cfg.benchmark!r}")


def _seed_int(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1)[0])


def _bad_qacc_count(env: Any) -> int:
    """How often MuJoCo found this env's accelerations non-finite and reset it (a warning count)."""
    import mujoco

    return int(env.data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number)


def _task(task_cls: type, name: str, env_cls: type, rand_vec: np.ndarray) -> object:
    data = dict(rand_vec=rand_vec, env_cls=env_cls, partially_observable=False)
    return task_cls(env_name=name, data=pickle.dumps(data))


class MetaWorldMultiTaskEnv(MultiTaskVecEnv):
    """One Meta-World environment per task, stepped in this process as one vector."""

    def __init__(
        self,
        cfg: EnvConfig,
        seed: int,
        stream: int = 0,
        indices: Sequence[int] | None = None,
        render: tuple[str, int, int] | None = None,
    ) -> None:
        """Build the benchmark's envs; ``indices`` (subprocess workers) builds only those tasks,
        each seeded exactly as in the full vector, and ``task_ids`` lists them. ``render``:
        ``(camera, width, height)`` of :meth:`render` (offscreen ``rgb_array``; issue 22)."""
        from metaworld.types import Task

        if not 1 <= cfg.horizon <= MAX_HORIZON:
            raise ValueError(f"horizon must be in [1, {MAX_HORIZON}], got {cfg.horizon}")
        names = benchmark_task_names(cfg)
        classes = _env_dict().ALL_V3_ENVIRONMENTS
        self.task_names = names
        keep = range(len(names)) if indices is None else sorted(set(indices))
        self.task_ids = np.asarray(keep, dtype=np.int64)
        self.horizon = cfg.horizon
        self.goals = cfg.goals
        self.envs = []
        for i in self.task_ids.tolist():
            name = names[i]
            cls = classes[name]
            view = {}
            if render is not None:
                camera, width, height = render
                view = dict(render_mode="rgb_array", camera_name=camera, width=width, height=height)
            env = cls(reward_function_version=cfg.reward_version, **view)
            # The fixed configuration depends on (seed, task) only: the same for training and
            # evaluation. It is drawn by one seeded reset with the env's own sampler, so that
            # task-specific rejection rules (e.g. reach: goal far enough from the object) hold.
            env.set_task(_task(Task, name, cls, env._random_reset_space.low))
            env._freeze_rand_vec, env.seeded_rand_vec = False, True
            env.seed(_seed_int(seed, 0, i))
            env.reset()
            env.set_task(_task(Task, name, cls, np.array(env._last_rand_vec)))
            env.seed(_seed_int(seed, 1 + stream, i))  # Meta-World ignores reset(seed=...)
            if cfg.goals == "conditioned":
                env._freeze_rand_vec = False
                env.seeded_rand_vec = True
            self.envs.append(env)
        self.obs_dim = int(self.envs[0].observation_space.shape[0])
        self.act_dim = int(self.envs[0].action_space.shape[0])
        self.t = np.zeros(len(self.envs), np.int64)
        self._obs = np.zeros((len(self.envs), self.obs_dim), np.float32)
        self._rng_at_reset: list[dict | None] = [None] * len(self.envs)
        self._actions: list[list[np.ndarray]] = [[] for _ in self.envs]
        # called with an env's index just before the horizon resets it (issue 22: the video
        # renders the episode's last frame); None: nothing
        self.before_reset: Callable[[int], None] | None = None
        self.faults = 0  # environment faults so far (each reset its env)
        self.fault_reasons: dict[int, str] = {}  # env index -> what went wrong, last step only

    def _reset_one(self, i: int) -> np.ndarray:
        env = self.envs[i]
        self._rng_at_reset[i] = env.np_random.bit_generator.state
        self._actions[i] = []
        return env.reset()[0]

    def reset(self) -> np.ndarray:
        """Reset every task's environment."""
        for i in range(len(self.envs)):
            self._obs[i] = self._reset_one(i)
        self.t[:] = 0
        return self._obs.copy()

    def get_state(self) -> dict[str, Any]:
        """Per env: the RNG state before its last reset and the actions since (see module doc)."""
        return {
            "t": self.t.tolist(),
            "faults": self.faults,
            "envs": [
                {
                    "rng_at_reset": self._rng_at_reset[i],
                    "rng": env.np_random.bit_generator.state,
                    "actions": torch.as_tensor(np.array(self._actions[i], np.float32)).reshape(
                        -1, self.act_dim
                    ),
                }
                for i, env in enumerate(self.envs)
            ],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Reset each env from its saved RNG state and replay its saved actions."""
        if len(state["envs"]) != len(self.envs):
            raise ValueError(f"saved state holds {len(state['envs'])} envs, not {len(self.envs)}")
        for i, (env, saved) in enumerate(zip(self.envs, state["envs"], strict=True)):
            if saved["rng_at_reset"] is None:
                # never reset since it was built (e.g. the evaluation envs before the first
                # evaluation, issue 16): nothing to replay; only its RNG is restored
                env.np_random.bit_generator.state = saved["rng"]
                self._rng_at_reset[i], self._actions[i] = None, []
                continue
            env.np_random.bit_generator.state = saved["rng_at_reset"]
            self._obs[i] = self._reset_one(i)
            for a in saved["actions"].numpy():
                self._obs[i] = env.step(a)[0]
                self._actions[i].append(a.copy())
            if env.np_random.bit_generator.state != saved["rng"]:
                name = self.task_names[int(self.task_ids[i])]
                raise ValueError(f"env {name} did not replay to its saved RNG state")
        self.t = np.asarray(state["t"], np.int64)
        self.faults = int(state["faults"])

    def current_configs(self) -> list[np.ndarray]:
        """The object/goal configuration (``rand_vec``) each env is running now (sizes differ)."""
        return [np.array(env._last_rand_vec, np.float64) for env in self.envs]

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every task's env once; reset those that reached the horizon."""
        n = self.num_envs
        reward = np.zeros(n, np.float32)
        success = np.zeros(n, np.float32)
        final_obs = np.zeros((n, self.obs_dim), np.float32)
        actions = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)
        self.t += 1
        truncated = self.t >= self.horizon
        fault = np.zeros(n, bool)
        self.fault_reasons = {}
        for i, env in enumerate(self.envs):
            reason = None
            try:
                bad_qacc = _bad_qacc_count(env)
                obs, r, _, _, info = env.step(actions[i])
                if not (np.isfinite(obs).all() and np.isfinite(r)):
                    reason = "non-finite observation or reward"
                elif _bad_qacc_count(env) > bad_qacc:
                    reason = "MuJoCo instability (bad qacc: the simulator reset itself)"
            except Exception as err:  # one env's failure must not end the run
                reason = f"{type(err).__name__}: {err}"
            if reason is not None:
                fault[i], truncated[i] = True, True
                self.faults += 1
                self.fault_reasons[i] = reason
                final_obs[i] = self._obs[i]  # not learned from (the transition is dropped)
                self._obs[i] = self._reset_one(i)
                continue
            self._actions[i].append(actions[i].copy())
            final_obs[i] = obs
            reward[i] = r
            success[i] = float(info["success"])
            if truncated[i] and self.before_reset is not None:
                self.before_reset(i)
            self._obs[i] = self._reset_one(i) if truncated[i] else obs
        self.t[truncated] = 0
        return StepResult(
            obs=self._obs.copy(),
            reward=reward,
            terminated=np.zeros(n, bool),  # Meta-World has no true terminals
            truncated=truncated,
            success=success,
            final_obs=final_obs,
            task_ids=self.task_ids,
            fault=fault if fault.any() else None,
        )

    def render(self, i: int) -> np.ndarray:
        """The ``(height, width, 3)`` uint8 image of env ``i`` now (built with ``render``).

        Each env has its own offscreen OpenGL context, and gymnasium's renderer makes its context
        current only when it is created (or holds several viewers): rendering env ``i`` while the
        last-created context is current draws env ``i``'s scene with another context's uploaded
        meshes and textures, i.e. garbage. So env ``i``'s context is made current first (through
        gymnasium's ``MujocoRenderer._get_viewer``, which also creates the viewer on first use)."""
        env = self.envs[i]
        renderer = getattr(env, "mujoco_renderer", None)
        if renderer is not None and env.render_mode is not None:
            renderer._get_viewer(env.render_mode).make_context_current()
        return env.render()

    def close(self) -> None:
        """Close every simulator (and its offscreen renderer)."""
        for env in self.envs:
            env.close()
