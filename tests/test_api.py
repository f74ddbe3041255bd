"""The public Python API (issue 22): the README's "From Python" block runs as written, and
``softmod.train`` / ``load`` / ``Policy`` / ``make_env`` / ``make_task_env`` work as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import softmod
from softmod.checkpoint import CheckpointError
from softmod.evaluate import FINAL_EVAL_STREAM, evaluate_run
from softmod.validation import ConfigError

from .test_resume import small_config

# its module-scoped fixture is built once: under pytest-xdist the module stays on one worker
pytestmark = pytest.mark.xdist_group("test_api")

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small networks, few rows: one PyTorch thread (two spinning ones are ~4x slower here on a
    busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def readme_python_block() -> str:
    """The first ```python block of the README's "From Python" section."""
    text = README.read_text()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's From Python section has no python block"
    return blocks[0]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the README block as a user would: a fresh Python in a fresh directory (OpenMP threads
    waiting passively, as ``softmod`` sets them for the command line: on a busy 2-core machine
    spinning threads make this run ~5x slower). Its run directory, policy and printed line."""
    cwd = tmp_path_factory.mktemp("readme")
    code = readme_python_block() + "\nprint('RUN', run)\n"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = cwd / out.stdout.split("RUN ")[-1].strip()
    return {"run": run, "stdout": out.stdout, "policy": softmod.load(run)}


@pytest.mark.slow
def test_the_readme_block_runs_as_written(readme_run: dict[str, Any]) -> None:
    run = readme_run["run"]
    assert run.name == "toy-from-python"
    assert (run / "checkpoints" / "final.pt").is_file() and (run / "final_eval.json").is_file()
    assert re.search(r"^toy-2: success [01] at the last step$", readme_run["stdout"], re.M)


@pytest.mark.slow
def test_act_shapes_dtypes_and_rows(readme_run: dict[str, Any]) -> None:
    policy: softmod.Policy = readme_run["policy"]
    batch = np.random.default_rng(0).uniform(-1, 1, (7, 2))  # float64 in: float32 out
    out = policy.act(batch, 1)
    assert out.shape == (7, 2) and out.dtype == np.float32
    assert np.all(np.abs(out) <= 1)
    row = policy.act(batch[3], "toy-1")
    assert row.shape == (2,) and row.dtype == np.float32
    np.testing.assert_allclose(row, out[3], atol=1e-6)
    # per-row tasks: by index and by name, the same actions
    tasks = [0, 1, 2, 3, 0, 1, 2]
    names = [policy.task_names[t] for t in tasks]
    np.testing.assert_array_equal(policy.act(batch, tasks), policy.act(batch, names))
    np.testing.assert_array_equal(policy.act(batch, np.array(tasks)), policy.act(batch, names))
    # deterministic actions are a function of the inputs; samples are not
    np.testing.assert_array_equal(policy.act(batch, 1), out)
    assert not np.array_equal(policy.act(batch, 1, deterministic=False), out)
    # different tasks from the same state act differently (a task-conditioned policy)
    assert not np.array_equal(policy.act(batch, 0), policy.act(batch, 2))


@pytest.mark.slow
def test_deterministic_actions_are_the_evaluations(readme_run: dict[str, Any]) -> None:
    """Roll out Policy.act on make_env's final-evaluation stream: the same per-task success and
    returns as softmod eval's evaluate_run (bit-equal returns: the same actions)."""
    run = readme_run["run"]
    policy: softmod.Policy = readme_run["policy"]
    _, result = evaluate_run(run, episodes=2)
    env = softmod.make_env("toy", "fixed", seed=0, horizon=30, stream=FINAL_EVAL_STREAM)
    obs, returns, hits = env.reset(), np.zeros(4), np.zeros(4)
    for _ in range(2):
        hit = np.zeros(4, bool)
        for _ in range(env.horizon):
            step = env.step(policy.act(obs, env.task_ids))
            returns += step.reward
            hit |= step.success > 0
            obs = step.obs
        hits += hit
    env.close()
    np.testing.assert_array_equal(returns / 2, result.returns)
    np.testing.assert_array_equal(hits / 2, result.success)


@pytest.mark.slow
def test_routing_rows_are_probabilities(readme_run: dict[str, Any]) -> None:
    policy: softmod.Policy = readme_run["policy"]
    batch = np.random.default_rng(1).uniform(-1, 1, (5, 2)).astype(np.float32)
    assert policy.has_routing
    routing = policy.routing(batch, [0, 1, 2, 3, 0])
    assert len(routing.layers) == 1  # soft-shallow: L = 2 module layers, one P
    assert routing.layers[0].shape == (5, 2, 2) and routing.final.shape == (5, 2)
    np.testing.assert_allclose(routing.layers[0].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(routing.final.sum(-1), 1.0, atol=1e-5)
    assert (routing.final >= 0).all() and (routing.layers[0] >= 0).all()
    single = policy.routing(batch[0], 0)
    assert single.final.shape == (2,) and single.layers[0].shape == (2, 2)


@pytest.mark.slow
def test_bad_policy_arguments_name_the_value(readme_run: dict[str, Any]) -> None:
    policy: softmod.Policy = readme_run["policy"]
    cases = [
        (lambda: policy.act(np.zeros(3), 0), r"obs has shape \(3,\); allowed: \(2,\) or \(B, 2\)"),
        (lambda: policy.act(np.zeros((2, 2, 2)), 0), r"obs has shape \(2, 2, 2\)"),
        (lambda: policy.act(np.zeros(2), 4), r"task 4 is out of range; allowed: 0\.\.3"),
        (lambda: policy.act(np.zeros(2), "reach-v3"), r"unknown task 'reach-v3'; allowed"),
        (lambda: policy.act(np.zeros((3, 2)), [0, 1]), r"2 tasks for 3 observations"),
        (lambda: policy.act(np.zeros(2), 1.5), r"task 1\.5 is not a task index or name"),
        (lambda: policy.act([np.nan, 0.0], 0), r"non-finite"),
    ]
    for call, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.slow
def test_train_from_a_run_config_and_routing_of_a_plain_network(tmp_path: Path) -> None:
    run = softmod.train(small_config(total_steps=200, eval_interval=200), tmp_path / "mt-sac",
                        progress=False)  # fmt: skip
    assert run == tmp_path / "mt-sac" and (run / "checkpoints" / "final.pt").is_file()
    policy = softmod.load(run, "best.pt", device="auto")
    assert policy.method == "mt-sac" and policy.act(np.zeros(2), 0).shape == (2,)
    assert not policy.has_routing
    with pytest.raises(TypeError, match=r"method 'mt-sac' has no routing network: .* soft-modular"):
        policy.routing(np.zeros(2), 0)


def test_bad_train_load_and_env_arguments(tmp_path: Path) -> None:
    cases: list[tuple[Any, type, str]] = [
        (lambda: softmod.train({"benchmrk": "toy"}), ConfigError,
         r"unknown option --benchmrk; allowed: --preset, --benchmark"),
        (lambda: softmod.train(benchmark="toy", horizon="30"), ConfigError,
         r"--horizon '30' is not an integer"),
        (lambda: softmod.train(small_config(), preset="soft-shallow-mt10-fixed"), ConfigError,
         r"give a RunConfig or options"),
        (lambda: softmod.train({"benchmark": "toy", "horizon": 0}), ConfigError,
         r"--horizon 0 is out of range; allowed: 1\.\.500"),
        (lambda: softmod.train({"preset": "soft-shalow-mt10-fixed"}), ConfigError,
         r"unknown preset 'soft-shalow-mt10-fixed'; did you mean"),
        (lambda: softmod.train(42), ConfigError, r"RunConfig or a mapping of options, got int"),
        (lambda: softmod.load(tmp_path), CheckpointError, r"not a softmod run directory"),
        (lambda: softmod.load(tmp_path, device="gpu"), ConfigError,
         r"unknown device 'gpu'; allowed: auto, cpu, cuda"),
        (lambda: softmod.make_env("mt5"), ConfigError,
         r"unknown benchmark 'mt5'; allowed: toy, mt1, mt10, mt50"),
        (lambda: softmod.make_env("toy", "conditional"), ConfigError,
         r"unknown goals setting 'conditional'; allowed: fixed, conditioned"),
        (lambda: softmod.make_env("toy", seed=-1), ConfigError, r"--seed -1 is out of range"),
        (lambda: softmod.make_env("toy", stream=-1), ConfigError, r"stream -1 is not allowed"),
        (lambda: softmod.make_task_env("toy", "toy-9"), ConfigError,
         r"unknown task 'toy-9' for toy; allowed: 0\.\.3 or a name \(toy-0, toy-1"),
        (lambda: softmod.make_task_env("toy", 4), ConfigError, r"task 4 is out of range"),
        (lambda: softmod.make_task_env("toy", 0, render_mode="rgb_array"), ConfigError,
         r"needs a Meta-World benchmark"),
        (lambda: softmod.make_task_env("toy", 0, render_mode="human"), ConfigError,
         r"render_mode 'human' is not allowed; allowed: None, 'rgb_array'"),
    ]  # fmt: skip
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern) as err:
            call()
        assert "\n" not in str(err.value)


def test_a_bad_checkpoint_name_lists_the_saved_ones(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "final.pt").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"best\.pt not found; allowed: final\.pt"):
        softmod.load(tmp_path, "best.pt")


def test_task_env_is_a_gymnasium_env_with_the_vector_rows_episodes() -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    vec = softmod.make_env("toy", "conditioned", seed=3, horizon=5)
    task_env = softmod.make_task_env("toy", "toy-1", "conditioned", seed=3, horizon=5)
    assert isinstance(task_env, gymnasium.Env) and task_env.horizon == 5
    rng = np.random.default_rng(0)
    obs_v = vec.reset()
    obs, info = task_env.reset()
    assert info == {"task": "toy-1", "task_id": 1}
    np.testing.assert_array_equal(obs, obs_v[1])
    for episode in range(2):  # across the auto-reset: the same starts as the vector's row
        for t in range(5):
            a = rng.uniform(-1, 1, (4, 2)).astype(np.float32)
            res = vec.step(a)
            obs, reward, terminated, truncated, info = task_env.step(a[1])
            assert obs.dtype == np.float32 and task_env.observation_space.contains(obs)
            assert reward == res.reward[1] and info["success"] == res.success[1]
            assert not terminated and truncated == (t == 4)
            np.testing.assert_array_equal(obs, res.final_obs[1])
        obs, _ = task_env.reset()
        np.testing.assert_array_equal(obs, res.obs[1])
        assert episode in (0, 1)
    first, _ = task_env.reset(seed=7)
    again, _ = task_env.reset(seed=7)
    np.testing.assert_array_equal(first, again)
    check_env(task_env.unwrapped, skip_render_check=True)
    task_env.close()
    vec.close()


@pytest.mark.slow
def test_import_softmod_is_light_and_train_is_the_function() -> None:
    code = (
        "import sys, softmod\n"
        "assert 'torch' not in sys.modules and 'metaworld' not in sys.modules, 'heavy import'\n"
        "import softmod.loop\n"
        "assert callable(softmod.train) and softmod.train.__module__ == 'softmod.api'\n"
        "assert 'softmod.train' not in sys.modules\n"
        "print(sorted(softmod.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'load'" in out.stdout and "'make_task_env'" in out.stdout
