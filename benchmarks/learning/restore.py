"""Rebuild report-ready run directories from committed records, when the runs themselves are gone.

Usage (from the repository root)::

    python benchmarks/learning/restore.py benchmarks/results/learning/mt10-fixed-*-1000k-s*.json \
        --out runs/restored
    softmod report runs/restored --at 1000000 --no-routing --out report-at-1000k

The run directories of ``run.py`` live under ``runs/learning/`` and are not committed; a session
whose machine is not kept loses them, and with them what ``softmod report`` reads. A record
``benchmarks/results/learning/<name>.json`` (written by ``run.py`` after the final evaluation)
keeps what the report needs, and this script writes it back as a run directory
``OUT/<name>-restored/``:

- ``config.json``: the run's config, rebuilt from the record's own command (``run.py``'s options
  of the run's start, through ``run.py``'s ``new_run_config``; the budget is the record's) and
  checked against the record's method, seed, benchmark, goals, task, precision and horizon;
- ``eval.csv``: the periodic evaluations (the record's ``curve``);
- ``eval_<N>ep.json``: the final evaluation (N = 100 episodes per task: DESIGN §6) of the final
  weights, at the record's step; ``final_eval.json``: the last periodic evaluation at that step;
- ``params.json``: the parameter counts; ``RESTORED.md``: where it all came from.

A ``partial.py`` record (runs that had not reached their budget when it was written) gives one
directory per run, ``OUT/<record name>-<run label>-restored/``, with ``config.json`` (the run's own
budget), ``eval.csv`` up to the step it had reached, ``RESTORED.md``, and no final evaluation: like
the unfinished run itself, ``softmod report`` skips it unless ``--at STEP`` names a step it
reached (``equal_samples.py`` reads it as it is). So a run whose machine was lost before it
finished still enters the tables at equal samples.

There are no checkpoints, videos, ``train.csv`` or TensorBoard files: a report on restored runs
takes ``--no-routing --no-videos``. A record that is neither (a ``run.py`` record without a final
evaluation, say), a command that is not ``run.py``'s, a config that disagrees with its record, or
an existing output directory is a one-line error (exit 2), before anything is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partial import row_tasks
from run import ROOT, die, new_run_config, parser

from softmod.config import RunConfig, save_config
from softmod.evaluate import FINAL_EVAL, eval_json_path

SCRIPT = "restore.py"
CHECKED = ("method", "seed", "benchmark", "goals", "task", "precision", "horizon")


def record_config(record: dict, source: str) -> RunConfig:
    """The run's config from the record's command (its first ``run.py`` call: the run's start),
    with the record's budget (a ``run.py`` record's ``env_steps``, a ``partial.py`` run's
    ``budget``); a mismatch with the record's own fields is a ValueError."""
    first = record["command"].split(" && ")[0]
    words = shlex.split(first)
    if len(words) < 2 or not words[1].endswith("run.py"):
        raise ValueError(f"{source}: the command is not run.py's: {first!r}")
    a = parser().parse_args(words[2:])
    if a.resume is not None:
        raise ValueError(f"{source}: the command resumes {str(a.resume)!r}; its start is unknown")
    a.budget = int(record["budget"] if "budget" in record else record["env_steps"])
    cfg = new_run_config(a)
    made = {"method": cfg.method, "seed": cfg.seed, "benchmark": cfg.env.benchmark,
            "goals": cfg.env.goals, "task": cfg.env.task, "precision": cfg.precision,
            "horizon": cfg.env.horizon}  # fmt: skip
    for key in CHECKED:
        if key in record and made[key] != record[key]:
            raise ValueError(
                f"{source}: {key} {made[key]!r} from the command, {record[key]!r} in the record"
            )
    return cfg


def _write_run(run_dir: Path, cfg: RunConfig, record: dict, note: str) -> None:
    """What every restored directory has: ``config.json``, ``eval.csv`` (the record's curve),
    ``params.json`` where the record has the counts, and ``RESTORED.md`` (``note`` first)."""
    curve = record.get("curve") or []
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.json")
    if curve:
        columns = list(dict.fromkeys(k for row in curve for k in row))
        with (run_dir / "eval.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(curve)
    if record.get("parameters"):
        (run_dir / "params.json").write_text(json.dumps(record["parameters"], indent=2) + "\n")
    (run_dir / "RESTORED.md").write_text(
        f"{note} The original run directory was `{record.get('run_dir', '?')}`; its checkpoints, "
        "videos and train.csv are not in the record.\n"
    )


def _source(record: dict, name: str) -> str:
    """Where a restored directory came from: the record, its commit and machine."""
    cpu = (record.get("machine") or {}).get("cpu", "?")
    return (
        f"Rebuilt by benchmarks/learning/restore.py from `{name}` (softmod commit "
        f"{record.get('commit', '?')}, trained on {cpu})."
    )


def is_partial(record: dict) -> bool:
    """A ``partial.py`` record (``runs``, each with its curve) rather than one of ``run.py``."""
    return isinstance(record.get("runs"), list)


def planned(record: dict, path: Path, out: Path) -> list[tuple[Path, RunConfig, dict]]:
    """Each run of a record: (directory to write, its config, the run's part of the record);
    anything that cannot be restored is a ValueError, before anything is written."""
    if not is_partial(record):
        if not (record.get("final_eval") or {}).get("tasks"):
            raise ValueError(f"{path}: no final evaluation, and not a partial.py record")
        return [(out / f"{record['name']}-restored", record_config(record, str(path)), record)]
    if not record["runs"]:
        raise ValueError(f"{path}: a partial.py record without runs")
    found = []
    for run in record["runs"]:
        label = str(run.get("label") or f"{run['method']} s{run['seed']}").replace(" ", "-")
        cfg = record_config(run, f"{path} ({label})")
        if not run.get("curve"):
            raise ValueError(f"{path} ({label}): no periodic evaluation in the record")
        found.append((out / f"{record['name']}-{label}-restored", cfg, run))
    return found


def restore(record_path: Path, out: Path) -> list[Path]:
    """Write the run directories of one record under ``out``; returns them."""
    record = json.loads(record_path.read_text())
    runs = planned(record, record_path, out)
    for run_dir, _, _ in runs:
        if run_dir.exists():
            raise ValueError(f"{run_dir} exists already (remove it to restore again)")
    note = _source(record, record_path.name)
    if is_partial(record):
        for run_dir, cfg, run in runs:
            reached = int(run.get("reached_env_steps") or run["curve"][-1]["step"])
            left = f"Unfinished: it had reached {reached:,} of {cfg.total_steps:,} env steps."
            _write_run(run_dir, cfg, run, f"{note} {left} No final evaluation.")
        return [d for d, _, _ in runs]
    ((run_dir, cfg, _),) = runs
    final, curve = record["final_eval"], record.get("curve") or []
    step = int(record["env_steps"])
    _write_run(run_dir, cfg, record, note)
    episodes = int(final["episodes_per_task"])
    eval_json_path(run_dir, episodes).write_text(json.dumps(
        {"step": step, "checkpoint": "final.pt", "restored_from": record_path.name, **final},
        indent=2) + "\n")  # fmt: skip
    last = curve[-1] if curve and int(curve[-1]["step"]) == step else None
    if last is not None:
        final_eval = {"step": step, "episodes_per_task": cfg.eval_episodes,
                      "mean_success": last.get("eval/mean_success"),
                      "tasks": row_tasks(last)}  # fmt: skip
        (run_dir / FINAL_EVAL).write_text(json.dumps(final_eval, indent=2) + "\n")
    return [run_dir]


def main(argv: list[str] | None = None) -> list[Path]:
    """Restore every record named on the command line; returns the run directories."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", nargs="+", type=Path,
                   help="run.py records (<name>.json) or partial.py records")  # fmt: skip
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "restored")
    a = p.parse_args(argv)
    for path in a.records:  # every check before anything is written
        try:
            runs = planned(json.loads(path.read_text()), path, a.out)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            die(SCRIPT, str(err) if isinstance(err, ValueError) else f"{path}: {err}")
        for run_dir, _, _ in runs:
            if run_dir.exists():
                die(SCRIPT, f"{run_dir} exists already (remove it to restore again)")
    dirs = [d for path in a.records for d in restore(path, a.out)]
    for d in dirs:
        print(d)
    return dirs


if __name__ == "__main__":
    main()
