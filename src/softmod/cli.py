"""The ``softmod`` command line (tyro): ``softmod train | eval | report | presets | params``.

Every option is a dataclass field whose docstring is its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from softmod.config import RunConfig
from softmod.resolve import TrainOptions, default_run_dir
from softmod.video import Camera


@dataclass
class TrainArgs(TrainOptions):
    """Train one multi-task SAC agent on a benchmark and write a run directory."""

    # the run's options, their defaults and where they land: softmod/resolve.py (TrainOptions);
    # below only what is not part of the run's config
    run_dir: Path | None = None
    """Run directory (must not hold a run already).
    Default: runs/<benchmark>-<goals>-<method>-s<seed>-<time>."""
    resume: Path | None = None
    """Continue the run in this directory from its newest good checkpoint (bit-identical on CPU);
    a run killed after its last checkpoint is finished (final.pt, final_eval.json). Only
    --total-steps, --device, --threads, --checkpoint-interval, --keep-checkpoints, --on-nonfinite
    and --cuda-graph may differ from the run's config."""
    progress: bool = True
    """Show a progress bar."""
    wandb: str | None = None
    """Also log to this Weights & Biases project: the TensorBoard metrics (same names), the config
    and the final evaluation table (extra [wandb]; WANDB_MODE=offline keeps it in RUN_DIR/wandb)."""

    def resolved_run_dir(self, cfg: RunConfig | None = None) -> Path:
        """The run directory, defaulting to a new timestamped one under ``runs/``."""
        if self.run_dir is not None:
            return self.run_dir
        return default_run_dir(cfg or self.to_config())


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
    """Where to write the JSON results. Default: RUN_DIR/eval_<episodes>ep.json for final.pt,
    RUN_DIR/eval_<episodes>ep_<checkpoint>.json for another checkpoint (read by softmod report,
    the step ones by report --at)."""
    seed: int | None = None
    """Evaluation seed (conditioned goals). Default: the run's seed."""
    precision: Literal["fp32", "bf16"] | None = None
    """Precision of the policy's products while acting: fp32 or bf16. Default: the run's."""
    video: int = 0
    """Also render this many deterministic episodes per task (the evaluation's first ones) to
    RUN_DIR/videos/<task>.mp4 and .gif (Meta-World runs; MuJoCo offscreen, MUJOCO_GL=egl or
    osmesa). 0: no video."""
    camera: Camera = "corner"
    """Meta-World camera of the videos (corner: Meta-World's default; corner3 shows the whole
    table from above the far corner)."""
    horizon: int | None = None
    """Steps per episode (1..500). Default: the run's. Another one (a horizon-500 run evaluated
    on the paper's 150 steps) writes RUN_DIR/eval_<episodes>ep[_<checkpoint>]_h<horizon>.json,
    never taken for the run's own numbers; videos use it too."""


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
    at: int | Literal["common"] | None = None
    """Compare the runs at equal samples, finished or not: their evaluation at this env step
    (softmod eval of that step's checkpoint, else the final evaluation of a run that finished
    there, else the periodic one of eval.csv); runs without one are skipped. 'common': the
    largest step that every run has reached. Default: final numbers."""
    videos: bool = True
    """Copy the GIFs of softmod eval --video (the best run per method that has them) into the
    report and show them."""


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

        if args.wandb is not None:
            from softmod.validation import ConfigError

            raise ConfigError("--wandb starts a new W&B run; it is not available with --resume")
        from softmod.resume import resume

        changes = resume_changes(args, given or set(), args.resume)
        resume(args.resume, changes, progress=args.progress)
        return
    from softmod.loop import train
    from softmod.wandb_log import check_wandb

    check_wandb(args.wandb)  # before any work: a one-line install hint without the package
    cfg = args.to_config()
    train(cfg, args.resolved_run_dir(cfg), progress=args.progress, wandb_project=args.wandb)


def run_eval(args: EvalArgs) -> None:
    """``softmod eval``: print the per-task success table and write it as JSON."""
    from rich.console import Console
    from rich.table import Table

    from softmod.checkpoint import checkpoint_file
    from softmod.config import load_config
    from softmod.evaluate import eval_json_path, evaluate_run, write_eval_json
    from softmod.loop import resolve_device
    from softmod.validation import (
        MAX_SEED,
        ConfigError,
        check_device,
        check_horizon,
        check_output_path,
    )

    # every option checked before the (long) evaluation starts
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise ConfigError(f"--seed {args.seed} is out of range; allowed: 0..{MAX_SEED}")
    check_device(args.device)
    if not (args.run_dir / "config.json").is_file():
        raise ConfigError(f"{str(args.run_dir)!r} is not a softmod run directory (no config.json)")
    checkpoint_file(args.run_dir, args.checkpoint)
    horizon = args.horizon
    if horizon is not None:
        check_horizon(horizon)
        if horizon == load_config(args.run_dir / "config.json").env.horizon:
            horizon = None  # the run's own: the run's own file names
    out = args.out or eval_json_path(args.run_dir, args.episodes, args.checkpoint, horizon)
    check_output_path(out, "--out")
    device = resolve_device(args.device)
    if args.video:  # issue 22: checked first; a machine that cannot render says why in a line
        from softmod.video import prepare_video, render_videos

        video = prepare_video(args.run_dir, args.video)
    protocol, result = evaluate_run(
        args.run_dir, args.episodes, device, args.checkpoint, args.seed, args.precision, horizon
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
    if args.video and video:
        render_videos(args.run_dir, args.video, device, args.checkpoint, args.seed, args.precision,
                      camera=args.camera, horizon=horizon)  # fmt: skip
        Console(stderr=True).print(f"wrote {args.run_dir / 'videos'} (MP4 and GIF per task)")


def run_report(args: ReportArgs) -> None:
    """``softmod report``: tables, figures and index.html from run directories."""
    from rich.console import Console

    from softmod.loop import resolve_device
    from softmod.report.build import build_report
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
    if isinstance(args.at, int) and args.at < 1:
        raise ConfigError(f"--at must be an env step >= 1 or 'common', got {args.at}")
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
        at=args.at,
        videos=args.videos,
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
        paper = paper.replace("not in the paper (issue 21)", "-")
        method = p.method if p.grad == "plain" else f"{p.method} --grad {p.grad}"
        table.add_row(p.name, method, "on" if p.balance else "off", steps, paper)
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
    subcommands = {"train": TrainArgs, "eval": EvalArgs, "report": ReportArgs,
                   "presets": PresetsArgs, "sweep": SweepArgs, "params": ParamsArgs,
                   "bench": BenchArgs}  # fmt: skip
    if argv and argv[0] in subcommands:
        try:
            precheck_argv(subcommands[argv[0]], argv[1:])
        except ConfigError as err:
            print(f"softmod: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    args = parse_train_preset(argv) or tyro.cli(Command, args=argv, prog="softmod")
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
