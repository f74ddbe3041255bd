"""The ``softmod`` command line (tyro): ``softmod train | eval | report | presets | params``.

Every option is a dataclass field whose docstring is its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
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

    preset: str | None = None
    """A row of the paper (`softmod presets` lists them), e.g. soft-shallow-mt10-conditioned: sets
    --method, --benchmark, --goals, --balance and --total-steps (the paper's budget). Options given
    explicitly on the command line override the preset's values."""
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
    batch_size: int | None = None
    """Total batch instead of --batch-per-task: must be a multiple of the task count."""
    threads: int = 0
    """PyTorch CPU threads (0: PyTorch's default)."""
    progress: bool = True
    """Show a progress bar."""
    resume: Path | None = None
    """Continue the run in this directory from its newest good checkpoint (bit-identical on CPU);
    a run killed after its last checkpoint is finished (final.pt, final_eval.json). Only
    --total-steps, --device, --threads, --checkpoint-interval, --keep-checkpoints, --on-nonfinite
    and --cuda-graph may differ from the run's config."""
    checkpoint_interval: int = 500_000
    """Environment steps between full checkpoints (one is also written at the end of the warm-up,
    at the end, and on SIGINT / SIGTERM)."""
    keep_checkpoints: int = 2
    """Full checkpoints kept (the newest; checkpoints/best.pt and final.pt are kept besides)."""
    on_nonfinite: Literal["stop", "skip"] = "stop"
    """A non-finite loss, Q-value or gradient: stop the run (the last checkpoint stays intact), or
    skip that update (the run stops after 100 in a row)."""
    workers: int = 0
    """Meta-World env worker processes (0: every env in the training process; N: shared-memory
    workers, tasks balanced by step cost, the same transitions)."""
    async_step: bool = False
    """With --workers: step the envs while the update runs (the update does not see the newest
    vector step's transitions yet). Default: synchronous."""
    cuda_graph: bool = True
    """On CUDA, for MT-SAC, Mix-Expert and soft modularization: capture the whole update once as a
    CUDA graph and replay it (falls back to eager updates with a warning if capture fails;
    ignored on CPU and with --on-nonfinite skip)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Arithmetic of the update: fp32 (the faithful default) or bf16 mixed precision (bf16 matrix
    products, fp32 weights, optimiser, Q-values, TD target and losses; fast on CPUs with AMX /
    AVX512-BF16). Recorded in config.json; a resumed run keeps it."""
    task_context: Path | None = None
    """CARE only: per-task context vectors (.npy (T, C), or .json: T rows or {task: row}) instead
    of the learned task embedding; stored in config.json (softmod/task_context.py)."""

    def to_config(self) -> RunConfig:
        """The resolved run config these options describe."""
        spec = get_method(self.method)
        buffer = self.buffer_per_task
        if buffer is None:
            buffer = {"mt50": 200_000, "mt1": 1_000_000}.get(self.benchmark, 100_000)
        batch_per_task = self.batch_per_task
        env = EnvConfig(
            benchmark=self.benchmark,
            task=self.task,
            goals=self.goals,
            horizon=self.horizon,
            reward_version=self.reward_version,
            toy_tasks=self.toy_tasks,
            workers=self.workers,
            async_step=self.async_step,
        )
        if self.batch_size is not None:
            from softmod.envs import task_names
            from softmod.validation import ConfigError, batch_per_task_of

            try:
                num_tasks = len(task_names(env))
            except ValueError as err:
                raise ConfigError(str(err)) from None
            batch_per_task = batch_per_task_of(self.batch_size, num_tasks)
        total = self.total_steps
        if total is None:
            total = default_total_steps(self.method, self.benchmark)
        cfg = RunConfig(
            env=env,
            sac=SACConfig(
                batch_per_task=batch_per_task,
                buffer_per_task=buffer,
                warmup_per_task=self.warmup_per_task,
                balance=spec.balance if self.balance is None else self.balance,
            ),
            policy_net=spec.network,
            q_net=spec.network,
            method=self.method,
            total_steps=total,
            seed=self.seed,
            device=self.device,
            eval_interval=self.eval_interval,
            eval_episodes=self.eval_episodes,
            log_interval=self.log_interval,
            torch_threads=self.threads,
            checkpoint_interval=self.checkpoint_interval,
            keep_checkpoints=self.keep_checkpoints,
            on_nonfinite=self.on_nonfinite,
            cuda_graph=self.cuda_graph,
            precision=self.precision,
        )
        if self.task_context is None:
            return cfg
        from softmod.task_context import with_task_context

        return with_task_context(cfg, self.task_context)

    def resolved_run_dir(self) -> Path:
        """The run directory, defaulting to a new timestamped one under ``runs/``."""
        if self.run_dir is not None:
            return self.run_dir
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{self.benchmark}-{self.goals}-{self.method}-s{self.seed}-{stamp}"


@dataclass
class EvalArgs:
    """Final evaluation of a trained run, the paper's protocol by default: deterministic actions,
    100 episodes per task, an episode succeeds if the success flag is 1 at any step. Prints the
    per-task table and writes it as JSON."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by softmod train."""
    episodes: int = 100
    """Episodes per task (paper: 100)."""
    checkpoint: str = "final.pt"
    """Checkpoint file under RUN_DIR/checkpoints."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when present, else the CPU."""
    out: Path | None = None
    """Where to write the JSON results. Default: RUN_DIR/eval_<episodes>ep.json (read by
    softmod report)."""
    seed: int | None = None
    """Evaluation seed (conditioned goals). Default: the run's seed."""
    precision: Literal["fp32", "bf16"] | None = None
    """Precision of the policy's products while acting: fp32 or bf16. Default: the run's."""


@dataclass
class ReportArgs:
    """The paper's tables and figures from runs: Table 1 (mean ± std over seeds, IQM with a 95%
    bootstrap interval, per task), Table 2 (capacity), training curves (Figures 5-6), routing
    t-SNE and diagrams of soft-modular runs (Figures 4, 3), and index.html showing all of it."""

    paths: tyro.conf.Positional[list[Path]]
    """Run directories, or directories holding runs anywhere below them (e.g. a sweep)."""
    out: Path = Path("report")
    """Output directory (created; files in it are overwritten)."""
    routing: bool = True
    """Draw the routing figures (t-SNE, diagrams) of soft-modular runs: rolls out each group's
    lowest-seed run."""
    routing_episodes: int = 2
    """Deterministic episodes per task whose states feed the routing figures."""
    tsne_max_points: int = 4000
    """At most this many states (equally many per task) in a t-SNE."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Device of the routing rollouts."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class PresetsArgs:
    """List the presets of softmod train --preset: every row of the paper's tables and figures."""

    match: str | None = None
    """Only the presets whose name contains this text, e.g. mt10-conditioned."""


@dataclass
class ParamsArgs:
    """Print the Table 2 style parameter table: policy and Q-function sizes of every method."""

    benchmark: Literal["mt10", "mt50"] = "mt10"
    """Benchmark whose task count sizes the networks (39-D observations, 4-D actions)."""


def run_train(args: TrainArgs, given: set[str] | None = None) -> None:
    """``softmod train`` (``given``: the options written on the command line, for --resume)."""
    if args.resume is not None:
        from softmod.cli_checks import resume_changes
        from softmod.resume import resume

        changes = resume_changes(args, given or set(), args.resume)
        resume(args.resume, changes, progress=args.progress)
        return
    from softmod.train import train

    train(args.to_config(), args.resolved_run_dir(), progress=args.progress)


def run_eval(args: EvalArgs) -> None:
    """``softmod eval``: print the per-task success table and write it as JSON."""
    from rich.console import Console
    from rich.table import Table

    from softmod.checkpoint import checkpoint_file
    from softmod.evaluate import eval_json_path, evaluate_run, write_eval_json
    from softmod.train import resolve_device
    from softmod.validation import MAX_SEED, ConfigError, check_device, check_output_path

    # every option checked before the (long) evaluation starts
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise ConfigError(f"--seed {args.seed} is out of range; allowed: 0..{MAX_SEED}")
    check_device(args.device)
    if not (args.run_dir / "config.json").is_file():
        raise ConfigError(f"{str(args.run_dir)!r} is not a softmod run directory (no config.json)")
    checkpoint_file(args.run_dir, args.checkpoint)
    out = args.out or eval_json_path(args.run_dir, args.episodes)
    check_output_path(out, "--out")
    device = resolve_device(args.device)
    protocol, result = evaluate_run(
        args.run_dir, args.episodes, device, args.checkpoint, args.seed, args.precision
    )
    table = Table(
        title=f"{protocol['method']} on {protocol['benchmark']}-{protocol['goals']}: "
        f"{args.run_dir} ({args.episodes} deterministic episodes per task)"
    )
    table.add_column("task")
    table.add_column("success", justify="right")
    table.add_column("return", justify="right")
    for i, name in enumerate(result.task_names):
        table.add_row(name, f"{result.success[i]:.1%}", f"{result.returns[i]:.1f}")
    table.add_section()
    table.add_row("mean", f"{result.mean_success:.1%}", f"{result.returns.mean():.1f}")
    Console().print(table)
    write_eval_json(out, protocol, result)
    Console(stderr=True).print(f"wrote {out}")


def run_report(args: ReportArgs) -> None:
    """``softmod report``: tables, figures and index.html from run directories."""
    from rich.console import Console

    from softmod.report.build import build_report
    from softmod.train import resolve_device
    from softmod.validation import ConfigError, check_device, check_output_path

    if not args.paths:
        raise ConfigError(
            "softmod report needs at least one run directory, or a directory holding runs"
        )
    check_output_path(args.out, "--out", "dir")
    check_device(args.device)
    if args.routing_episodes < 1:
        raise ConfigError(f"--routing-episodes must be >= 1, got {args.routing_episodes}")
    if args.tsne_max_points < 10:
        raise ConfigError(f"--tsne-max-points must be >= 10, got {args.tsne_max_points}")
    console = Console(stderr=True)
    report = build_report(
        args.paths,
        args.out,
        routing_episodes=args.routing_episodes,
        tsne_max_points=args.tsne_max_points,
        routing=args.routing,
        device=resolve_device(args.device),
        progress=args.progress,
        console=console,
    )
    console.print(
        f"report of {len(report.runs)} runs in {len(report.groups)} groups "
        f"({len(report.skipped)} skipped) -> {report.out / 'index.html'}"
    )


def run_presets(args: PresetsArgs) -> None:
    """``softmod presets``: the paper's named configurations as a table."""
    from rich.console import Console
    from rich.table import Table

    from softmod.presets import PRESETS
    from softmod.validation import ConfigError

    shown = [p for p in PRESETS.values() if not args.match or args.match in p.name]
    if not shown:
        import difflib

        close = difflib.get_close_matches(args.match or "", list(PRESETS), n=3, cutoff=0.3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"--match {args.match!r}: no preset name contains it{hint} (softmod presets lists all)"
        )
    table = Table(
        title="softmod train --preset NAME (explicit options override the preset)",
        caption="paper: T = Table, F = Figure, § = section of the paper",
    )
    table.add_column("preset", no_wrap=True)
    table.add_column("method", no_wrap=True)
    table.add_column("balance", no_wrap=True, min_width=7)
    table.add_column("steps", justify="right", no_wrap=True, min_width=5)
    table.add_column("paper", no_wrap=True)
    for p in shown:
        steps = f"{p.total_steps / 1e6:g}M"
        paper = p.source.replace("Table ", "T").replace("Figure ", "F").replace("Section ", "§")
        paper = paper.replace("ablation: w/o obs, with balance", "w/o obs")
        table.add_row(p.name, p.method, "on" if p.balance else "off", steps, paper)
    Console().print(table)


# ----------------------------------------------------------------------------- train --preset
def _preset_name(argv: list[str]) -> str | None:
    """NAME of ``--preset NAME`` or ``--preset=NAME`` in a command line, if any."""
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return None


def parse_train_preset(argv: list[str]) -> TrainArgs | None:
    """``softmod train --preset NAME ...``: parse with the preset's values as the defaults, so an
    option given explicitly still wins. None when ``argv`` is not a train command with a preset;
    an unknown preset is a one-line error (exit 2) naming the closest presets."""
    if not argv or argv[0] != "train":
        return None
    name = _preset_name(argv[1:])
    if name is None or name == "None":
        return None
    from softmod.presets import get_preset

    try:
        preset = get_preset(name)
    except ValueError as err:
        print(f"softmod: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    default = dataclasses.replace(TrainArgs(), preset=name, **preset.train_options())
    return tyro.cli(TrainArgs, args=argv[1:], default=default, prog="softmod train")


# ----------------------------------------------------------------------------- bench (issue 6)
from softmod.bench import BenchArgs  # noqa: E402 - kept in its own block
from softmod.sweep import SweepArgs  # noqa: E402 - ray itself is imported only when a sweep runs

# ----------------------------------------------------------------------------- subcommands
Command = (
    Annotated[TrainArgs, tyro.conf.subcommand("train")]
    | Annotated[EvalArgs, tyro.conf.subcommand("eval")]
    | Annotated[ReportArgs, tyro.conf.subcommand("report")]
    | Annotated[PresetsArgs, tyro.conf.subcommand("presets")]
    | Annotated[SweepArgs, tyro.conf.subcommand("sweep")]
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
    from softmod.checkpoint import CheckpointError, CheckpointWriteError
    from softmod.cli_checks import given_options, precheck_argv
    from softmod.envs.base import EnvWorkerError
    from softmod.report.collect import ReportError
    from softmod.sweep import SweepError
    from softmod.training_support import DivergenceError, RunInterrupted
    from softmod.validation import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "train":
        try:
            precheck_argv(TrainArgs, argv[1:])
        except ConfigError as err:
            print(f"softmod: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    args = parse_train_preset(argv) or tyro.cli(Command, args=argv, prog="softmod")  # type: ignore[arg-type]
    try:
        if isinstance(args, TrainArgs):
            run_train(args, given_options(argv[1:]))
        elif isinstance(args, EvalArgs):
            run_eval(args)
        elif isinstance(args, ReportArgs):
            run_report(args)
        elif isinstance(args, PresetsArgs):
            run_presets(args)
        elif isinstance(args, SweepArgs):
            from softmod.sweep import run_sweep_cli

            run_sweep_cli(args)
        elif isinstance(args, BenchArgs):  # issue 6
            from softmod.bench import run_bench

            run_bench(args)
        else:
            from softmod.params import print_parameter_table

            print_parameter_table(args.benchmark)
    except (ConfigError, CheckpointError, ReportError, SweepError) as err:
        print(f"softmod: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except RunInterrupted as err:  # SIGINT / SIGTERM: a checkpoint was written
        print(f"softmod: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except (DivergenceError, EnvWorkerError, CheckpointWriteError) as err:
        print(f"softmod: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("softmod: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
