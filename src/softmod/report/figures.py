"""The paper's figures with Matplotlib: training curves (Fig. 5, 6, and Fig. 5 task by task),
t-SNE of routing probabilities (Fig. 4) and routing diagrams per task (Fig. 3).

Figures are plain :class:`matplotlib.figure.Figure` objects rendered by the non-interactive Agg
canvas: no window opens, pyplot's global state and the user's backend are left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from softmod.report.collect import base_row
from softmod.report.routing import RoutingData

DPI = 120


@dataclass(frozen=True)
class CurveSeries:
    """One line of a training-curve figure: mean over seeds and its ±1 std band."""

    label: str
    steps: np.ndarray
    mean: np.ndarray  # success rate in [0, 1]
    std: np.ndarray  # NaN where there is one seed (no band)
    n: int


_ROW_COLORS = {
    "mt-sac": "tab:blue",
    "mt-mh-sac": "tab:orange",
    "mix-expert": "tab:purple",
    "hard-routing": "tab:brown",
    "single-task-sac": "tab:gray",
    "soft-shallow": "tab:green",
    "soft-deep": "tab:red",
    "mt-mh-sac-4": "tab:olive",
    "mt-mh-sac-5": "tab:cyan",
    "mt-mh-sac-6": "tab:pink",
    "mt-mh-sac-4-wide": "darkgoldenrod",
    "mt-mh-sac-5-wide": "navy",
}


def row_style(row: str) -> tuple[Any, str]:
    """Colour and line style of a method row, the same in every figure: an ablation keeps its
    base method's colour, dashed when the balance weights differ, dotted without observation
    routing, dash-dotted for both; a variant (``soft-shallow [bf16]``, see
    :func:`softmod.report.collect.variant`) keeps its row's colour, darker."""
    base, no_obs, balance = base_row(row), False, False
    for suffix in ("-no-balance", "-balance"):
        if base.endswith(suffix) and base[: -len(suffix)]:
            base, balance = base[: -len(suffix)], True
    if base.endswith("-no-obs"):
        base, no_obs = base[: -len("-no-obs")], True
    color: Any = _ROW_COLORS.get(base, colormaps["tab10"](sum(map(ord, base)) % 10))
    if base_row(row) != row:  # a variant: the same hue, darker
        r, g, b = to_rgb(color)
        color = (0.55 * r, 0.55 * g, 0.55 * b)
    style = {(False, False): "-", (False, True): "--", (True, False): ":", (True, True): "-."}
    return color, style[(no_obs, balance)]


def task_colors(n: int) -> list[tuple]:
    """``n`` distinct colours for task scatter plots (tab10, tab20, then tab20 + b + c)."""
    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    pool = [colormaps[m](i) for m in ("tab20", "tab20b", "tab20c") for i in range(20)]
    return [pool[i % len(pool)] for i in range(n)]


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (no pyplot, no window)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def plot_curves(
    series: list[CurveSeries], title: str, subtitle: str, path: Path, mark: int | None = None
) -> Path:
    """Success rate (%) against environment steps, one line per method with a ±1 std band;
    ``mark``: a step to draw as a vertical line (the equal-samples step of ``report --at``)."""
    fig = _figure(8, 5)
    ax = fig.subplots()
    if mark is not None:
        ax.axvline(mark, color="0.4", ls=":", lw=1.2, label=f"--at {mark:,}")
    for s in series:
        color, style = row_style(s.label)
        ax.plot(
            s.steps,
            100 * s.mean,
            color=color,
            ls=style,
            lw=2,
            label=f"{s.label} ({s.n} seed{'s' if s.n != 1 else ''})",
        )
        if s.n > 1:
            lo = np.clip(s.mean - s.std, 0, 1)
            hi = np.clip(s.mean + s.std, 0, 1)
            ax.fill_between(s.steps, 100 * lo, 100 * hi, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("environment steps (samples, all tasks)")
    ax.set_ylabel("success rate (%)")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\n{subtitle}", fontsize=11)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    return _save(fig, path)


def plot_task_curves(
    per_task: dict[str, list[CurveSeries]],
    title: str,
    subtitle: str,
    path: Path,
    mark: int | None = None,
) -> Path:
    """Figure 5 task by task: one small panel per task (success rate against environment steps),
    one line per method with its ±1 std band over seeds, the methods' colours of Figure 5."""
    cols = min(5, len(per_task))
    rows = math.ceil(len(per_task) / cols)
    fig = _figure(3.2 * cols, 2.3 * rows + 0.9)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax, (task, series) in zip(axes, per_task.items(), strict=False):
        if mark is not None:
            ax.axvline(mark, color="0.4", ls=":", lw=1)
        for s in series:
            color, style = row_style(s.label)
            ax.plot(s.steps, 100 * s.mean, color=color, ls=style, lw=1.6, label=s.label)
            if s.n > 1:
                lo, hi = np.clip(s.mean - s.std, 0, 1), np.clip(s.mean + s.std, 0, 1)
                ax.fill_between(s.steps, 100 * lo, 100 * hi, color=color, alpha=0.15, lw=0)
        ax.set_title(task.removesuffix("-v3").removesuffix("-v2"), fontsize=9)
        ax.set_ylim(-4, 104)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=7)
    for ax in axes[len(per_task) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("success (%)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=9,
               bbox_to_anchor=(0.5, 1.0), frameon=False)  # fmt: skip
    fig.suptitle(f"{title}\n{subtitle}", fontsize=11, y=1.06)
    fig.supxlabel("environment steps (samples, all tasks)", fontsize=9)
    return _save(fig, path)


def plot_tsne(
    embedding: np.ndarray,
    task: np.ndarray,
    task_names: list[str],
    title: str,
    subtitle: str,
    path: Path,
) -> Path:
    """t-SNE scatter of routing vectors, one colour per task, with a legend (Fig. 4)."""
    t_count = len(task_names)
    colors = task_colors(t_count)
    wide = t_count > 20
    fig = _figure(12 if wide else 9, 7.5 if wide else 6.5)
    ax = fig.subplots()
    numbered = t_count > 12  # many tasks: clusters carry the task's number, the legend its name
    for t, name in enumerate(task_names):
        pts = embedding[task == t]
        if not len(pts):
            continue
        label = f"{t + 1}: {name}" if numbered else name
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color=colors[t], alpha=0.75, lw=0, label=label)
        # the label sits on the task's own point nearest its median (clusters may be split)
        cx, cy = pts[np.argmin(((pts - np.median(pts, axis=0)) ** 2).sum(axis=1))]
        ax.annotate(
            str(t + 1) if numbered else name,
            (cx, cy),
            fontsize=7 if numbered else 8,
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0},
        )
    ax.set_xlabel("t-SNE dimension 1 (arbitrary units)")
    ax.set_ylabel("t-SNE dimension 2 (arbitrary units)")
    ax.set_title(f"{title}\n{subtitle}", fontsize=11)
    ax.legend(
        title="task",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        ncol=1 if t_count <= 25 else 2,
        markerscale=2,
        frameon=False,
    )
    ax.grid(alpha=0.2)
    return _save(fig, path)


_EDGE_CMAP = ListedColormap(colormaps["Blues"](np.linspace(0.25, 1.0, 256)))


def _draw_routing(ax: Axes, layers: np.ndarray, final: np.ndarray, name: str) -> None:
    """One task's routing: module layers as columns of nodes, edges weighted by probability."""
    n = final.shape[0]
    n_layers = layers.shape[0] + 1
    ys = np.linspace((n - 1) / 2, -(n - 1) / 2, n) if n > 1 else np.zeros(1)  # module 1 on top
    norm = Normalize(0.0, 1.0)
    edges: list[tuple[float, tuple[float, float], tuple[float, float]]] = []
    for k in range(n):  # input (the state encoder) feeds every first-layer module alike
        ax.plot([-1, 0], [0, ys[k]], color="0.75", lw=0.8, zorder=1)
    for layer in range(n_layers - 1):
        for j in range(n):
            for k in range(n):
                edges.append((layers[layer, j, k], (layer, ys[k]), (layer + 1, ys[j])))
    for k in range(n):
        edges.append((final[k], (n_layers - 1, ys[k]), (n_layers, 0.0)))
    for p, (x0, y0), (x1, y1) in sorted(edges):  # strongest edges drawn last, on top
        ax.plot(
            [x0, x1],
            [y0, y1],
            color=_EDGE_CMAP(norm(p)),
            lw=0.3 + 6.0 * p,
            zorder=2,
            solid_capstyle="round",
        )
    for layer in range(n_layers):
        ax.scatter([layer] * n, ys, s=180, color="white", edgecolor="0.2", zorder=3, lw=1.2)
        for j in range(n):
            ax.text(layer, ys[j], str(j + 1), ha="center", va="center", fontsize=7, zorder=4)
    ax.scatter([-1, n_layers], [0, 0], s=220, marker="s", color="0.85", edgecolor="0.2", zorder=3)
    ax.set_xticks(range(-1, n_layers + 1))
    ax.set_xticklabels(["in", *(f"L{i + 1}" for i in range(n_layers)), "out"], fontsize=8)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-1.4, n_layers + 0.4)
    ax.set_ylim(ys[-1] - 0.6, ys[0] + 0.6)
    ax.set_title(name, fontsize=9)


def plot_routing_diagrams(
    data: RoutingData, tasks: list[int], title: str, subtitle: str, path: Path
) -> Path:
    """Routing diagrams of several tasks in one figure (Fig. 3), with a shared colour bar."""
    k = len(tasks)
    cols = min(5, k)
    rows = math.ceil(k / cols)
    fig = _figure(3.1 * cols + 1.0, 2.6 * rows + 1.1)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    for ax, t in zip(axes.flat, tasks, strict=False):
        _draw_routing(ax, data.layers_mean[t], data.final_mean[t], data.task_names[t])
    fig.suptitle(f"{title}\n{subtitle}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.93, 0.98))
    cax = fig.add_axes((0.945, 0.15, 0.012, 0.65))
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=_EDGE_CMAP), cax=cax)
    bar.set_label("routing probability (edge colour and width)", fontsize=9)
    return _save(fig, path)
