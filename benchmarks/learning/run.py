"""Train one agent for a fixed budget, evaluate it with the paper's protocol, record the result.

Usage (from the repository root)::

    python benchmarks/learning/run.py --benchmark mt1 --task reach-v3 --method single-task-sac \
        --budget 100000
    python benchmarks/learning/run.py --benchmark mt10 --method soft-shallow --budget 150000
    python benchmarks/learning/run.py --resume runs/learning/<name>-<time>   # after a stop
    python benchmarks/learning/run.py --resume RUN_DIR --budget 3000000     # a larger budget

Writes ``benchmarks/results/learning/<name>.json``: the exact command, seed, device, machine,
softmod commit, wall time, the training curve (periodic evaluations from ``eval.csv``) and the final
evaluation (deterministic actions, 100 episodes per task, success at any step: DESIGN §6). The run
directory itself goes under ``runs/learning/`` (not committed). A full checkpoint is written every
``--checkpoint-interval`` environment steps, so a run stopped by Ctrl-C, SIGTERM or the end of a
session continues with ``--resume RUN_DIR`` (bit-identical to an uninterrupted run; the record's
``train_wall_s`` counts the training time of every session). ``--resume RUN_DIR --budget N``
continues a run, finished or not, to a larger budget: its name (and so its record) takes the new
budget, ``...-1000k-s0`` -> ``...-3000k-s0``, and the record of the smaller budget stays.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import torch

from softmod.bench import machine
from softmod.checkpoint import CheckpointError
from softmod.config import RunConfig, load_config
from softmod.evaluate import eval_json_path, evaluate_run, final_eval_step, write_eval_json
from softmod.loop import TrainResult, train
from softmod.resolve import resolve_config
from softmod.resume import resume
from softmod.training_support import RunInterrupted
from softmod.validation import ConfigError

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "learning"


def commit() -> str:
    """The softmod git commit the result was produced with."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def where(run_dir: Path) -> str:
    """A run directory as recorded: relative to the repository when it lies inside it."""
    resolved = run_dir.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def die(script: str, message: str) -> NoReturn:
    """Bad input of a learning script: one line on stderr, exit 2, before anything is written."""
    print(f"{script}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def label_runs(
    runs: list[dict], detail: str, distinguish: tuple[str, ...] = ("precision", "horizon")
) -> None:
    """Give each run record a ``label``: its method, plus ``detail.format(**run)`` where several
    runs share the method (for example ``" s{seed}"``); runs whose labels still coincide get the
    values of the ``distinguish`` keys in which they differ (an fp32 and a bf16 run of one seed:
    ``"soft-shallow s0 fp32"``, ``"soft-shallow s0 bf16"``), so no two runs share a label."""
    for run in runs:
        twins = sum(r["method"] == run["method"] for r in runs)
        run["label"] = run["method"] + (detail.format(**run) if twins > 1 else "")
    for label in {r["label"] for r in runs}:
        group = [r for r in runs if r["label"] == label]
        for key in distinguish:
            if len(group) > 1 and len({str(r.get(key)) for r in group}) > 1:
                for r in group:
                    r["label"] += f" {key[0] if key == 'horizon' else ''}{r.get(key)}"


def read_curve(path: Path) -> list[dict[str, float]]:
    """The periodic evaluations of a run: one dict per row of ``eval.csv``."""
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def load_run(path: Path) -> dict:
    """A run's identity and periodic evaluations, from its run directory, its ``run.py`` record
    or a ``partial.py`` record of that one run: ``{"label", "method", "seed", "precision",
    "horizon", "benchmark", "goals", "machine", "curve"}`` (``machine`` from a record only, else
    None); a ValueError says what is wrong."""
    if path.is_dir():
        if not (path / "config.json").is_file() or not (path / "eval.csv").is_file():
            raise ValueError(f"{path}: not a run directory with config.json and eval.csv")
        cfg = load_config(path / "config.json")
        return {"label": path.name, "method": cfg.method, "seed": cfg.seed,
                "precision": cfg.precision, "horizon": cfg.env.horizon,
                "benchmark": cfg.env.benchmark, "goals": cfg.env.goals, "machine": None,
                "curve": read_curve(path / "eval.csv")}  # fmt: skip
    try:
        rec = json.loads(path.read_text())
        runs = rec["runs"] if "runs" in rec else [rec]  # partial.py's record holds a list
        if len(runs) == 1:
            run = {**runs[0], "name": rec["name"], "machine": rec.get("machine")}
            return {"label": run["name"], "method": run["method"], "seed": int(run["seed"]),
                    "precision": run.get("precision", "fp32"), "horizon": int(run["horizon"]),
                    "benchmark": run["benchmark"], "goals": run["goals"],
                    "machine": run["machine"], "curve": list(run["curve"])}  # fmt: skip
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a run directory, a run.py record or a partial.py record "
                         f"({err})") from err  # fmt: skip
    raise ValueError(
        f"{path}: a partial record of {len(runs)} runs; allowed: one run's "
        f"(record each run alone with partial.py)"
    )


def parser() -> argparse.ArgumentParser:
    """run.py's options (also used by ``campaign.py`` to check a plan's runs)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="mt10", choices=["mt1", "mt10", "mt50", "toy"])
    p.add_argument("--task", default=None)
    p.add_argument("--goals", default="fixed", choices=["fixed", "conditioned"])
    p.add_argument("--method", default="soft-shallow")
    p.add_argument("--budget", type=int, help="environment steps over all tasks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-interval", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--checkpoint-interval", type=int, default=20_000)
    p.add_argument("--keep-checkpoints", type=int, default=2,
                   help="full checkpoints kept (more: more points for q_parity.py)")  # fmt: skip
    p.add_argument("--warmup-per-task", type=int, default=4000, help="random-action steps per task")
    p.add_argument("--batch-size", type=int, default=None, help="default: 128 per task")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="env worker processes (0: in-process)")
    p.add_argument("--async-step", action="store_true", help="overlap env steps and the update")
    p.add_argument("--horizon", type=int, default=150,
                   help="episode length (150: the paper; 500: Meta-World+)")  # fmt: skip
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="fp32 (default) or bf16 mixed precision")  # fmt: skip
    p.add_argument("--name", default=None)
    p.add_argument("--resume", type=Path, default=None, help="continue this stopped run directory")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the JSON record goes")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "learning")
    p.add_argument(
        "--stop-at", type=int, default=None,
        help="stop (with a checkpoint) after this many env steps; finish later with --resume",
    )  # fmt: skip
    return p


def new_run_config(a: argparse.Namespace) -> RunConfig:
    """The config of a new run from run.py's options; a bad option is a ValueError."""
    return resolve_config(dict(
        benchmark=a.benchmark, task=a.task, goals=a.goals, method=a.method,
        total_steps=a.budget, seed=a.seed, device=a.device,
        eval_interval=a.eval_interval, eval_episodes=a.eval_episodes,
        log_interval=min(5_000, a.eval_interval), threads=a.threads,
        checkpoint_interval=a.checkpoint_interval, warmup_per_task=a.warmup_per_task,
        keep_checkpoints=a.keep_checkpoints,
        batch_size=a.batch_size, workers=a.workers, async_step=a.async_step,
        precision=a.precision, horizon=a.horizon,
    ))  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    """Run the recipe given on the command line; return (and write) the result record."""
    p = parser()
    a = p.parse_args(argv)

    def fail(msg: str) -> NoReturn:
        p.exit(2, f"run.py: error: {msg}\n")  # one line, exit 2, nothing written

    command = "python benchmarks/learning/run.py " + " ".join(argv or sys.argv[1:])
    try:
        if a.resume is not None:
            run_dir = a.resume.resolve()
            if not (run_dir / "config.json").is_file():
                fail(f"--resume {str(a.resume)!r}: no run there (config.json is missing)")
            cfg = load_config(run_dir / "config.json")
            meta = read_meta(run_dir, cfg)
            saved = dict(meta)
            changes = {}
            if a.budget is not None and a.budget != cfg.total_steps:
                if a.budget < cfg.total_steps:
                    fail(f"--budget {a.budget:,} with --resume: must be at least the run's budget "
                         f"{cfg.total_steps:,} (to stop earlier: --stop-at)")  # fmt: skip
                changes = {"total_steps": a.budget}
                meta["name"] = rebudget_name(meta["name"], cfg.total_steps, a.budget)
            meta["command"] += f" && {command}"
            if changes:  # later resumes (without --budget) keep the new name and command
                write_meta(run_dir, meta)
            name = meta["name"]
            if not changes and trained_to_budget(run_dir, cfg):
                # killed during its final evaluation (say by the end of a session): record it
                print(f"{name}: trained to its budget {cfg.total_steps:,}; final evaluation")
                totals = recorded_totals(run_dir)
            else:
                try:
                    result = resume(run_dir, changes, progress=False, stop_at=a.stop_at)
                except (ConfigError, CheckpointError):
                    if changes:  # refused before training: the run keeps its name
                        write_meta(run_dir, saved)
                    raise
                totals = result_totals(result)
        else:
            if a.budget is None:
                fail("--budget is required (or --resume RUN_DIR)")
            name = a.name or run_name(a.benchmark, a.task, a.goals, a.method, a.horizon,
                                      a.precision, a.budget, a.seed)  # fmt: skip
            try:  # bad options end here, before a run directory exists
                cfg = new_run_config(a)
            except ValueError as err:
                fail(str(err))
            run_dir = a.runs_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            meta = {"name": name, "command": command, "threads": a.threads,
                    "final_episodes": a.final_episodes, "commit": commit()}  # fmt: skip
            run_dir.mkdir(parents=True)
            write_meta(run_dir, meta)
            totals = result_totals(train(cfg, run_dir, progress=False, stop_at=a.stop_at))
    except (ConfigError, CheckpointError) as err:  # --resume: an incompatible or broken run
        fail(str(err).strip().splitlines()[0])
    except RunInterrupted as stop:
        print(f"stopped at step {stop.step:,}; continue with: "
              f"python benchmarks/learning/run.py --resume {run_dir}")  # fmt: skip
        raise SystemExit(stop.exit_code) from None
    record = make_record(name, meta, cfg, run_dir, totals)
    a.out.mkdir(parents=True, exist_ok=True)
    out = a.out / f"{name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    final = record["final_eval"]["mean_success"]
    steps, wall = record["env_steps"], record["train_wall_s"]
    print(f"{name}: final success {final:.1%} over {meta['final_episodes']} episodes/task; "
          f"{steps:,} env steps in {wall:.0f} s -> {out}")  # fmt: skip
    return record


def result_totals(result: TrainResult) -> dict:
    """What the record takes from a finished training: steps, updates, wall time, parameters."""
    return {"env_steps": result.env_steps, "updates": result.updates,
            "train_wall_s": round(result.wall_s, 1),
            "parameters": result.parameter_counts}  # fmt: skip


def trained_to_budget(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether the run wrote its final weights and final_eval.json at (or past) its budget."""
    step = final_eval_step(run_dir)
    done = (run_dir / "checkpoints" / "final.pt").exists() and step is not None
    return done and step >= cfg.total_steps


def recorded_totals(run_dir: Path) -> dict:
    """:func:`result_totals` of a run trained to its budget, from its files (the last row of
    ``train.csv``, written at the last step, and ``params.json``)."""
    last = read_curve(run_dir / "train.csv")[-1]
    return {"env_steps": int(last["step"]), "updates": int(last["train/updates"]),
            "train_wall_s": round(last["time_s"], 1),
            "parameters": json.loads((run_dir / "params.json").read_text())}  # fmt: skip


def run_name(
    benchmark: str, task: str | None, goals: str, method: str, horizon: int, precision: str,
    budget: int, seed: int,
) -> str:  # fmt: skip
    """A run's name, which is also its record's: ``mt10-fixed-soft-shallow-bf16-1000k-s0``; the
    paper's horizon (150) and fp32 are not named, so older names stay valid."""
    h = f"h{horizon}" if horizon != 150 else None
    bf16 = "bf16" if precision == "bf16" else None
    parts = (benchmark, task, goals, method, h, bf16, f"{budget // 1000}k", f"s{seed}")
    return "-".join(x for x in parts if x)


def rebudget_name(name: str, old: int, new: int) -> str:
    """A run name for a larger budget: ``mt10-fixed-soft-shallow-1000k-s0`` -> ``...-3000k-s0``
    (a name without ``-<old>k-`` gets ``-to<new>k``)."""
    tag = f"-{old // 1000}k-"
    if tag in name or name.endswith(tag[:-1]):
        head, _, tail = (name + "-").rpartition(tag)
        return f"{head}-{new // 1000}k-{tail}".rstrip("-")
    return f"{name}-to{new // 1000}k"


def write_meta(run_dir: Path, meta: dict) -> None:
    """Replace ``learning.json`` atomically (what run.py notes about the run)."""
    tmp = run_dir / "learning.json.tmp"
    tmp.write_text(json.dumps(meta) + "\n")
    tmp.replace(run_dir / "learning.json")


def read_meta(run_dir: Path, cfg: RunConfig) -> dict:
    """What ``run.py`` noted when it started the run (defaults for runs started without it)."""
    path = run_dir / "learning.json"
    meta = json.loads(path.read_text()) if path.exists() else {}
    meta.setdefault("name", run_dir.name.rsplit("-", 2)[0])  # drop the -<date>-<time> suffix
    meta.setdefault("command", "(started before run.py recorded its command)")
    meta.setdefault("threads", cfg.torch_threads)
    meta.setdefault("final_episodes", 100)
    return meta


def make_record(name: str, meta: dict, cfg: RunConfig, run_dir: Path, totals: dict) -> dict:
    """Evaluate the final agent with the paper's protocol (``softmod eval``'s, written to the run
    directory as ``eval_<E>ep.json`` too, where ``softmod report`` takes it from) and assemble the
    JSON record."""
    device = agent_device(cfg.device)
    protocol, final = evaluate_run(run_dir, meta["final_episodes"], device)
    write_eval_json(eval_json_path(run_dir, meta["final_episodes"]), protocol, final)
    return {
        "name": name,
        "command": meta["command"],
        "benchmark": cfg.env.benchmark,
        "goals": cfg.env.goals,
        "task": cfg.env.task,
        "method": cfg.method,
        "seed": cfg.seed,
        **{k: totals[k] for k in ("env_steps", "updates")},
        "horizon": cfg.env.horizon,
        "device": str(device),
        "precision": cfg.precision,
        "machine": machine(),
        "commit": meta.get("commit", commit()),  # the code the run started with
        "threads": meta["threads"],
        **{k: totals[k] for k in ("train_wall_s", "parameters")},
        "curve": read_curve(run_dir / "eval.csv"),
        "final_eval": final.to_json(),
        "run_dir": where(run_dir),
    }


def agent_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


if __name__ == "__main__":
    main()
