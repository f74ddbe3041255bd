"""Draw the learning results recorded by ``run.py`` as PNG curves, and a markdown summary.

Usage: ``python benchmarks/learning/plot.py`` (reads and writes ``benchmarks/results/learning/``).
One figure per group of records: single-task runs (one line per task) and each multi-task
benchmark/setting (one line per method, with per-task final success bars beside it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from softmod.report.collect import variant

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "learning"


def load(results: Path = RESULTS) -> list[dict]:
    """Every record written by ``run.py`` (not the curve-only records of ``partial.py``)."""
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    return [r for r in records if "final_eval" in r]


def group_key(rec: dict) -> str:
    """Single-task runs share one figure; multi-task runs one per benchmark and setting; both
    one per budget (a 120k check and a 1M run are not drawn on one axis)."""
    bench = "single-task" if rec["benchmark"] == "mt1" else rec["benchmark"]
    return f"{bench}-{rec['goals']}-{rec['env_steps'] // 1000}k"


def label(rec: dict) -> str:
    """The task (single-task runs) or method, with the report's variant (precision, horizon) and
    the seed: ``soft-shallow [bf16, h500] s0``."""
    what = rec["task"] if rec["benchmark"] == "mt1" else rec["method"]
    cfg = {"precision": rec.get("precision", "fp32"),
           "env": {"benchmark": rec["benchmark"], "horizon": rec.get("horizon", 150)}}  # fmt: skip
    var = variant(cfg)
    return f"{what}{f' [{var}]' if var else ''} s{rec['seed']}"


def mean_return(rec: dict) -> float:
    """The final evaluation's mean return over tasks (nan for records made before it was kept)."""
    tasks = rec["final_eval"]["tasks"].values()
    return sum(float(t.get("return", "nan")) for t in tasks) / len(tasks)


def plot_group(key: str, recs: list[dict], out: Path) -> Path:
    """Success against environment steps (periodic evaluations) plus final per-task success."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    names = []
    for rec in recs:
        name = label(rec)
        steps = [row["step"] for row in rec["curve"]]
        success = [100 * row["eval/mean_success"] for row in rec["curve"]]
        final = 100 * rec["final_eval"]["mean_success"]
        ax.plot(steps, success, marker="o", ms=3 if len(steps) < 40 else 0,
                label=f"{name} (final {final:.0f}%)")  # fmt: skip
        names.append(name)
    ax.set_xlabel("environment steps (all tasks)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=9, framealpha=0.9)
    ax.set_title("periodic evaluation (deterministic, few episodes/task)")
    # every record's tasks (single-task runs: one task each, one bar per task, no grouping)
    tasks = list(dict.fromkeys(t for r in recs for t in r["final_eval"]["tasks"]))
    shared = all(len(r["final_eval"]["tasks"]) == len(tasks) for r in recs)
    # bars side by side: every record at every task (shared), or the records of one task (an fp32
    # and a bf16 run of reach-v3) next to each other
    peers = [[r for r in recs if t in r["final_eval"]["tasks"]] for t in tasks]
    width = 0.8 / (len(recs) if shared else max(len(p) for p in peers) + 0.33)
    for i, rec in enumerate(recs):
        own = rec["final_eval"]["tasks"]
        if shared:
            shift = (i - (len(recs) - 1) / 2) * width
        else:
            same = next(p for p, t in zip(peers, tasks, strict=True) if t in own)
            shift = (same.index(rec) - (len(same) - 1) / 2) * width
        xs = [j + shift for j, t in enumerate(tasks) if t in own]
        bars = bx.bar(xs, [100 * own[t]["success"] for t in tasks if t in own], width,
                      label=names[i])  # fmt: skip
        if not shared:  # few bars: print the value (a 0% bar is otherwise invisible)
            bx.bar_label(bars, fmt="%.0f%%", fontsize=8)
    bx.set_xticks(range(len(tasks)))
    bx.set_xticklabels([t.removesuffix("-v3") for t in tasks], rotation=40, ha="right", fontsize=8)
    bx.set_ylabel("final success (%)")
    bx.set_ylim(0, 105)
    bx.set_title(f"final evaluation ({recs[0]['final_eval']['episodes_per_task']} episodes/task)")
    if len(recs) > 1:
        bx.legend(fontsize=8)
    budget = max(r["env_steps"] for r in recs)
    cpus = ", ".join(sorted({r["machine"]["cpu"] for r in recs}))
    fig.suptitle(f"softmod learning check: {key}, budget {budget:,} env steps, {cpus}")
    fig.tight_layout()
    path = out / f"{key}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary(records: list[dict]) -> str:
    """A markdown table of every record's final result."""
    lines = [
        "| benchmark | task / method, seed | env steps | final success (100 ep/task) | "
        "mean return | wall | device |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ret = mean_return(r)
        lines.append(
            f"| {r['benchmark']}-{r['goals']} | {label(r)} | {r['env_steps']:,} | "
            f"{100 * r['final_eval']['mean_success']:.1f}% | "
            f"{'–' if ret != ret else f'{ret:.0f}'} | {r['train_wall_s'] / 60:.0f} min | "
            f"{r['device']} ({r['machine']['cpu']}, {r['threads']} thread) |"
        )
    return "\n".join(lines) + "\n"


def main(results: Path = RESULTS) -> None:
    """Plot every group of the records in ``results`` and write ``summary.md`` there."""
    records = load(results)
    groups: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        groups[group_key(rec)].append(rec)
    for key, recs in groups.items():
        print(plot_group(key, recs, results))
    (results / "summary.md").write_text(summary(records))
    print(results / "summary.md")


if __name__ == "__main__":
    main()
