"""Published success rates as reference rows beside our results (issue 20).

Each entry is a number a paper reports, with its source and protocol; :func:`published_table`
places our result for the same network and benchmark next to it (mean ± std over our seeds, or a
dash when we have no such run). The protocols differ from ours and from each other (horizon,
Meta-World version, budget, seeds, evaluation), so the rows are references, not a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

from softmod.report.collect import GroupKey, base_row, row_sort_key, setting_label
from softmod.report.stats import GroupStats
from softmod.report.tables import Table, mean_pm_std

MOORE_PAPER = (
    "Hendawy et al., Multi-Task RL with Mixture of Orthogonal Experts, ICLR 2024: MOORE's own "
    "results, Meta-World v2, horizon 150, 10 seeds"
)
METAWORLD_PLUS = (
    "McLean et al., Meta-World+: An Improved, Standardized, RL Benchmark (2025): re-run on "
    "Meta-World v3 with v2 rewards, metaworld-algorithms implementations"
)


@dataclass(frozen=True)
class Published:
    """One published success rate (percent) and the softmod rows that correspond to it."""

    method: str  # as the source names it
    benchmark: str  # mt10 | mt50
    success: float  # percent
    rows: tuple[str, ...]  # our report rows (method names) for the same network, preferred first
    source: str


PUBLISHED: tuple[Published, ...] = (
    Published("MOORE", "mt10", 88.7, ("moore",), MOORE_PAPER),
    Published("MOORE", "mt50", 72.9, ("moore-mt50", "moore"), MOORE_PAPER),
    # Meta-World+ ran soft modularization with L=2, n=2 on MT10 and L=4, n=4 on MT50
    Published("Soft Modularization", "mt10", 84.9, ("soft-shallow",), METAWORLD_PLUS),
    Published("Soft Modularization", "mt50", 65.8, ("soft-deep",), METAWORLD_PLUS),
    Published("MOORE", "mt10", 83.2, ("moore",), METAWORLD_PLUS),
    Published("MOORE", "mt50", 72.0, ("moore-mt50", "moore"), METAWORLD_PLUS),
    Published("PaCo", "mt10", 73.6, ("paco",), METAWORLD_PLUS),
    Published("PaCo", "mt50", 58.4, ("paco-mt50", "paco"), METAWORLD_PLUS),
)


def _ours(p: Published, stats: dict[GroupKey, GroupStats]) -> list[str]:
    """Our results for a published row: one cell per goal setting we ran (the best-matching
    method row first found; every variant of it, e.g. ``[bf16]``, gets its own cell)."""
    cells = []
    for goals in ("fixed", "conditioned"):
        for row in p.rows:
            found = [
                (key[2], s)
                for key, s in stats.items()
                if key[:2] == (p.benchmark, goals) and base_row(key[2]) == row
            ]
            for label_row, s in sorted(found, key=lambda f: row_sort_key(f[0])):
                label = f"{setting_label(p.benchmark, goals)} {label_row}"
                cells.append(f"{label}: {mean_pm_std(s.mean, s.std)} ({s.n})")
            if found:
                break
    return cells


def published_rows(stats: dict[GroupKey, GroupStats]) -> list[list[str]]:
    """One row per published number: method, benchmark, published %, ours, source."""
    rows = []
    for p in PUBLISHED:
        ours = _ours(p, stats)
        rows.append(
            [p.method, p.benchmark.upper(), f"{p.success:.1f}", "; ".join(ours) or "–", p.source]
        )
    return rows


def published_table(stats: dict[GroupKey, GroupStats], at: int | None = None) -> Table:
    """The published reference rows beside our results (final, or at the ``--at`` step), with
    their sources."""
    return Table(
        title="Published reference rows",
        header=["method", "benchmark", "published (%)", "ours (%), mean ± std (seeds)", "source"],
        rows=published_rows(stats),
        caption="Success rates the papers report, beside ours for the same network and benchmark "
        "(each goal setting we ran). Protocols differ (Meta-World version, horizon, budget, "
        "seeds, evaluation): references, not a ranking."
        + ("" if at is None else f" Ours: evaluation at {at:,} env steps."),
        anchor="published",
    )
