"""The ``softmod`` command line (tyro): ``softmod train``, ``softmod eval``, ``softmod params``.

Every option is a dataclass field whose docstring is its ``--help`` text.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from softmod.config import EnvConfig, RunConfig, SACConfig
from softmod.methods import METHODS, default_total_steps, get_method

MethodName = Literal[tuple(METHODS)]  # type: ignore[valid-type]


@dataclass
class TrainArgs:
    """Train one multi-task SAC agent on a benchmark and write a run directory."""

    benchmark: Literal["toy", "mt1", "mt10", "mt50"] = "mt10"
    """Benchmark: toy (pure-NumPy point masses, for tests), mt1 (one Meta-World task, see --task),
    mt10 or mt50."""
    task: str | None = None
    """Meta-World task for --benchmark mt1, e.g. reach-v3."""
    goals: Literal["fixed", "conditioned"] = "fixed"
    """fixed: one object/goal configuration per task for every episode; conditioned: a new one at
    every reset (the paper's MTxx-Fixed / MTxx-Conditioned)."""
    method: MethodName = "mt-sac"
    """Network (all methods share the same multi-task SAC)."""
    total_steps: int | None = None
    """Environment steps over all tasks (the paper's samples). Default: the paper's budget for the
    method (MT10 15-20M, MT50 50-100M), 100k for toy, 1M for mt1."""
    seed: int = 0
    """Seed of everything: networks, replay sampling, environment configurations."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when present, else the CPU."""
    run_dir: Path | None = None
    """Run directory (must not hold a run already).
    Default: runs/<benchmark>-<goals>-<method>-s<seed>-<time>."""
    horizon: int = 150
    """Episode length in steps (paper: 150; Meta-World's standard: 500, the maximum)."""
    reward_version: Literal["v1", "v2"] = "v2"
    """Meta-World reward functions."""
    eval_interval: int = 50_000
    """Environment steps between evaluations during training."""
    eval_episodes: int = 3
    """Deterministic episodes per task at each periodic evaluation."""
    log_interval: int = 5_000
    """Environment steps between rows of train.csv."""
    batch_per_task: int = 128
    """Rows per task in each stratified batch (batch = T x this; DESIGN: 128)."""
    buffer_per_task: int | None = None
    """Replay capacity per task. Default: 1e5 (MT10, toy), 2e5 (MT50), 1e6 (MT1)."""
    warmup_per_task: int = 4000
    """Random-action transitions per task before the first gradient step."""
    balance: bool | None = None
    """Task balance weights w = T softmax(-log alpha). Default: on for soft modularization only."""
    toy_tasks: int = 4
    """Number of tasks of the toy benchmark."""
    threads: int = 0
    """PyTorch CPU threads (0: PyTorch's default)."""
    progress: bool = True
    """Show a progress bar."""
    workers: int = 0
    """Meta-World env worker processes (0: every env in the training process; N: shared-memory
    workers, tasks balanced by step cost, the same transitions)."""
    async_step: bool = False
    """With --workers: step the envs while the update runs (the update does not see the newest
    vector step's transitions yet). Default: synchronous."""

    def to_config(self) -> RunConfig:
        """The resolved run config these options describe."""
        spec = get_method(self.method)
        buffer = self.buffer_per_task or {"mt50": 200_000, "mt1": 1_000_000}.get(
            self.benchmark, 100_000
        )
        return RunConfig(
            env=EnvConfig(
                benchmark=self.benchmark,
                task=self.task,
                goals=self.goals,
                horizon=self.horizon,
                reward_version=self.reward_version,
                toy_tasks=self.toy_tasks,
                workers=self.workers,
                async_step=self.async_step,
            ),
            sac=SACConfig(
                batch_per_task=self.batch_per_task,
                buffer_per_task=buffer,
                warmup_per_task=self.warmup_per_task,
                balance=spec.balance if self.balance is None else self.balance,
            ),
            policy_net=spec.network,
            q_net=spec.network,
            method=self.method,
            total_steps=self.total_steps or default_total_steps(self.method, self.benchmark),
            seed=self.seed,
            device=self.device,
            eval_interval=self.eval_interval,
            eval_episodes=self.eval_episodes,
            log_interval=self.log_interval,
            torch_threads=self.threads,
        )

    def resolved_run_dir(self) -> Path:
        """The run directory, defaulting to a new timestamped one under ``runs/``."""
        if self.run_dir is not None:
            return self.run_dir
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{self.benchmark}-{self.goals}-{self.method}-s{self.seed}-{stamp}"


@dataclass
class EvalArgs:
    """Evaluate a trained run: deterministic actions, success at any step, per task."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by softmod train."""
    episodes: int = 100
    """Episodes per task (paper: 100)."""
    checkpoint: str = "final.pt"
    """Checkpoint file under RUN_DIR/checkpoints."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when present, else the CPU."""
    out: Path | None = None
    """Where to write the JSON results. Default: RUN_DIR/eval_<episodes>ep.json."""
    seed: int | None = None
    """Evaluation seed (conditioned goals). Default: the run's seed."""


@dataclass
class ParamsArgs:
    """Print the Table 2 style parameter table: policy and Q-function sizes of every method."""

    benchmark: Literal["mt10", "mt50"] = "mt10"
    """Benchmark whose task count sizes the networks (39-D observations, 4-D actions)."""


def run_train(args: TrainArgs) -> None:
    """``softmod train``."""
    from softmod.train import train

    train(args.to_config(), args.resolved_run_dir(), progress=args.progress)


def run_eval(args: EvalArgs) -> None:
    """``softmod eval``: print the per-task success table and write it as JSON."""
    from rich.console import Console
    from rich.table import Table

    from softmod.checkpoint import load_agent
    from softmod.envs import make_env
    from softmod.evaluate import evaluate
    from softmod.train import resolve_device
    from softmod.validation import ConfigError

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    device = resolve_device(args.device)
    cfg, agent = load_agent(args.run_dir, device, args.checkpoint)
    seed = cfg.seed if args.seed is None else args.seed
    env = make_env(cfg.env, seed, stream=2)  # a stream of its own: fresh conditioned goals
    result = evaluate(agent.policy, env, args.episodes, device)
    env.close()
    table = Table(title=f"{cfg.method} on {cfg.env.benchmark}-{cfg.env.goals}: {args.run_dir}")
    table.add_column("task")
    table.add_column("success", justify="right")
    table.add_column("return", justify="right")
    for i, name in enumerate(result.task_names):
        table.add_row(name, f"{result.success[i]:.1%}", f"{result.returns[i]:.1f}")
    table.add_section()
    table.add_row("mean", f"{result.mean_success:.1%}", f"{result.returns.mean():.1f}")
    Console().print(table)
    out = args.out or args.run_dir / f"eval_{args.episodes}ep.json"
    payload = {"run_dir": str(args.run_dir), "checkpoint": args.checkpoint, "seed": seed}
    out.write_text(json.dumps({**payload, **result.to_json()}, indent=2) + "\n")
    Console(stderr=True).print(f"wrote {out}")


# ----------------------------------------------------------------------------- bench (issue 6)
from softmod.bench import BenchArgs  # noqa: E402 - kept in its own block

# ----------------------------------------------------------------------------- subcommands
Command = (
    Annotated[TrainArgs, tyro.conf.subcommand("train")]
    | Annotated[EvalArgs, tyro.conf.subcommand("eval")]
    | Annotated[ParamsArgs, tyro.conf.subcommand("params")]
    | Annotated[BenchArgs, tyro.conf.subcommand("bench")]
)


def _passive_omp_threads() -> None:
    """Issue 6: idle OpenMP threads sleep instead of spinning (unless the user chose otherwise).

    Measured on a 2-core machine shared with other jobs: a soft-shallow MT10 update with 2 threads
    took 1.2-5.1 s with OpenMP's default spinning and 0.4-0.6 s with passive waiting (the same as
    1 thread); the overlapped collection mode, whose env workers run during the update, needs it
    too. Must happen before PyTorch loads its OpenMP runtime.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``softmod`` and ``python -m softmod``."""
    _passive_omp_threads()
    from softmod.checkpoint import CheckpointError
    from softmod.validation import ConfigError

    args = tyro.cli(Command, args=argv, prog="softmod")  # type: ignore[arg-type]
    try:
        if isinstance(args, TrainArgs):
            run_train(args)
        elif isinstance(args, EvalArgs):
            run_eval(args)
        elif isinstance(args, BenchArgs):  # issue 6
            from softmod.bench import run_bench

            run_bench(args)
        else:
            from softmod.params import print_parameter_table

            print_parameter_table(args.benchmark)
    except (ConfigError, CheckpointError) as err:
        print(f"softmod: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("softmod: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
