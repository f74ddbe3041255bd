"""The training loop: :meth:`Trainer.iteration` reads top to bottom.

One *vector step* steps every task's environment once (N = T environment steps) and is followed by
one gradient step (DESIGN §4: "1 gradient step per vector step"), once every task's ring holds the
warm-up amount. ``total_steps`` counts environment steps over all tasks, as the paper's "samples".

Around the loop, runs survive (``softmod/checkpoint.py``, ``softmod/runstate.py``): full checkpoints
every ``checkpoint_interval`` steps and at the end; :func:`resume` continues bit-identically on CPU;
SIGINT / SIGTERM stop after the current vector step with a checkpoint (:class:`RunInterrupted`); a
non-finite loss, Q-value, gradient or parameter stops the run (:class:`DivergenceError`) or skips
the update (``on_nonfinite="skip"``); a dead environment worker (``EnvWorkerError``) stops it with
a checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from rich.console import Console

from softmod.buffer import Batch, MultiTaskReplay
from softmod.checkpoint import CheckpointWriteError, save_weights, write_checkpoint
from softmod.config import RunConfig, to_dict
from softmod.envs import make_env
from softmod.envs.base import EnvWorkerError, MultiTaskVecEnv
from softmod.evaluate import EvalResult, evaluate, write_final_eval
from softmod.loopstate import LoopState
from softmod.precision import check_precision
from softmod.progress import TrainProgress
from softmod.runlog import RunLogger
from softmod.runstate import (
    capture_rng,
    first_nonfinite_parameter,
    learner_state,
    load_learner_state,
    restore_rng,
)
from softmod.sac.agent import MultiTaskSAC
from softmod.sac.graphed import update_fn
from softmod.sac.losses import balance_weights
from softmod.training_support import (
    DivergenceError,
    RunInterrupted,
    SkipGuard,
    SkippedUpdate,
    stop_requests,
)

if TYPE_CHECKING:
    from softmod.envs.subproc import SubprocMultiTaskEnv

TRAIN_STREAM, EVAL_STREAM = 0, 1  # environment RNG streams (fixed goals are shared by both)
MAX_CONSECUTIVE_SKIPS = 100  # on_nonfinite="skip": give up after this many bad updates in a row
MAX_PRINTED_EVENTS = 20  # faults / skipped updates printed one by one, then every 100th

__all__ = ["DivergenceError", "RunInterrupted", "TrainResult", "Trainer", "train"]


@dataclass(frozen=True)
class TrainResult:
    """What a finished run returns (everything is also in the run directory)."""

    run_dir: Path
    env_steps: int
    updates: int
    wall_s: float
    final_eval: EvalResult
    parameter_counts: dict[str, int]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _crossed(step: int, stride: int, interval: int) -> bool:
    """Whether the last ``stride`` steps ending at ``step`` crossed a multiple of ``interval``."""
    return step // interval > (step - stride) // interval


def _env_state(env: MultiTaskVecEnv) -> dict[str, Any] | None:
    """The env's state, or None (a resumed run then restarts the episodes): a dead worker, or an
    env class without ``get_state``, or one whose state is not exact (subprocess workers)."""
    if not getattr(env, "exact_state", True):
        return None
    try:
        return env.get_state()
    except (EnvWorkerError, NotImplementedError):
        return None


class Trainer:
    """A run's live state (envs, agent, replay, logger, counters) and the loop that advances it.

    Built fresh, or from a full checkpoint (``state``, ``replay``) for an exact resume.
    """

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        names: list[str],
        console: Console,
        state: dict[str, Any] | None = None,
        replay: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.console = cfg, Path(run_dir), console
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.device = device = resolve_device(cfg.device)
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        check_precision(cfg.precision, device, lambda msg: console.print(f"[yellow]warning: {msg}"))
        seed_everything(cfg.seed)
        self.env = make_env(cfg.env, cfg.seed, TRAIN_STREAM)
        self.eval_env = make_env(cfg.env, cfg.seed, EVAL_STREAM)
        self.n_envs, n_tasks = self.env.num_envs, self.env.num_tasks
        self.agent = MultiTaskSAC(cfg, self.env.obs_dim, self.env.act_dim, n_tasks, device)
        self.replay = MultiTaskReplay(
            n_tasks, cfg.sac.buffer_per_task, self.env.obs_dim, self.env.act_dim, device, cfg.seed
        )
        self.task_ids = torch.as_tensor(self.env.task_ids, device=device)
        self.batch_size = cfg.sac.batch_per_task * n_tasks
        self.total_iterations = math.ceil(cfg.total_steps / self.n_envs)
        # --workers N --async-step: env stepping overlaps the gradient update (envs/subproc.py)
        self.overlap = cfg.env.async_step and hasattr(self.env, "step_async")
        self.skip_guard = SkipGuard(self.agent) if cfg.on_nonfinite == "skip" else None
        self.update_fn: Callable[[Batch], dict[str, torch.Tensor]] | None = None  # at 1st update
        self.consecutive_skips = 0  # not saved: a resumed run starts counting again
        self.last_checkpoint: Path | None = None
        self.loop: LoopState
        if state is None:
            self.loop = LoopState.fresh(self.env.reset(), cfg.seed)
        else:
            self._restore(state, replay or {})
        # the gradient method's metrics; per-task ones come from the update as <name>/<task index>
        grad = self.agent.grad
        self.metric_names = {
            f"{m}/{i}": f"{m}/{task}" for m in grad.task_metrics() for i, task in enumerate(names)
        }
        columns = grad.metrics() + list(self.metric_names.values())
        resume_step = None if state is None else self.step
        self.logger = RunLogger(self.run_dir, names, resume_step, columns)
        self.session_start = time.perf_counter()

    @classmethod
    def from_checkpoint(
        cls,
        cfg: RunConfig,
        run_dir: Path,
        names: list[str],
        console: Console,
        path: Path,
        state: dict[str, Any],
        replay: dict[str, Any],
    ) -> Trainer:
        """The trainer of a run continued from the full checkpoint ``path`` (loaded as ``state``,
        ``replay``); a checkpoint that does not fit the config is a CheckpointError."""
        from softmod.checkpoint import CheckpointError, load_file

        try:
            trainer = cls(cfg, run_dir, names, console, state, replay)
        except (KeyError, RuntimeError, ValueError) as err:  # shapes, missing entries
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"cannot restore {path}: {first}") from None
        trainer.last_checkpoint = path
        best = trainer.ckpt_dir / "best.pt"
        if best.exists():  # a best evaluation written after the checkpoint still counts
            try:
                saved = float(load_file(best)["success"])
                trainer.loop.best_success = max(trainer.loop.best_success, saved)
            except (CheckpointError, KeyError):
                pass
        return trainer

    @property
    def step(self) -> int:
        """Environment steps done."""
        return self.loop.it * self.n_envs

    def elapsed(self) -> float:
        """Training seconds over all sessions of the run."""
        return self.loop.elapsed + time.perf_counter() - self.session_start

    # ------------------------------------------------------------------------------ the loop
    def iteration(self) -> None:
        """One vector step, its replay rows and (after the warm-up) one gradient step."""
        env, replay, loop = self.env, self.replay, self.loop
        # act: uniform random actions until every task has its warm-up transitions
        if replay.min_size() < self.cfg.sac.warmup_per_task:
            action = loop.action_rng.uniform(-1.0, 1.0, (self.n_envs, env.act_dim))
            action = action.astype(np.float32)
        else:
            obs_t = torch.as_tensor(loop.obs, device=self.device)
            action = self.agent.policy.act(obs_t, self.task_ids, deterministic=False).cpu().numpy()
        if self.overlap:  # the workers step while the update runs; it samples the replay as it was
            workers_env = cast("SubprocMultiTaskEnv", env)  # the overlap needs worker processes
            workers_env.step_async(action)  # before this vector step's transitions (README)
            if replay.min_size() >= self.cfg.sac.warmup_per_task:
                self._update()
            res = workers_env.step_wait()
        else:
            res = env.step(action)
        # store the REAL next observation (final_obs), not the auto-reset one; a time-limit
        # truncation is stored as non-terminal so the Q target bootstraps through it. An env that
        # faulted was reset: its transition is dropped and its episode is not counted.
        ok = np.ones(self.n_envs, bool) if res.fault is None else ~res.fault
        replay.add(
            *(
                x[ok]
                for x in (res.task_ids, loop.obs, action, res.reward, res.final_obs, res.terminated)
            )
        )
        loop.ep_return += res.reward
        loop.ep_hit |= res.success > 0
        ended = res.truncated | res.terminated
        if ended.any():
            counted = ended & ok
            loop.done_returns.extend(loop.ep_return[counted].tolist())
            loop.done_success.extend(loop.ep_hit[counted].astype(float).tolist())
            loop.ep_return[ended], loop.ep_hit[ended] = 0.0, False
        if res.fault is not None:
            self._report_faults(res.fault)
        loop.obs = res.obs
        if not self.overlap and replay.min_size() >= self.cfg.sac.warmup_per_task:
            self._update()
        loop.it += 1

    def _update(self) -> None:
        batch = self.replay.sample(self.batch_size)
        if self.update_fn is None:  # on CUDA, graph-safe methods: one replayed CUDA graph
            warn = lambda msg: self.console.print(f"[yellow]warning: {msg}")  # noqa: E731
            use = self.cfg.cuda_graph and self.skip_guard is None
            self.update_fn = update_fn(self.agent, batch, use, warn)
        try:
            metrics = self.update_fn(batch)
        except SkippedUpdate as skip:
            self.loop.skipped += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                raise self._divergence(
                    f"{skip.quantity} in {MAX_CONSECUTIVE_SKIPS} updates in a row"
                ) from None
            if self.loop.skipped <= MAX_PRINTED_EVENTS or self.loop.skipped % 100 == 0:
                self.console.print(
                    f"[yellow]step {self.step + self.n_envs:,}: non-finite "
                    f"{skip.quantity}, update skipped ({self.loop.skipped} so far)"
                )
            return
        values = torch.stack(list(metrics.values()))
        finite = torch.isfinite(values)
        if not bool(finite.all()):  # one sync per update
            bad = int((~finite).nonzero()[0])
            name = list(metrics)[bad]
            raise self._divergence(f"{name} ({float(values[bad])})")
        self.consecutive_skips = 0
        for k, v in metrics.items():
            self.loop.sums[k] = self.loop.sums[k] + v if k in self.loop.sums else v
        self.loop.updates += 1
        self.loop.updates_since_log += 1

    def _divergence(self, what: str, step: int | None = None) -> DivergenceError:
        step = self.step + self.n_envs if step is None else step  # default: the step being done
        return DivergenceError(step, what, self.last_checkpoint, self.run_dir)

    def _report_faults(self, fault: np.ndarray) -> None:
        reasons = getattr(self.env, "fault_reasons", {})
        for i in np.flatnonzero(fault):
            self.loop.faults += 1
            if self.loop.faults <= MAX_PRINTED_EVENTS or self.loop.faults % 100 == 0:
                task = self.env.task_names[int(self.env.task_ids[i])]
                why = reasons.get(int(i), "fault")
                self.console.print(
                    f"[yellow]step {self.step + self.n_envs:,}: environment fault in {task} "
                    f"({why}); that environment was reset ({self.loop.faults} faults so far)"
                )

    def log_row(self) -> None:
        """One row of train.csv / TensorBoard: the means since the last row."""
        now, step = self.elapsed(), self.step
        row: dict[str, float] = {
            "time_s": now,
            "train/steps_per_s": (step - self.loop.last_log_step)
            / max(now - self.loop.last_log_elapsed, 1e-9),
            "train/updates": self.loop.updates,
            "env/faults": self.loop.faults,
            "train/skipped_updates": self.loop.skipped,
        }
        if self.loop.done_returns:
            row["train/episode_return"] = float(np.mean(self.loop.done_returns))
            row["train/episode_success"] = float(np.mean(self.loop.done_success))
        for k, v in self.loop.sums.items():
            row[self.metric_names.get(k, k)] = float(v) / max(self.loop.updates_since_log, 1)
        log_alpha, ones = self.agent.log_alpha.detach(), np.ones(len(self.logger.task_names))
        weights = balance_weights(log_alpha).cpu().numpy() if self.cfg.sac.balance else ones
        for i, name in enumerate(self.logger.task_names):
            row[f"alpha/{name}"] = float(log_alpha[i].exp())
            row[f"balance/{name}"] = float(weights[i])
        self.logger.log_train(step, row)
        self.loop.done_returns.clear()
        self.loop.done_success.clear()
        self.loop.sums, self.loop.updates_since_log = {}, 0
        self.loop.last_log_step, self.loop.last_log_elapsed = step, now

    def evaluate(self) -> EvalResult:
        """Periodic evaluation; a new best mean success writes ``checkpoints/best.pt``."""
        result = evaluate(self.agent.policy, self.eval_env, self.cfg.eval_episodes, self.device)
        self.logger.log_eval(self.step, {"time_s": self.elapsed(), **result.metrics()})
        self.loop.last_eval = result
        if result.mean_success > self.loop.best_success:
            try:
                save_weights(
                    self.agent, self.ckpt_dir / "best.pt", self.step, success=result.mean_success
                )
                self.loop.best_success = result.mean_success
            except CheckpointWriteError as err:  # a full disk: the earlier best.pt stays
                self.console.print(f"[red]warning: {err}")
        return result

    def warm(self) -> bool:
        """Whether every task's ring holds its warm-up transitions (gradient steps are done)."""
        return self.replay.min_size() >= self.cfg.sac.warmup_per_task

    def run(self, progress: bool = True, stop_at: int | None = None) -> TrainResult:
        """Train to ``total_steps``; ``stop_at``: stop as if interrupted after that many steps."""
        cfg, n = self.cfg, self.n_envs
        bar = TrainProgress(self.console, progress, self.total_iterations * n, self.step)
        try:
            with stop_requests() as stop, bar:
                while self.loop.it < self.total_iterations:
                    try:
                        was_warm = self.warm()
                        self.iteration()
                        step, last = self.step, self.loop.it == self.total_iterations
                        success = None
                        if _crossed(step, n, cfg.log_interval) or last:
                            self.log_row()
                        if _crossed(step, n, cfg.eval_interval) or last:
                            success = self.evaluate().mean_success
                    except EnvWorkerError as err:
                        path = self._saved_now() or self.save(envs=False)
                        raise EnvWorkerError(
                            f"{str(err).splitlines()[0]}; checkpoint at step {self.step:,} saved "
                            f"to {path} (its episodes restart); continue with softmod train "
                            f"--resume {self.run_dir}"
                        ) from None
                    if last:
                        self.save()
                    elif _crossed(step, n, cfg.checkpoint_interval) or self.warm() > was_warm:
                        # periodic, and once at the end of the warm-up (issue 16: with the
                        # default interval the first periodic one is hours away on MT10)
                        try:
                            self.save()
                        except CheckpointWriteError as err:  # try again at the next interval
                            self.console.print(f"[red]warning: {err}; retrying at the next one")
                    bar.update(step, self.warm(), success)
                    stopping = stop.signum is not None or (stop_at is not None and step >= stop_at)
                    if stopping and not last:
                        path = self._saved_now() or self.save()
                        raise RunInterrupted(step, path, self.run_dir, stop.signum)
            return self.finish()
        except CheckpointWriteError as err:  # the final save, or the one of a stop request
            raise CheckpointWriteError(
                f"{err}; free some space, then softmod train --resume {self.run_dir} continues "
                f"(and finishes) the run"
            ) from None
        finally:
            self.close()

    def _saved_now(self) -> Path | None:
        """The checkpoint of the current step, if one was written already."""
        last = self.last_checkpoint
        return last if last is not None and last.name == f"step-{self.step:012d}.pt" else None

    def finish(self) -> TrainResult:
        """Write final.pt and final_eval.json (with the step; ``--resume`` writes them if a run
        was killed after its last checkpoint); print the summary line."""
        loop = self.loop
        assert loop.last_eval is not None
        save_weights(self.agent, self.ckpt_dir / "final.pt", step=self.step)
        write_final_eval(self.run_dir, self.step, loop.last_eval)
        wall = self.elapsed()
        self.console.print(
            f"done: {self.step:,} env steps, {loop.updates:,} updates in {wall:.0f} s; final "
            f"success {loop.last_eval.mean_success:.1%} ({self.cfg.eval_episodes} episodes per "
            f"task); {loop.faults} environment faults, {loop.skipped} skipped updates"
        )
        counts = self.agent.parameter_counts()
        return TrainResult(self.run_dir, self.step, loop.updates, wall, loop.last_eval, counts)

    def close(self) -> None:
        """Close the logger and the environments."""
        self.logger.close()
        self.env.close()
        self.eval_env.close()

    # ------------------------------------------------------------------------- checkpoints
    def save(self, envs: bool = True) -> Path:
        """Write a full checkpoint of the current step (never one with non-finite weights)."""
        bad = first_nonfinite_parameter(self.agent)
        if bad is not None:
            raise self._divergence(f"parameter {bad}", self.step)
        state = {
            **learner_state(self.agent),
            "loop": self.loop.to_dict(self.elapsed()),
            "rng": capture_rng(),
            "env": _env_state(self.env) if envs else None,
            "eval_env": _env_state(self.eval_env) if envs else None,
            "config": to_dict(self.cfg),
        }
        path = write_checkpoint(
            self.ckpt_dir, self.step, state, self.replay.state_dict(), self.cfg.keep_checkpoints
        )
        self.last_checkpoint = path
        return path

    def _restore(self, state: dict[str, Any], replay: dict[str, Any]) -> None:
        load_learner_state(self.agent, state)
        self.replay.load_state_dict(replay)
        self.loop = LoopState.from_dict(
            state["loop"], list(self.env.task_names), self.cfg.seed, self.device
        )
        restore_rng(state["rng"])
        if state["env"] is None:  # saved after a worker died: the episodes start again
            self.loop.restart_episodes(self.env.reset())
        else:
            self.env.set_state(state["env"])
        if state["eval_env"] is not None:
            self.eval_env.set_state(state["eval_env"])


def train(
    cfg: RunConfig,
    run_dir: Path,
    progress: bool = True,
    console: Console | None = None,
    stop_at: int | None = None,
    wandb_project: str | None = None,
) -> TrainResult:
    """Train one multi-task SAC agent as ``cfg`` says; write everything under ``run_dir``.

    ``stop_at``: stop as a signal would after that many environment steps (a checkpoint, then
    :class:`RunInterrupted`); :func:`softmod.resume.resume` continues the run. ``wandb_project``:
    also log to Weights & Biases (``softmod/wandb_log.py``).
    """
    from softmod.config import save_config
    from softmod.training_support import hold_run_dir
    from softmod.validation import check_run_dir, validate_config
    from softmod.wandb_log import WandbSink, check_wandb

    check_wandb(wandb_project)

    console = console or Console(stderr=True)
    names = validate_config(cfg)  # every option checked before anything is built
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with hold_run_dir(run_dir):  # one process per run directory (training_support.py)
        save_config(cfg, run_dir / "config.json")
        trainer = Trainer(cfg, run_dir, names, console)
        counts = trainer.agent.parameter_counts()
        (run_dir / "params.json").write_text(json.dumps(counts, indent=2) + "\n")
        console.print(
            f"[bold]softmod[/] {cfg.method} on {cfg.env.benchmark}-{cfg.env.goals} "
            f"({trainer.env.num_tasks} tasks, horizon {cfg.env.horizon}), device {trainer.device}, "
            f"parameters: policy {counts['policy']:,}, Q-function {counts['q']:,} (x2) -> {run_dir}"
        )
        if wandb_project is None:
            return trainer.run(progress, stop_at)
        try:
            sink = WandbSink(wandb_project, cfg, run_dir)
        except BaseException:
            trainer.close()
            raise
        trainer.logger.sinks.append(sink)
        failed = True
        try:
            result = trainer.run(progress, stop_at)
            sink.final(result.final_eval)
            failed = False
            return result
        finally:
            sink.close(failed)
