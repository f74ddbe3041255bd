"""Sweeps on Ray: a grid of (preset or method, benchmark, setting, seed), fault tolerant.

Every trial is an ordinary ``softmod train`` run in its own directory ``SWEEP_DIR/<trial>``,
started as a subprocess by a Ray task that asks for ``cpus_per_trial`` CPUs (and a GPU fraction
when the cluster has GPUs). A failed or preempted trial is retried by Ray (``max_retries``); the
retry resumes from the trial's last checkpoint (``softmod train --resume``), so its step counter
continues. A sweep re-run skips the trials that finished (their ``final_eval.json`` exists).

Ray is an optional extra (``pip install -e ".[ray]"``) imported only here, inside :func:`run_sweep`.
Bookkeeping, per trial, in ``SWEEP_DIR/trials/<trial>.json``: its command and every attempt (start
time, resumed-from step, exit code); ``SWEEP_DIR/sweep.json`` holds the grid and the final status.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from softmod.config import RunConfig

RAY_HINT = 'softmod sweep needs Ray: pip install -e ".[ray]"  (or: pip install "ray>=2.9")'


class SweepError(ValueError):
    """A sweep that cannot start (bad grid or option); its message is one line."""


class TrialFailed(RuntimeError):
    """A trial's training process exited with an error (Ray retries the trial)."""


@dataclass(frozen=True)
class Trial:
    """One training run of the sweep: its directory name and its ``softmod train`` options."""

    name: str
    args: tuple[str, ...]
    config: RunConfig | None = field(default=None, compare=False)  # the resolved run config


@dataclass
class SweepSpec:
    """The grid: methods x benchmarks x settings x seeds, plus presets x seeds, with overrides."""

    methods: Sequence[str] = ()
    presets: Sequence[str] = ()
    benchmarks: Sequence[str] = ("mt10",)
    goals: Sequence[str] = ("fixed",)
    seeds: Sequence[int] = (0,)
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass
class SweepArgs:
    """Run a grid of softmod training runs on Ray (local by default), fault tolerant.

    Example: softmod sweep --sweep-dir sweeps/table1 --methods mt-sac soft-shallow --benchmarks mt10
    --goals fixed conditioned --seeds 0 1 2 --set total-steps=2000000
    """

    sweep_dir: Path
    """Directory of the sweep: one run directory per trial, plus sweep.json and trials/."""
    methods: tuple[str, ...] = ()
    """Methods (see softmod train --help); crossed with --benchmarks, --goals and --seeds."""
    presets: tuple[str, ...] = ()
    """Presets (softmod presets lists them); each crossed with --seeds only."""
    benchmarks: tuple[str, ...] = ("mt10",)
    """Benchmarks for --methods: toy, mt1, mt10, mt50."""
    goals: tuple[str, ...] = ("fixed",)
    """Settings for --methods: fixed, conditioned."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of every grid point."""
    set: tuple[str, ...] = ()
    """Overrides of softmod train options for every trial, KEY=VALUE, e.g. total-steps=200000."""
    address: str | None = None
    """Ray cluster address to join (e.g. auto or ray://host:10001). Default: a local Ray."""
    num_cpus: int | None = None
    """CPUs of the local Ray. Default: this machine's cores."""
    cpus_per_trial: float = 1.0
    """CPUs each trial asks Ray for (also its PyTorch threads)."""
    gpus_per_trial: float | None = None
    """GPU fraction each trial asks for. Default: 0.25 when the cluster has GPUs, else 0."""
    max_retries: int = 2
    """Retries of a failed or preempted trial; a retry resumes from the trial's last checkpoint."""
    report: bool = True
    """Write softmod report's tables and figures to SWEEP_DIR/report when every trial finished."""
    progress: bool = True
    """Show a progress bar over the trials."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """--precision of every trial (fp32 or bf16 mixed precision; same as --set precision=...)."""

    def spec(self) -> SweepSpec:
        """The grid these options describe (overrides parsed; bad ones -> SweepError)."""
        overrides: dict[str, str] = {}
        for item in self.set:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise SweepError(f"--set {item!r}: expected KEY=VALUE, e.g. total-steps=200000")
            overrides[key.strip()] = value.strip()
        if self.precision != "fp32":  # an explicit --set precision=... wins
            overrides.setdefault("precision", self.precision)
        return SweepSpec(self.methods, self.presets, self.benchmarks, self.goals, self.seeds,
                         overrides)  # fmt: skip


def _flag(key: str) -> str:
    return "--" + key.strip().lstrip("-").replace("_", "-")


def _convert(key: str, value: str, hint: object) -> object:
    """A ``--set`` value as the type of the ``softmod train`` option it overrides."""
    text = str(hint)
    if value.lower() in ("none", "null") and "None" in text:
        return None
    try:
        if "bool" in text:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if "int" in text:
            return int(float(value)) if float(value).is_integer() else int(value)
        if "float" in text:
            return float(value)
    except ValueError:
        raise SweepError(f"--set {key}={value}: not a valid value for {text}") from None
    return Path(value) if "Path" in text else value


def check_trial(options: dict[str, str]) -> RunConfig:
    """The validated run config a trial's options describe (nothing is built)."""
    from softmod.resolve import TrainOptions, option_names, resolve_config
    from softmod.validation import ConfigError

    hints = get_type_hints(TrainOptions)
    kwargs: dict[str, object] = {}
    for key, value in options.items():
        name = key.replace("-", "_")
        if name not in hints:
            allowed = ", ".join(sorted(k.replace("_", "-") for k in option_names()))
            raise SweepError(f"--set {key}: not a softmod train option; allowed: {allowed}")
        kwargs[name] = _convert(key, value, hints[name])
    try:  # a preset's values first; the sweep's overrides win
        return resolve_config(kwargs)
    except ConfigError as err:
        raise SweepError(f"{' '.join(f'{k}={v}' for k, v in options.items())}: {err}") from None


def build_trials(spec: SweepSpec) -> list[Trial]:
    """The trials of a grid, each with its ``softmod train`` options (validated, nothing built).

    Raises :class:`SweepError` naming the bad value when the grid or an override is invalid.
    """
    if not spec.methods and not spec.presets:
        raise SweepError("a sweep needs at least one --methods or --presets entry")
    if not spec.seeds:
        raise SweepError("a sweep needs at least one seed (--seeds 0 1 2)")
    reserved = {"run-dir", "resume", "seed", "preset", "method", "benchmark", "goals", "progress"}
    overrides = {_flag(k)[2:]: str(v) for k, v in spec.overrides.items()}
    for key in overrides:
        if key in reserved:
            raise SweepError(f"--set {key}: set by the sweep grid itself; use the grid options")
    grid: list[tuple[str, dict[str, str]]] = []
    for method in spec.methods:
        for bench in spec.benchmarks:
            for goals in spec.goals:
                grid.append((f"{bench}-{goals}-{method}",
                             {"method": method, "benchmark": bench, "goals": goals}))  # fmt: skip
    for preset in spec.presets:
        grid.append((preset, {"preset": preset}))
    trials: list[Trial] = []
    for base, opts in grid:
        for seed in spec.seeds:
            options = {**opts, "seed": str(seed), **overrides}
            cfg = check_trial(options)
            args = tuple(x for k, v in options.items() for x in (f"--{k}", v))
            trials.append(Trial(f"{base}-s{seed}", args, cfg))
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise SweepError("the grid names the same trial twice (a method listed twice?)")
    return trials


def check_existing_trials(sweep_dir: Path, trials: list[Trial]) -> None:
    """A trial whose directory already holds a run (finished or resumable) must be that run: its
    config.json may differ from the trial's config only where a resumed run may change
    (:func:`softmod.runstate.incompatible_fields`); else a SweepError names the fields."""
    from softmod.config import load_config
    from softmod.runstate import incompatible_fields

    for t in trials:
        run_dir = Path(sweep_dir) / t.name
        if t.config is None or trial_status(run_dir) not in ("done", "resumable"):
            continue
        try:
            saved = load_config(run_dir / "config.json")
        except Exception:  # unreadable: the trial's own --resume reports it
            continue
        diff = incompatible_fields(saved, t.config)
        if diff:
            raise SweepError(
                f"trial {t.name}: {run_dir} holds a run with other options ({', '.join(diff)} "
                f"differ); use another --sweep-dir or remove {run_dir}"
            )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the training process when the Ray worker running it dies."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def trial_status(run_dir: Path) -> str:
    """``done`` (final_eval.json), ``resumable`` (has a checkpoint), ``partial`` or ``new``."""
    from softmod.checkpoint import latest_checkpoint_step

    if (run_dir / "final_eval.json").exists():
        return "done"
    if not run_dir.exists():
        return "new"
    return "resumable" if latest_checkpoint_step(run_dir) is not None else "partial"


def wait_for_previous_attempt(run_dir: Path, timeout: float = 900.0) -> None:
    """Return once no process trains ``run_dir``: a retry starts after the previous attempt let
    go of it (a process whose Ray worker died gets SIGTERM and saves a checkpoint first; moving or
    resuming the directory under it would corrupt the run). TrialFailed after ``timeout`` s."""
    from softmod.training_support import training_pid

    deadline = time.monotonic() + timeout
    while run_dir.exists() and (pid := training_pid(run_dir)) is not None:
        if time.monotonic() > deadline:
            raise TrialFailed(
                f"trial {run_dir.name}: its run directory is still trained by process {pid} "
                f"after {timeout:.0f} s"
            )
        time.sleep(1.0)


def run_trial(sweep_dir: str, trial: Trial, threads: int) -> dict:
    """Run (or resume) one trial to completion in a subprocess; raise :class:`TrialFailed` if not.

    This is the body of the Ray task; it is also callable directly (tests, debugging).
    """
    from softmod.checkpoint import latest_checkpoint_step

    root = Path(sweep_dir)
    run_dir = root / trial.name
    book = root / "trials" / f"{trial.name}.json"
    record: dict[str, Any] = (
        json.loads(book.read_text()) if book.exists() else {"args": list(trial.args)}
    )
    attempts = record.setdefault("attempts", [])
    wait_for_previous_attempt(run_dir)
    status = trial_status(run_dir)
    if status == "done":
        return {"trial": trial.name, "status": "done", "attempts": len(attempts)}
    resumed_from = None
    if status == "resumable":
        resumed_from = latest_checkpoint_step(run_dir)
        cmd = ["train", "--resume", str(run_dir)]
    else:
        if status == "partial":  # died before its first checkpoint: keep it aside, start afresh
            shutil.move(run_dir, run_dir.with_name(f"{trial.name}.aborted-{int(time.time())}"))
        cmd = ["train", "--threads", str(threads), *trial.args, "--run-dir", str(run_dir)]
    cmd = [sys.executable, "-m", "softmod", *cmd, "--no-progress"]
    attempt: dict[str, Any] = {
        "start": time.time(),
        "resumed_from": resumed_from,
        "pid": None,
        "exit": None,
    }
    attempts.append(attempt)
    book.parent.mkdir(parents=True, exist_ok=True)
    with (root / "trials" / f"{trial.name}.log").open("a") as log:
        log.write(f"\n=== attempt {len(attempts)}: {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)  # fmt: skip
        attempt["pid"] = proc.pid
        book.write_text(json.dumps(record, indent=2) + "\n")
        code = proc.wait()
    attempt["exit"] = code
    book.write_text(json.dumps(record, indent=2) + "\n")
    if code != 0:
        log_name = f"trials/{trial.name}.log"
        raise TrialFailed(f"trial {trial.name} exited with code {code} (see {log_name})")
    return {"trial": trial.name, "status": "done", "attempts": len(attempts)}


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: trials finished now, skipped (already done) and failed."""

    sweep_dir: Path
    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]


def run_sweep(
    spec: SweepSpec,
    sweep_dir: Path,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float | None = None,
    max_retries: int = 2,
    console: Console | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every trial of ``spec`` on Ray (local by default, ``address`` to join a cluster)."""
    console = console or Console(stderr=True)
    if cpus_per_trial <= 0:
        raise SweepError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    if max_retries < 0:
        raise SweepError(f"--max-retries must be >= 0, got {max_retries}")
    trials = build_trials(spec)  # every option checked before Ray starts
    check_existing_trials(sweep_dir, trials)
    try:
        import ray
    except ImportError:
        raise SweepError(RAY_HINT) from None
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(sweep_dir, os.W_OK):
        raise SweepError(f"sweep directory {sweep_dir} is not writable")
    skipped = [t.name for t in trials if trial_status(sweep_dir / t.name) == "done"]
    todo = [t for t in trials if t.name not in skipped]
    manifest = {"spec": asdict(spec), "trials": {t.name: list(t.args) for t in trials}}
    (sweep_dir / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n")
    console.print(f"[bold]softmod sweep[/]: {len(trials)} trials, {len(skipped)} already done, "
                  f"{len(todo)} to run -> {sweep_dir}")  # fmt: skip
    finished: list[str] = []
    failed: dict[str, str] = {}
    if todo:
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)  # fmt: skip
        else:
            ray.init(address=address, log_to_driver=False)
        try:
            if gpus_per_trial is None:  # a GPU fraction only where the cluster has GPUs
                gpus_per_trial = 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
            task = ray.remote(run_trial).options(
                num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                max_retries=max_retries, retry_exceptions=[TrialFailed],
            )  # fmt: skip
            threads = max(1, int(cpus_per_trial))
            refs = {task.remote(str(sweep_dir.resolve()), t, threads): t.name for t in todo}
            with Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("trials · {task.fields[note]}"), TimeElapsedColumn(),
                          console=console, disable=not progress) as bar:  # fmt: skip
                bar_task = bar.add_task("sweep", total=len(todo), note="running")
                pending = list(refs)
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    name = refs[done[0]]
                    try:
                        ray.get(done[0])
                        finished.append(name)
                    except Exception as err:  # reported per trial; the sweep goes on
                        failed[name] = str(err).strip().splitlines()[-1][:300]
                    bar.update(bar_task, advance=1, note=f"{len(failed)} failed, last {name}")
        finally:
            ray.shutdown()
    manifest["status"] = {
        **{n: "skipped (done before)" for n in skipped},
        **{n: "done" for n in finished},
        **{n: f"failed: {m}" for n, m in failed.items()},
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n")
    console.print(f"sweep: {len(finished)} finished, {len(skipped)} skipped, {len(failed)} failed")
    for name, msg in failed.items():
        console.print(f"  [red]failed[/] {name}: {msg}")
    return SweepResult(sweep_dir, finished, skipped, failed)


def run_sweep_cli(args: SweepArgs) -> SweepResult:
    """``softmod sweep``: run the grid, then (when every trial finished) write the report."""
    result = run_sweep(
        args.spec(),
        args.sweep_dir,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_retries=args.max_retries,
        progress=args.progress,
    )
    if args.report and not result.failed:
        from softmod.report.build import build_report

        build_report([args.sweep_dir], args.sweep_dir / "report", progress=args.progress)
        Console(stderr=True).print(f"report -> {args.sweep_dir / 'report' / 'index.html'}")
    if result.failed:
        raise SystemExit(1)
    return result
