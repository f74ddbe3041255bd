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

There are no checkpoints, videos, ``train.csv`` or TensorBoard files: a report on restored runs
takes ``--no-routing --no-videos``. A record without a final evaluation, a command that is not
``run.py``'s, a config that disagrees with its record, or an existing output directory is a
one-line error (exit 2), before anything is written.
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
    with the record's budget; a mismatch with the record's own fields is a ValueError."""
    first = record["command"].split(" && ")[0]
    words = shlex.split(first)
    if len(words) < 2 or not words[1].endswith("run.py"):
        raise ValueError(f"{source}: the command is not run.py's: {first!r}")
    a = parser().parse_args(words[2:])
    if a.resume is not None:
        raise ValueError(f"{source}: the command resumes {str(a.resume)!r}; its start is unknown")
    a.budget = int(record["env_steps"])
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


def restore(record_path: Path, out: Path) -> Path:
    """Write one record's run directory under ``out``; returns it."""
    record = json.loads(record_path.read_text())
    final = record.get("final_eval") or {}
    if not final.get("tasks"):
        raise ValueError(f"{record_path}: no final evaluation (a partial record?)")
    cfg = record_config(record, str(record_path))
    run_dir = out / f"{record['name']}-restored"
    if run_dir.exists():
        raise ValueError(f"{run_dir} exists already (remove it to restore again)")
    step, curve = int(record["env_steps"]), record.get("curve") or []
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.json")
    if curve:
        columns = list(dict.fromkeys(k for row in curve for k in row))
        with (run_dir / "eval.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(curve)
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
    if record.get("parameters"):
        (run_dir / "params.json").write_text(json.dumps(record["parameters"], indent=2) + "\n")
    (run_dir / "RESTORED.md").write_text(
        f"Rebuilt by benchmarks/learning/restore.py from `{record_path.name}` (softmod commit "
        f"{record.get('commit', '?')}, trained on {record.get('machine', {}).get('cpu', '?')}).\n"
        f"The original run directory was `{record.get('run_dir', '?')}`; its checkpoints, videos "
        "and train.csv are not in the record.\n"
    )
    return run_dir


def main(argv: list[str] | None = None) -> list[Path]:
    """Restore every record named on the command line; returns the run directories."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", nargs="+", type=Path, help="run.py records (<name>.json)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "restored")
    a = p.parse_args(argv)
    for path in a.records:  # every check before anything is written
        try:
            record = json.loads(path.read_text())
            if not (record.get("final_eval") or {}).get("tasks"):
                raise ValueError(f"{path}: no final evaluation (a partial record?)")
            record_config(record, str(path))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            die(SCRIPT, str(err) if isinstance(err, ValueError) else f"{path}: {err}")
        if (a.out / f"{record['name']}-restored").exists():
            die(SCRIPT, f"{a.out / (record['name'] + '-restored')} exists already "
                        "(remove it to restore again)")  # fmt: skip
    dirs = [restore(path, a.out) for path in a.records]
    for d in dirs:
        print(d)
    return dirs


if __name__ == "__main__":
    main()
