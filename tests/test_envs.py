"""Benchmarks: the toy environment and real Meta-World v3 in the fixed and conditioned settings."""

from __future__ import annotations

import numpy as np
import pytest

from softmod.config import EnvConfig
from softmod.envs import ToyMultiTaskEnv, make_env, task_names
from softmod.envs.toy import GOAL_RADIUS

# its module-scoped fixture is built once: under pytest-xdist the module stays on one worker
pytestmark = pytest.mark.xdist_group("test_envs")

MT10 = [
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
]  # fmt: skip


# ----------------------------------------------------------------------------- toy
def _oracle(env: ToyMultiTaskEnv, obs: np.ndarray) -> np.ndarray:
    return np.clip((env.goal - obs) / 0.1, -1, 1)


def test_toy_tasks_conflict_and_goals_are_hidden() -> None:
    env = ToyMultiTaskEnv(num_tasks=4, horizon=30, seed=0)
    assert env.obs_dim == 2  # position only: the goal is not observed
    # opposite goals: from the same state, tasks 0 and 2 need opposite actions
    assert np.allclose(env.goal[0], -env.goal[2], atol=1e-6)
    assert np.allclose(np.linalg.norm(env.goal, axis=1), GOAL_RADIUS)


def test_toy_task_conditioned_oracle_succeeds_and_a_shared_policy_cannot() -> None:
    env = ToyMultiTaskEnv(num_tasks=4, horizon=30, seed=0)
    obs = env.reset()
    hit = np.zeros(4, bool)
    for _ in range(30):
        res = env.step(_oracle(env, obs))
        hit |= res.success > 0
        obs = res.obs
    assert hit.all()
    assert res.truncated.all()  # the horizon ends every episode
    # one action for all tasks (a policy blind to the task) reaches at most one goal
    env.reset()
    hit = np.zeros(4, bool)
    for _ in range(30):
        res = env.step(np.tile(_oracle(env, env.pos)[:1], (4, 1)))
        hit |= res.success > 0
    assert hit.sum() <= 1


def test_toy_fixed_vs_conditioned_starts() -> None:
    fixed = ToyMultiTaskEnv(4, 5, "fixed", seed=3)
    assert np.array_equal(fixed.reset(), fixed.reset())
    cond = ToyMultiTaskEnv(4, 5, "conditioned", seed=3)
    assert not np.array_equal(cond.reset(), cond.reset())
    again = ToyMultiTaskEnv(4, 5, "conditioned", seed=3)
    assert np.array_equal(ToyMultiTaskEnv(4, 5, "conditioned", seed=3).reset(), again.reset())


def test_toy_truncation_returns_the_real_final_observation() -> None:
    env = ToyMultiTaskEnv(2, horizon=3, seed=0)
    obs = env.reset()
    for _ in range(3):
        res = env.step(np.ones((2, 2)))
    assert res.truncated.all() and not res.terminated.any()
    assert np.allclose(res.final_obs, np.clip(obs + 0.3, -1, 1), atol=1e-6)
    assert np.allclose(res.obs, env.fixed_start)  # auto-reset
    assert res.task_ids.tolist() == [0, 1]


# ----------------------------------------------------------------------------- Meta-World
def test_mt10_task_order_and_unknown_task_lists_valid_names() -> None:
    assert task_names(EnvConfig(benchmark="mt10")) == MT10
    assert len(task_names(EnvConfig(benchmark="mt50"))) == 50
    with pytest.raises(ValueError, match=r"unknown task 'reach-v9'; valid tasks: .*reach-v3"):
        task_names(EnvConfig(benchmark="mt1", task="reach-v9"))


@pytest.fixture(scope="module")
def mt10_fixed():
    env = make_env(EnvConfig(benchmark="mt10", goals="fixed", horizon=150), seed=1)
    yield env
    env.close()


def test_mt10_observations_carry_explicit_task_ids(mt10_fixed) -> None:
    obs = mt10_fixed.reset()
    assert obs.shape == (10, 39) and obs.dtype == np.float32
    res = mt10_fixed.step(np.zeros((10, 4)))
    assert res.task_ids.tolist() == list(range(10))
    assert res.success.shape == (10,) and set(np.unique(res.success)) <= {0.0, 1.0}


def test_mt10_fixed_configuration_is_identical_across_resets(mt10_fixed) -> None:
    first_obs = mt10_fixed.reset()
    first = mt10_fixed.current_configs()
    second_obs = mt10_fixed.reset()
    assert all(map(np.array_equal, first, mt10_fixed.current_configs()))
    assert np.allclose(first_obs[:, -3:], second_obs[:, -3:])  # goal part of the observation
    # the fixed configuration depends on the seed only: the evaluation stream sees the same one
    ev = make_env(EnvConfig(benchmark="mt10", goals="fixed"), seed=1, stream=1)
    ev.reset()
    assert all(map(np.array_equal, first, ev.current_configs()))
    ev.close()


def _configs_over_resets(seed: int, resets: int = 3) -> list[np.ndarray]:
    env = make_env(EnvConfig(benchmark="mt1", task="push-v3", goals="conditioned"), seed=seed)
    out = []
    for _ in range(resets):
        env.reset()
        out.append(env.current_configs()[0].copy())
    env.close()
    return out


def test_conditioned_configuration_changes_at_every_reset_reproducibly() -> None:
    a = _configs_over_resets(seed=11)
    assert not np.allclose(a[0], a[1]) and not np.allclose(a[1], a[2])
    b = _configs_over_resets(seed=11)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = _configs_over_resets(seed=12)
    assert not np.allclose(a[0], c[0])


def test_meta_world_horizon_truncates_and_resets() -> None:
    env = make_env(EnvConfig(benchmark="mt1", task="reach-v3", horizon=5), seed=0)
    env.reset()
    for i in range(5):
        res = env.step(np.full((1, 4), 0.5))
        assert bool(res.truncated[0]) == (i == 4)
    assert not np.array_equal(res.final_obs, res.obs)  # the real last obs vs the reset one
    for _ in range(5):  # a second episode runs (the env would raise past its max path length)
        res = env.step(np.zeros((1, 4)))
    assert res.truncated[0]
    env.close()


def test_horizon_above_500_is_refused() -> None:
    with pytest.raises(ValueError, match="horizon"):
        make_env(EnvConfig(benchmark="mt1", task="reach-v3", horizon=501), seed=0)
