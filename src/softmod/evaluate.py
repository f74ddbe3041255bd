"""Success-rate evaluation as in the paper (§5.2): deterministic actions, success at any step.

:func:`evaluate` runs a policy on a vector environment (training uses it for the periodic
evaluations); :func:`evaluate_run` is the paper's final protocol on a saved run (``softmod eval``):
100 deterministic episodes per task, an episode succeeding if the success flag is 1 at any step,
written as per-task JSON by :func:`write_eval_json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from softmod.envs import MultiTaskVecEnv
from softmod.nets import TanhGaussianPolicy

PAPER_EPISODES = 100  # episodes per task per seed for the final numbers (paper §5.2)
FINAL_EVAL_STREAM = 2  # environment RNG stream of `softmod eval` (0: training, 1: periodic evals)


@dataclass(frozen=True)
class EvalResult:
    """Per-task success rate and mean return over ``episodes`` episodes per task."""

    task_names: list[str]
    success: np.ndarray  # (T,) in [0, 1]
    returns: np.ndarray  # (T,)
    episodes: int

    @property
    def mean_success(self) -> float:
        """Success rate averaged over tasks (the paper's headline number)."""
        return float(self.success.mean())

    def metrics(self) -> dict[str, float]:
        """Flat ``eval/…`` metrics for the logs."""
        out = {
            "eval/mean_success": self.mean_success,
            "eval/mean_return": float(self.returns.mean()),
        }
        for i, name in enumerate(self.task_names):
            out[f"eval/{name}/success"] = float(self.success[i])
            out[f"eval/{name}/return"] = float(self.returns[i])
        return out

    def to_json(self) -> dict:
        """JSON-ready per-task results (success rate, successful episodes, mean return)."""
        return {
            "episodes_per_task": self.episodes,
            "mean_success": self.mean_success,
            "tasks": {
                name: {
                    "success": float(self.success[i]),
                    "successes": round(float(self.success[i]) * self.episodes),
                    "return": float(self.returns[i]),
                }
                for i, name in enumerate(self.task_names)
            },
        }


@torch.no_grad()
def evaluate(
    policy: TanhGaussianPolicy,
    env: MultiTaskVecEnv,
    episodes: int,
    device: torch.device,
) -> EvalResult:
    """Run ``episodes`` deterministic episodes in every task environment.

    An episode succeeds if the success flag is 1 at ANY of its steps. All environments share the
    horizon and start together, so episodes run in lock-step across tasks.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy.eval()
    n, t_count = env.num_envs, env.num_tasks
    task = torch.as_tensor(env.task_ids, device=device)
    wins = np.zeros(n)
    rets = np.zeros(n)
    obs = env.reset()
    for _ in range(episodes):
        hit = np.zeros(n, bool)
        ret = np.zeros(n)
        for _ in range(env.horizon):
            act = policy.act(torch.as_tensor(obs, device=device), task, deterministic=True)
            res = env.step(act.cpu().numpy())
            hit |= res.success > 0
            ret += res.reward
            obs = res.obs
        wins += hit
        rets += ret
    policy.train()
    per_task = np.bincount(env.task_ids, minlength=t_count) * episodes
    success = np.bincount(env.task_ids, weights=wins, minlength=t_count) / per_task
    returns = np.bincount(env.task_ids, weights=rets, minlength=t_count) / per_task
    return EvalResult(list(env.task_names), success, returns, episodes)


def eval_json_path(
    run_dir: Path, episodes: int, checkpoint: str = "final.pt", horizon: int | None = None
) -> Path:
    """Where ``softmod eval`` writes its results by default: ``RUN_DIR/eval_<episodes>ep.json`` for
    the final weights, ``RUN_DIR/eval_<episodes>ep_<checkpoint stem>.json`` for any other
    checkpoint (``eval_100ep_step-000000500000.json``), so that evaluating an earlier checkpoint
    never replaces the final numbers; ``horizon`` (an episode length other than the run's) adds
    ``_h<horizon>`` (``eval_100ep_h150.json``), which ``softmod report`` does not take for the
    run's own numbers."""
    stem = "" if checkpoint == "final.pt" else f"_{Path(checkpoint).stem}"
    length = "" if horizon is None else f"_h{horizon}"
    return Path(run_dir) / f"eval_{episodes}ep{stem}{length}.json"


def evaluate_run(
    run_dir: Path,
    episodes: int = PAPER_EPISODES,
    device: torch.device | None = None,
    checkpoint: str = "final.pt",
    seed: int | None = None,
    precision: str | None = None,
    horizon: int | None = None,
) -> tuple[dict, EvalResult]:
    """The paper's final evaluation of a saved run: deterministic actions, ``episodes`` per task,
    success at any step, on environments of their own RNG stream (fresh conditioned goals; the
    fixed goals are the run's own, since they depend on the seed only).

    Returns the protocol description (for the JSON) and the result; ``seed`` defaults to the run's,
    ``precision`` (of acting: fp32 | bf16) to the run's, ``horizon`` (steps per episode) to the
    run's. Meta-World's observation holds no time, so a run trained on 500-step episodes and
    evaluated with ``horizon=150`` acts exactly as in the first 150 steps of its own episodes:
    its success within 150 steps, the paper's protocol.
    """
    from softmod.checkpoint import checkpoint_step, load_agent
    from softmod.envs import make_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    device = device or torch.device("cpu")
    cfg, agent = load_agent(run_dir, device, checkpoint)
    seed = cfg.seed if seed is None else seed
    if precision is not None:
        agent.policy.precision = precision
    trained_horizon = cfg.env.horizon
    env_cfg = cfg.env if horizon is None else replace(cfg.env, horizon=horizon)
    env = make_env(env_cfg, seed, stream=FINAL_EVAL_STREAM)
    try:
        result = evaluate(agent.policy, env, episodes, device)
    finally:
        env.close()
    protocol = {
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "step": checkpoint_step(run_dir, checkpoint),  # final.pt moves on when a run is extended
        "method": cfg.method,
        "benchmark": cfg.env.benchmark,
        "goals": cfg.env.goals,
        "horizon": env_cfg.horizon,
        "train_horizon": trained_horizon,
        "seed": seed,
        "precision": agent.policy.precision,
        "actions": "deterministic (tanh of the mean)",
        "success": "success flag 1 at any step of the episode",
    }
    return protocol, result


def write_eval_json(path: Path, protocol: dict, result: EvalResult) -> None:
    """Write the protocol and the per-task results as indented JSON (to a temporary name, then
    renamed: an existing file is replaced whole or not at all)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({**protocol, **result.to_json()}, indent=2) + "\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


FINAL_EVAL = "final_eval.json"


def write_final_eval(run_dir: Path, step: int, result: EvalResult) -> None:
    """``RUN_DIR/final_eval.json``: the last evaluation of training and the step it was taken at;
    a failed write (a full disk) is a one-line CheckpointWriteError."""
    from softmod.checkpoint import CheckpointWriteError

    try:
        write_eval_json(Path(run_dir) / FINAL_EVAL, {"step": step}, result)
    except OSError as err:
        raise CheckpointWriteError(
            f"cannot write {FINAL_EVAL} to {run_dir}: {err.strerror or err}; the earlier "
            f"checkpoints are intact"
        ) from None


def archive_final_evals(run_dir: Path, step: int) -> list[Path]:
    """Before a run finished at ``step`` is trained further (``--resume`` with a larger budget):
    rename ``softmod eval``'s evaluations of its final weights, ``eval_<N>ep.json``, to the names
    of an evaluation of that step, ``eval_<N>ep_step-<step>.json`` (``softmod report --at step``
    reads them there), so that the next final evaluation neither replaces them nor is shadowed
    by them. A file written without a step gets ``step`` (final.pt was saved there). Returns the
    new paths."""
    from softmod.checkpoint import step_checkpoint_name

    moved = []
    for path in sorted(Path(run_dir).glob("eval_*ep.json")):
        try:
            data = json.loads(path.read_text())
            episodes = int(data["episodes_per_task"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not softmod eval's file: left as it is
        if data.get("checkpoint", "final.pt") != "final.pt" or data.get("step", step) != step:
            continue
        target = eval_json_path(run_dir, episodes, step_checkpoint_name(step))
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps({**data, "step": step}, indent=2) + "\n")
        tmp.replace(target)
        path.unlink()
        moved.append(target)
    return moved


def final_eval_step(run_dir: Path) -> int | None:
    """The step of a run's ``final_eval.json`` (None: none, unreadable, or written without one)."""
    try:
        step = json.loads((Path(run_dir) / FINAL_EVAL).read_text()).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return step if isinstance(step, int) else None
