"""Whether two runs of the same method and seed are the same run: their periodic evaluations
compared at every step both reached.

Usage: ``python benchmarks/learning/replay_check.py NAME RUN RUN [--out DIR]`` (each RUN a run
directory or a ``run.py`` record) writes ``NAME.json`` and ``NAME.md`` under
``benchmarks/results/learning/`` (or ``DIR``) and prints the verdict.

Why: run 2 of issue 18 trains soft-shallow and MT-MH-SAC seed 0 to 3M from step 0 again (the 1M
run directories went with their machine). On the CPU a run is deterministic for its seed and a
resumed run is bit-identical to one that never stopped, so up to 1M the new runs should repeat
the finished 1M runs exactly, across every session's stop and resume; a bf16 run only on the same
kind of CPU (the bf16 kernels differ between AVX512-BF16 and AMX). This checks that on the real
benchmark: every ``eval/`` value of ``eval.csv`` (six significant digits) at every common step,
and the first step where they differ, if any.

Bad input (not a run, runs that differ in benchmark, goals, horizon, method, seed or precision,
no common step) is a one-line error before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS, commit, die, load_run, machine

from softmod.bench.report import bf16_line

SCRIPT = "replay_check.py"
SAME = ("benchmark", "goals", "horizon", "method", "seed", "precision")


def compare(a: list[dict], b: list[dict]) -> dict:
    """Row by row over the steps both curves have: ``{"steps", "identical", "first_difference",
    "differences"}``, each difference ``{"step", "keys", "mean_success", "mean_return"}`` (the
    two runs' values of those two)."""
    by_step = {int(r["step"]): r for r in b}
    steps, differences = [], []
    for row in a:
        step = int(row["step"])
        if step not in by_step:
            continue
        steps.append(step)
        other = by_step[step]
        keys = sorted(k for k in set(row) | set(other)
                      if k.startswith("eval/") and row.get(k) != other.get(k))  # fmt: skip
        if keys:
            differences.append({
                "step": step, "keys": len(keys),
                "mean_success": [row.get("eval/mean_success"), other.get("eval/mean_success")],
                "mean_return": [row.get("eval/mean_return"), other.get("eval/mean_return")],
            })  # fmt: skip
    return {"steps": steps, "identical": not differences,
            "first_difference": differences[0]["step"] if differences else None,
            "differences": differences}  # fmt: skip


def _cpu(m: dict) -> str:
    """A ``machine()`` dict in a few words: the CPU, its cores and bf16 instructions."""
    return f"{m.get('cpu', '?')}, {m.get('cpus', '?')} cores, {bf16_line(m)}"


def _md(record: dict) -> str:
    a, b = record["runs"]
    c = record["comparison"]
    steps = c["steps"]
    span = f"{len(steps)} evaluations from {steps[0]:,} to {steps[-1]:,} env steps"
    lines = [f"# {record['name']}", "",
             f"`{a['label']}` against `{b['label']}` ({a['method']} seed {a['seed']}, "
             f"{a['precision']}, {a['benchmark']}-{a['goals']} at horizon {a['horizon']}): {span}.",
             ""]  # fmt: skip
    if c["identical"]:
        lines.append("**Identical**: every `eval/` value of every common evaluation is equal.")
    else:
        lines += [f"**They differ from {c['first_difference']:,} on** "
                  f"({len(c['differences'])} of {len(steps)} evaluations differ).", "",
                  "| step | values that differ | mean success | mean return |",
                  "|---:|---:|---|---|"]  # fmt: skip
        for d in c["differences"]:
            s, r = d["mean_success"], d["mean_return"]
            lines.append(f"| {d['step']:,} | {d['keys']} | {s[0]} / {s[1]} | {r[0]} / {r[1]} |")
    trained = [f"`{r['label']}` on {_cpu(r['machine'])}" for r in record["runs"] if r["machine"]]
    if trained:
        lines += ["", f"Trained: {'; '.join(trained)} (a run directory does not note its machine)."]
    lines += ["", f"Checked on {_cpu(record['machine'])}, commit {record['commit']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Check both runs, compare them, write ``NAME.json`` and ``NAME.md``; returns the record."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("runs", type=Path, nargs=2, help="run directories or run.py records")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    try:
        runs = [load_run(r) for r in a.runs]
    except ValueError as err:
        die(SCRIPT, str(err))
    for key in SAME:
        if runs[0][key] != runs[1][key]:
            die(SCRIPT, f"{runs[1]['label']} has {key} {runs[1][key]!r}; allowed: "
                        f"{runs[0][key]!r}, as {runs[0]['label']}")  # fmt: skip
    comparison = compare(runs[0]["curve"], runs[1]["curve"])
    if not comparison["steps"]:
        die(SCRIPT, f"{runs[0]['label']} and {runs[1]['label']} share no evaluation step")
    record = {"name": a.name, "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs],
              "comparison": comparison, "machine": machine(), "commit": commit()}  # fmt: skip
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    (a.out / f"{a.name}.md").write_text(_md(record))
    verdict = ("identical" if comparison["identical"]
               else f"differ from {comparison['first_difference']:,}")  # fmt: skip
    print(f"{a.name}: {len(comparison['steps'])} common evaluations, {verdict}")
    return record


if __name__ == "__main__":
    main()
