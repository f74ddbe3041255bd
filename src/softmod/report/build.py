"""``softmod report``: from run directories to tables, figures and ``index.html``.

Output layout under ``--out``::

    index.html            everything below on one page, viewable offline
    report.json           every number of the tables, the skipped runs, the routing summaries
    table1.md/.csv        Table 1 (mean ± std over seeds, IQM with 95 % bootstrap interval) and
                          the published reference rows (report/published.py) beside ours
    per_task.md/.csv      per-task breakdown
    table2.md             Table 2 (capacity variants), when capacity runs exist
    figures/curves_*.png  Figure 5, Figure 5 task by task (curves_fig5tasks_*), and Figure 6
                          capacity / ablation curves when those runs exist
    figures/tsne_*.png    Figure 4, per soft-modular group (its lowest seed)
    figures/routing_*.png Figure 3, per soft-modular group, 10 tasks per image
    data/tsne_*.csv       the t-SNE points (x, y, task) behind each Figure 4
    data/routing_*.json   the per-task mean routing probabilities behind each Figure 3
    videos/*.gif          the GIFs of the best run per method that has videos (softmod eval --video)

With ``at`` (``softmod report --at STEP|common``) every number is each run's evaluation at that
step, finished or not (equal samples; which evaluation: ``softmod.report.collect``), and the
routing figures use the run's full checkpoint of that step (``checkpoints/step-<STEP>.pt``) where
it was kept.
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from softmod.checkpoint import CheckpointError, step_checkpoint_name
from softmod.presets import ABLATIONS, CAPACITY_METHODS
from softmod.report import figures, tables
from softmod.report.collect import (
    GroupKey,
    ReportError,
    Run,
    Skipped,
    base_row,
    collect_runs,
    common_eval_step,
    curve_groups,
    find_run_dirs,
    group_runs,
    setting_label,
    slug,
)
from softmod.report.html import Section, write_index
from softmod.report.published import published_table
from softmod.report.routing import (
    RoutingData,
    embed_tsne,
    knn_task_accuracy,
    routing_of_run,
    subsample,
)
from softmod.report.stats import GroupStats, aggregate_curves, group_stats
from softmod.report.videos import video_section

TASKS_PER_ROUTING_FIGURE = 10
KNN_K = 5


@dataclass
class RoutingSummary:
    """The routing pictures of one soft-modular group, drawn from one run (its lowest seed)."""

    key: GroupKey
    run: Path
    seed: int
    points: int
    knn_embedding: float  # leave-one-out 5-NN task accuracy in the t-SNE plane
    knn_routing: float  # the same on the raw routing vectors
    chance: float  # 1 / tasks
    tsne: Path
    diagrams: list[Path]
    data: list[Path]  # the t-SNE points (CSV) and the per-task mean routing (JSON), to re-plot


@dataclass
class Report:
    """What ``build_report`` wrote and computed."""

    out: Path
    runs: list[Run]
    skipped: list[Skipped]
    groups: dict[GroupKey, list[Run]]
    stats: dict[GroupKey, GroupStats]
    routing: list[RoutingSummary] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    at: int | None = None  # the equal-samples step (--at), or None: final evaluations
    curves: dict[GroupKey, list[Run]] = field(default_factory=dict)  # Figure 5's (curve_groups)


def _stats(groups: dict[GroupKey, list[Run]], notes: list[str]) -> dict[GroupKey, GroupStats]:
    out = {}
    for key, runs in groups.items():
        tasks = runs[0].tasks
        same = [r for r in runs if r.tasks == tasks]
        if len(same) < len(runs):
            notes.append(f"{setting_label(*key[:2])} {key[2]}: runs with other task lists left out")
        seeds = [r.seed for r in same]
        if len(set(seeds)) < len(seeds):
            notes.append(f"{setting_label(*key[:2])} {key[2]}: several runs share a seed ({seeds})")
        out[key] = group_stats(seeds, tasks, [r.success for r in same], [r.episodes for r in same],
                               [r.returns for r in same])  # fmt: skip
    return out


def _is_capacity(row: str) -> bool:
    return base_row(row) in CAPACITY_METHODS


def _is_ablation(row: str) -> bool:
    return base_row(row) in ABLATIONS or base_row(row).endswith(("-no-obs", "-balance"))


def _curve_figures(report: Report, fig_dir: Path) -> list[tuple[Path, str, str]]:
    """Figure 5 per setting, and Figure 6 capacity / ablation curves where such runs exist."""
    made = []
    settings = sorted({(b, g) for b, g, _ in report.curves})
    for b, g in settings:
        rows = [r for bb, gg, r in report.curves if (bb, gg) == (b, g)]
        main = [r for r in rows if not _is_capacity(r) and not _is_ablation(r)]
        capacity = [r for r in rows if _is_capacity(r)]
        ablation = [r for r in rows if _is_ablation(r)]
        figs = [("fig5", "Figure 5: success rate during training", main or rows)]
        if capacity:
            extra = [r for r in ("mt-mh-sac", "soft-deep") if r in rows]
            figs.append(("fig6a", "Figure 6a: capacity variants", extra + capacity))
        if ablation:
            base = [r for r in ("soft-shallow", "soft-deep", "mt-mh-sac") if r in rows]
            figs.append(("fig6bc", "Figure 6b/c: ablations", base + ablation))
        for tag, title, selected in figs:
            series = []
            evals = set()
            for row in selected:
                runs = report.curves[(b, g, row)]
                steps, mean, std = aggregate_curves(
                    [(r.curve_steps, r.curve_success) for r in runs]
                )
                if len(steps):
                    series.append(figures.CurveSeries(row, steps, mean, std, len(runs)))
                evals |= {r.config.get("eval_episodes") for r in runs}
            if not series:
                continue
            counts = sorted(x for x in evals if x is not None)
            per = "/".join(str(e) for e in counts) + (" episode" if counts == [1] else " episodes")
            subtitle = f"mean over seeds, band ±1 std; periodic evaluation, {per} per task"
            path = fig_dir / f"curves_{tag}_{slug(b, g)}.png"
            figures.plot_curves(
                series, f"{title}, {setting_label(b, g)}", subtitle, path, mark=report.at
            )
            made.append((path, f"{title}, {setting_label(b, g)}", tag))
        made += _task_curve_figure(report, fig_dir, b, g, main or rows)
    return made


def _task_curve_figure(
    report: Report, fig_dir: Path, benchmark: str, goals: str, rows: list[str]
) -> list[tuple[Path, str, str]]:
    """Figure 5 task by task (``curves_fig5tasks_<setting>.png``): which tasks each method
    learns, and when; mean over seeds with the ±1 std band."""
    per_task: dict[str, list[figures.CurveSeries]] = {}
    for row in rows:
        runs = report.curves[(benchmark, goals, row)]
        for i, task in enumerate(runs[0].tasks):
            steps, mean, std = aggregate_curves(
                [(r.curve_steps, r.curve_tasks[:, i]) for r in runs if r.tasks == runs[0].tasks]
            )
            if len(steps) and not np.isnan(mean).all():
                per_task.setdefault(task, []).append(
                    figures.CurveSeries(row, steps, mean, std, len(runs))
                )
    if not per_task or len(per_task) < 2:  # one task: Figure 5 says it all
        return []
    title = f"Figure 5 task by task, {setting_label(benchmark, goals)}"
    path = fig_dir / f"curves_fig5tasks_{slug(benchmark, goals)}.png"
    subtitle = "success rate per task during training (periodic evaluation), mean over seeds"
    figures.plot_task_curves(per_task, title, subtitle, path, mark=report.at)
    return [(path, title, "fig5")]


def _write_routing_data(
    data_dir: Path, name: str, data: RoutingData, emb: np.ndarray, labels: np.ndarray
) -> list[Path]:
    """``data/tsne_<name>.csv`` (x, y, task) and ``data/routing_<name>.json`` (mean P per task)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    points = data_dir / f"tsne_{name}.csv"
    with points.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "task_index", "task"])
        for (x, y), t in zip(emb, labels, strict=True):
            w.writerow([f"{x:.6g}", f"{y:.6g}", int(t), data.task_names[t]])
    mean = data_dir / f"routing_{name}.json"
    payload = {
        name: {"layers": data.layers_mean[t].tolist(), "final": data.final_mean[t].tolist()}
        for t, name in enumerate(data.task_names)
    }
    mean.write_text(json.dumps(payload, indent=1) + "\n")
    return [points, mean]


def _routing_group(
    key: GroupKey,
    run: Run,
    episodes: int,
    max_points: int,
    device: torch.device,
    out_dir: Path,
    checkpoint: str = "final.pt",
) -> RoutingSummary:
    """Routing rollouts, t-SNE, kNN accuracy, the routing figures and data of one run."""
    fig_dir = out_dir / "figures"
    data = routing_of_run(run.path, episodes, device, checkpoint)
    keep = subsample(data.task, max_points, seed=run.seed)
    emb = embed_tsne(data.flat[keep], seed=run.seed)
    labels = data.task[keep]
    acc_emb = knn_task_accuracy(emb, labels, KNN_K)
    acc_raw = knn_task_accuracy(data.flat[keep], labels, KNN_K)
    t_count = len(data.task_names)
    b, g, row = key
    name = f"{row}, {setting_label(b, g)}, seed {run.seed}"
    name_part = slug(b, g, row, f"s{run.seed}")
    tsne = figures.plot_tsne(
        emb,
        labels,
        data.task_names,
        f"Figure 4: t-SNE of routing probabilities — {name}",
        f"{len(keep):,} states of {episodes} deterministic episode{'s' if episodes > 1 else ''} "
        "per task; "
        f"{KNN_K}-NN task accuracy {acc_emb:.0%} (chance {1 / t_count:.0%})",
        fig_dir / f"tsne_{name_part}.png",
    )
    diagrams = []
    chunks = math.ceil(t_count / TASKS_PER_ROUTING_FIGURE)
    for c in range(chunks):
        tasks = list(
            range(c * TASKS_PER_ROUTING_FIGURE, min(t_count, (c + 1) * TASKS_PER_ROUTING_FIGURE))
        )
        part = f" (tasks {tasks[0] + 1}-{tasks[-1] + 1} of {t_count})" if chunks > 1 else ""
        diagrams.append(
            figures.plot_routing_diagrams(
                data,
                tasks,
                f"Figure 3: routing per task — {name}{part}",
                f"{data.num_layers} module layers x {data.num_modules} modules; edge k -> j = "
                f"routing probability P[j,k] into the next layer, last edges = final weights; "
                f"mean over {episodes} episode{'s' if episodes > 1 else ''} x {data.horizon} "
                "steps per task",
                fig_dir / f"routing_{name_part}{f'_{c + 1}' if chunks > 1 else ''}.png",
            )
        )
    return RoutingSummary(
        key,
        run.path,
        run.seed,
        len(keep),
        acc_emb,
        acc_raw,
        1 / t_count,
        tsne,
        diagrams,
        _write_routing_data(out_dir / "data", name_part, data, emb, labels),
    )


def _finite(x: float) -> float | None:
    """A number for JSON: ``None`` for NaN (JSON has no NaN)."""
    return None if math.isnan(x) else float(x)


def _report_json(report: Report, notes: list[str]) -> dict:
    groups = []
    for (b, g, row), s in report.stats.items():
        task_returns = s.task_return_mean_std()[0]
        groups.append(
            {
                "benchmark": b,
                "goals": g,
                "setting": setting_label(b, g),
                "method": row,
                "seeds": s.seeds,
                "episodes_per_task": s.episodes,
                "mean": s.mean,
                "std": None if math.isnan(s.std) else s.std,
                "iqm": s.iqm,
                "iqm_ci": [s.iqm_low, s.iqm_high],
                "tasks": {t: float(s.task_mean[i]) for i, t in enumerate(s.tasks)},
                "return_mean": _finite(s.return_mean_std()[0]),
                "task_returns": dict(zip(s.tasks, map(_finite, task_returns), strict=True)),
                "runs": [str(r.path) for r in report.groups[(b, g, row)]],
                "sources": [r.source for r in report.groups[(b, g, row)]],
            }
        )
    return {
        "at": report.at,
        "groups": groups,
        "skipped": [{"run": str(s.path), "reason": s.reason} for s in report.skipped],
        "routing": [
            {
                "benchmark": r.key[0],
                "goals": r.key[1],
                "method": r.key[2],
                "run": str(r.run),
                "seed": r.seed,
                "points": r.points,
                "knn_accuracy_tsne": r.knn_embedding,
                "knn_accuracy_routing": r.knn_routing,
                "chance": r.chance,
                "tsne": r.tsne.name,
                "diagrams": [p.name for p in r.diagrams],
                "data": [str(p.relative_to(report.out)) for p in r.data],
            }
            for r in report.routing
        ],
        "notes": notes,
        "files": sorted(str(p.relative_to(report.out)) for p in report.files),
    }


def build_report(
    paths: list[Path],
    out: Path,
    routing_episodes: int = 2,
    tsne_max_points: int = 4000,
    routing: bool = True,
    device: torch.device | None = None,
    progress: bool = True,
    console: Console | None = None,
    at: int | str | None = None,
    videos: bool = True,
) -> Report:
    """Read the runs at or under ``paths`` and write the report into ``out`` (see module doc);
    ``at``: an env step, or ``"common"`` (the largest one every run reached), to compare every run
    at its evaluation there instead of its final one; ``videos``: copy the GIFs of
    ``softmod eval --video`` in (the best run per method that has them)."""
    console = console or Console(stderr=True)
    device = device or torch.device("cpu")
    if at == "common":
        at = common_eval_step(find_run_dirs(paths))
    if at is not None and (not isinstance(at, int) or at < 1):
        raise ReportError(f"at must be an env step >= 1 or 'common', got {at!r}")
    runs, skipped = collect_runs(paths, at)
    for s in skipped:
        console.print(f"[yellow]warning[/]: skipped {s.path}: {s.reason}")
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    notes: list[str] = []
    groups = group_runs(runs)
    report = Report(out, runs, skipped, groups, _stats(groups, notes), at=at,
                    curves=curve_groups(runs, skipped, at))  # fmt: skip
    ckpt = "final.pt" if at is None else step_checkpoint_name(at)
    soft = [(k, rs[0]) for k, rs in groups.items() if routing and rs[0].soft_modular]

    # tables
    t1, t1d = tables.table1(report.stats, at), tables.table1_details(report.stats)
    t1p = published_table(report.stats, at)  # issue 20: published reference rows, with sources
    per_task = tables.per_task_tables(report.stats)
    t2 = tables.table2(groups, report.stats)
    report.files += [tables.write_markdown(out / "table1.md", "Table 1", [t1, t1d, t1p])]
    report.files += [
        tables.write_markdown(out / "per_task.md", "Per-task success and return", per_task)
    ]
    report.files += tables.write_csvs(out, report.stats)
    if t2:
        report.files.append(tables.write_markdown(out / "table2.md", "Table 2", t2))

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not progress) as bar:
        job = bar.add_task("curves", total=1)
        curves = _curve_figures(report, fig_dir)
        bar.update(job, completed=1)
        job = bar.add_task("routing (rollouts, t-SNE, diagrams)", total=len(soft))
        for key, run in soft:
            bar.update(job, description=f"routing {key[2]} {setting_label(*key[:2])} s{run.seed}")
            try:
                report.routing.append(
                    _routing_group(key, run, routing_episodes, tsne_max_points, device, out, ckpt)
                )
            except CheckpointError as err:  # e.g. weights deleted: the tables still stand
                notes.append(f"no routing figures for {run.path}: {err}")
                console.print(f"[yellow]warning[/]: {notes[-1]}")
            bar.advance(job)
    report.files += [p for p, _, _ in curves]
    for r in report.routing:
        report.files += [r.tsne, *r.diagrams, *r.data]

    # the page
    n_settings = len({(b, g) for b, g, _ in groups})
    counted = (
        f"{len(runs)} runs in {len(groups)} groups (setting x method) over {n_settings} setting(s)"
    )
    if at is None:
        intro = [
            f"{counted}; final success from <code>eval_100ep.json</code> (softmod eval) where "
            "present, else the final weights' evaluation with the most episodes (softmod eval's "
            "<code>eval_&lt;N&gt;ep.json</code> or training's <code>final_eval.json</code>): the "
            "episodes behind each number are in the detailed table."
        ]
    else:
        intro = [
            f"{counted}; success at equal samples, {at:,} env steps: each run's evaluation at "
            "that step, finished or not (softmod eval of that step's weights where present, "
            "else the final evaluation of a run that finished there, else the periodic one of "
            "<code>eval.csv</code>), with the episodes per task in the detailed table; routing "
            "figures from "
            f"<code>checkpoints/{ckpt}</code>."
        ]
    intro += [
        f'<span class="warn">skipped {html.escape(str(s.path))}: {html.escape(s.reason)}</span>'
        for s in skipped
    ]
    intro += [f'<span class="warn">{html.escape(n)}</span>' for n in notes]
    sections = [
        Section(
            "Table 1: final success" if at is None else f"Table 1: success at {at:,} env steps",
            "table1",
            tables=[t1, t1d, t1p],
        ),
        Section(
            "Figure 5: training curves",
            "fig5",
            figures=[(p, c) for p, c, tag in curves if tag == "fig5"],
        ),
    ]
    fig6 = [(p, c) for p, c, tag in curves if tag != "fig5"]
    if t2 or fig6:
        sections.append(
            Section(
                "Table 2 and Figure 6: capacity and ablations", "table2", tables=t2, figures=fig6
            )
        )
    if report.routing:
        text = [
            f"{html.escape(r.key[2])}, {setting_label(*r.key[:2])}, seed {r.seed}: "
            f"{KNN_K}-NN task accuracy {r.knn_embedding:.1%} in the t-SNE plane, "
            f"{r.knn_routing:.1%} on the routing vectors (chance {r.chance:.1%}), "
            f"{r.points:,} states"
            for r in report.routing
        ]
        figs = []
        for r in report.routing:
            figs.append((r.tsne, f"Figure 4: t-SNE, {r.key[2]}, {setting_label(*r.key[:2])}"))
            figs += [
                (p, f"Figure 3: routing, {r.key[2]}, {setting_label(*r.key[:2])}")
                for p in r.diagrams
            ]
        sections.append(Section("Figures 3 and 4: routing", "routing", text=text, figures=figs))
    shown, gifs = video_section(groups, out) if videos else (None, [])  # issue 22
    if shown is not None:
        sections.append(shown)
        report.files += gifs
    sections.append(
        Section("Per-task success and return", "per-task", tables=per_task, collapsed=True)
    )
    links = ["table1.md", "table1.csv", "per_task.md", "per_task.csv", "report.json"]
    links += ["table2.md"] if t2 else []
    links += [str(p.relative_to(out)) for r in report.routing for p in r.data]
    runs_table = tables.Table(
        title="Runs",
        header=["run", "method", "setting", "seed", "numbers from", "episodes / task"],
        rows=[
            [
                str(r.path),
                r.row,
                setting_label(r.benchmark, r.goals),
                str(r.seed),
                r.source,
                str(r.episodes),
            ]
            for rs in groups.values()
            for r in rs
        ],
        anchor="runs",
    )
    files = " · ".join(f'<a href="{x}">{x}</a>' for x in links)
    sections.append(Section("Files and runs", "files", text=[files], tables=[runs_table]))
    (out / "report.json").write_text(json.dumps(_report_json(report, notes), indent=2) + "\n")
    report.files.append(out / "report.json")
    report.files.append(write_index(out, "softmod report", intro, sections))
    return report
