"""The paper's tables from grouped runs: Table 1 (success per method and setting, with IQM), the
per-task breakdown and Table 2 (capacity variants, parameters relative to soft-deep).

Each table is built once as a :class:`Table` (header and text cells) and written as markdown and
HTML; the CSV files hold the same numbers unrounded, one row per group (or per group and task).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from softmod.presets import CAPACITY_METHODS
from softmod.report.collect import GroupKey, Run, row_sort_key, setting_label
from softmod.report.stats import GroupStats

REFERENCE = "soft-deep"  # Table 2 reports parameters relative to Ours (Deep)
TABLE2_ROWS = ("mt-mh-sac", *CAPACITY_METHODS, "soft-shallow", "soft-deep")


@dataclass
class Table:
    """A titled table of text cells, rendered as markdown (here) or HTML (``report.html``)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    anchor: str = ""
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The table as a markdown section (title, caption, pipe table)."""
        lines = [f"## {self.title}", ""]
        if self.caption:
            lines += [self.caption, ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append(
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|"
        )
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines.append("")
        return "\n".join(lines)


def pct(x: float, digits: int = 1) -> str:
    """A rate in [0, 1] as a percentage without the sign; NaN as a dash."""
    return "–" if math.isnan(x) else f"{100 * x:.{digits}f}"


def mean_pm_std(mean: float, std: float) -> str:
    """``87.0 ± 2.1`` (percent), or ``87.0`` when there is one seed."""
    return pct(mean) if math.isnan(std) else f"{pct(mean)} ± {pct(std)}"


def return_pm_std(mean: float, std: float) -> str:
    """A mean episode return ``616 ± 40`` (no decimals), ``616`` for one seed, a dash for none."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.0f}" if math.isnan(std) else f"{mean:.0f} ± {std:.0f}"


def _settings(stats: dict[GroupKey, GroupStats]) -> list[tuple[str, str]]:
    return sorted({(b, g) for b, g, _ in stats})


def _rows(stats: dict[GroupKey, GroupStats]) -> list[str]:
    return sorted({r for _, _, r in stats}, key=row_sort_key)


def table1(stats: dict[GroupKey, GroupStats], at: int | None = None) -> Table:
    """Table 1: success (%) per method (rows) and setting (columns), mean ± std over seeds;
    final, or at the equal-samples step ``at`` of ``softmod report --at``."""
    settings = _settings(stats)
    rows = []
    for row in _rows(stats):
        cells = [row]
        for b, g in settings:
            s = stats.get((b, g, row))
            cells.append("" if s is None else f"{mean_pm_std(s.mean, s.std)} ({s.n})")
        rows.append(cells)
    return Table(
        title="Table 1: final success rate (%)"
        if at is None
        else f"Table 1: success rate (%) at {at:,} env steps (equal samples)",
        header=["method", *(setting_label(b, g) for b, g in settings)],
        rows=rows,
        caption="Mean ± standard deviation over seeds of the success rate averaged over tasks "
        "(number of seeds in brackets); deterministic actions, success at any step.",
        anchor="table1",
    )


def table1_details(stats: dict[GroupKey, GroupStats]) -> Table:
    """Every group with its seeds, episodes, mean ± std and IQM with its 95 % bootstrap interval."""
    rows = []
    for (b, g, row), s in stats.items():
        episodes = sorted(set(s.episodes))
        rows.append(
            [
                setting_label(b, g),
                row,
                ", ".join(str(x) for x in s.seeds),
                "/".join(str(e) for e in episodes),
                mean_pm_std(s.mean, s.std),
                f"{pct(s.iqm)} [{pct(s.iqm_low)}, {pct(s.iqm_high)}]",
                return_pm_std(*s.return_mean_std()),
            ]
        )
    return Table(
        title="Table 1 in detail: mean ± std and interquartile mean (%)",
        header=[
            "setting",
            "method",
            "seeds",
            "episodes / task",
            "mean ± std",
            "IQM [95% CI]",
            "mean return",
        ],
        rows=rows,
        caption="IQM: mean of the middle 50 % of all (seed, task) success rates; 95 % percentile "
        "bootstrap interval, runs resampled per task (2,000 replicates). Mean return: the "
        "episode return averaged over tasks, mean ± std over seeds.",
        anchor="table1-details",
    )


def per_task_tables(stats: dict[GroupKey, GroupStats]) -> list[Table]:
    """Per setting, success (%) per task (rows) and method (columns), mean ± std over seeds; then
    the mean episode return the same way, where every method of the setting has one."""
    tables = []
    for b, g in _settings(stats):
        tables.append(_per_task(stats, b, g, returns=False))
        if all(s.has_returns for (sb, sg, _), s in stats.items() if (sb, sg) == (b, g)):
            tables.append(_per_task(stats, b, g, returns=True))
    return tables


def _per_task(stats: dict[GroupKey, GroupStats], b: str, g: str, returns: bool) -> Table:
    """One setting's per-task table of success (%) or, with ``returns``, of mean return."""
    rows_present = [r for r in _rows(stats) if (b, g, r) in stats]
    tasks: list[str] = []
    for r in rows_present:
        tasks += [t for t in stats[(b, g, r)].tasks if t not in tasks]
    fmt = return_pm_std if returns else mean_pm_std
    columns = []  # per method: {task: cell}, then the mean over tasks
    for r in rows_present:
        s = stats[(b, g, r)]
        mean, std = s.task_return_mean_std() if returns else (s.task_mean, s.task_std)
        overall = s.return_mean_std() if returns else (s.mean, s.std)
        cells = {t: fmt(mean[i], std[i]) for i, t in enumerate(s.tasks)}
        columns.append((cells, fmt(*overall)))
    body = [[task, *(cells.get(task, "") for cells, _ in columns)] for task in tasks]
    body.append(["mean over tasks", *(overall for _, overall in columns)])
    return Table(
        title=f"Per-task return, {setting_label(b, g)}"
        if returns
        else f"Per-task success (%), {setting_label(b, g)}",
        header=["task", *rows_present],
        rows=body,
        caption="Mean ± std over seeds of each task's mean episode return (deterministic actions, "
        "the same episodes as the success)."
        if returns
        else "Mean ± std over seeds of each task's success rate.",
        anchor=f"per-task-return-{b}-{g}" if returns else f"per-task-{b}-{g}",
    )


def _net_shape(run: Run) -> tuple[str, str]:
    """Hidden layers and units of an MLP-trunk policy, dashes otherwise."""
    hidden = run.config.get("policy_net", {}).get("hidden")
    if not hidden:
        return "–", "–"
    return str(len(hidden)), str(hidden[0])


def _reference_params(
    benchmark: str, goals: str, groups: dict[GroupKey, list[Run]]
) -> float | None:
    """soft-deep's policy parameters: from its runs, else computed for MT10/MT50 (39-D obs)."""
    ref_runs = groups.get((benchmark, goals, REFERENCE), [])
    counts = [r.policy_params for r in ref_runs if r.policy_params]
    if counts:
        return sum(counts) / len(counts)
    if benchmark in ("mt10", "mt50"):
        from softmod.params import BENCHMARK_TASKS, method_parameter_counts

        return float(method_parameter_counts(REFERENCE, BENCHMARK_TASKS[benchmark])["policy"])
    return None


def table2(groups: dict[GroupKey, list[Run]], stats: dict[GroupKey, GroupStats]) -> list[Table]:
    """Table 2 for every setting with capacity-variant runs: success and policy parameters
    relative to soft-deep."""
    tables = []
    for b, g in _settings(stats):
        if not any((b, g, m) in stats for m in CAPACITY_METHODS):
            continue
        ref = _reference_params(b, g, groups)
        body = []
        for row in TABLE2_ROWS:
            if (b, g, row) not in stats:
                continue
            s, runs = stats[(b, g, row)], groups[(b, g, row)]
            counts = [r.policy_params for r in runs if r.policy_params]
            params = sum(counts) / len(counts) if counts else None
            rel = f"{params / ref:.1f}x" if params and ref else "–"
            layers, units = _net_shape(runs[0])
            body.append(
                [
                    row,
                    f"{mean_pm_std(s.mean, s.std)} ({s.n})",
                    f"{params:,.0f}" if params else "–",
                    rel,
                    layers,
                    units,
                ]
            )
        tables.append(
            Table(
                title=f"Table 2: capacity, {setting_label(b, g)}",
                header=[
                    "method",
                    "success % (seeds)",
                    "policy params",
                    f"x {REFERENCE}",
                    "layers",
                    "units",
                ],
                rows=body,
                caption="Success mean ± std over seeds; parameters of the policy network "
                f"(params.json) relative to {REFERENCE}.",
                anchor=f"table2-{b}-{g}",
            )
        )
    return tables


def write_csvs(out: Path, stats: dict[GroupKey, GroupStats]) -> list[Path]:
    """``table1.csv`` (one row per group) and ``per_task.csv`` (per group and task), percent,
    unrounded."""
    t1, pt = out / "table1.csv", out / "per_task.csv"
    with t1.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "benchmark",
                "goals",
                "setting",
                "method",
                "n_seeds",
                "seeds",
                "episodes_per_task",
                "success_mean_pct",
                "success_std_pct",
                "iqm_pct",
                "iqm_ci_low_pct",
                "iqm_ci_high_pct",
                "return_mean",
                "return_std",
            ]
        )
        for (b, g, row), s in stats.items():
            w.writerow(
                [
                    b,
                    g,
                    setting_label(b, g),
                    row,
                    s.n,
                    " ".join(map(str, s.seeds)),
                    " ".join(map(str, s.episodes)),
                    100 * s.mean,
                    100 * s.std,
                    100 * s.iqm,
                    100 * s.iqm_low,
                    100 * s.iqm_high,
                    *s.return_mean_std(),
                ]
            )
    with pt.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "benchmark",
                "goals",
                "setting",
                "method",
                "task",
                "n_seeds",
                "success_mean_pct",
                "success_std_pct",
                "return_mean",
                "return_std",
            ]
        )
        for (b, g, row), s in stats.items():
            ret_mean, ret_std = s.task_return_mean_std()
            for i, task in enumerate(s.tasks):
                w.writerow(
                    [
                        b,
                        g,
                        setting_label(b, g),
                        row,
                        task,
                        s.n,
                        100 * s.task_mean[i],
                        100 * s.task_std[i],
                        ret_mean[i],
                        ret_std[i],
                    ]
                )
    return [t1, pt]


def write_markdown(path: Path, title: str, tables: list[Table]) -> Path:
    """Write tables as one markdown file."""
    path.write_text(f"# {title}\n\n" + "\n".join(t.to_markdown() for t in tables))
    return path
