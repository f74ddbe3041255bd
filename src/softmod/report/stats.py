"""Aggregation over seeds: mean ± std, interquartile mean with a stratified bootstrap interval.

Conventions (the numbers in every table follow them):

- A run's score is its success rate averaged over tasks. ``mean`` and ``std`` are over the runs
  (seeds) of a group; ``std`` is the sample standard deviation (``ddof=1``), NaN for one run.
- The interquartile mean (IQM, Agarwal et al. 2021, "rliable") pools the per-task success of every
  run of a group (runs x tasks scores), drops the lowest and highest 25 % and averages the rest:
  ``k = floor(0.25 m)`` scores are cut from each end of the ``m`` sorted scores (as
  ``scipy.stats.trim_mean(x, 0.25)``).
- Its 95 % interval is a percentile bootstrap, stratified by task as rliable's: every replicate
  draws, independently for each task, as many runs as the group has, with replacement. With one
  run per group the interval collapses to the point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; NaN when there is one value)."""
    x = np.asarray(values, np.float64)
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return float(x.mean()), std


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all the scores (any shape): the mean of the middle 50 %."""
    x = np.sort(np.asarray(scores, np.float64).ravel())
    k = int(0.25 * x.size)
    return float(x[k : x.size - k].mean())


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of ``(R, m)``."""
    x = np.sort(samples, axis=1)
    k = int(0.25 * x.shape[1])
    return x[:, k : x.shape[1] - k].mean(axis=1)


def iqm_bootstrap_ci(
    scores: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the IQM of ``scores`` ``(runs, tasks)``, stratified by
    task (runs resampled with replacement independently per task)."""
    s = np.asarray(scores, np.float64)
    n, t = s.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n, t))
    samples = s[idx, np.arange(t)].reshape(reps, n * t)
    stats = _iqm_rows(samples)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class GroupStats:
    """Final success of one group (benchmark, goals, row) over its runs; rates in [0, 1]."""

    seeds: list[int]
    tasks: list[str]
    scores: np.ndarray  # (runs, tasks) per-task success of each run
    mean: float
    std: float
    iqm: float
    iqm_low: float
    iqm_high: float
    task_mean: np.ndarray  # (tasks,) mean over runs
    task_std: np.ndarray  # (tasks,) sample std over runs (NaN for one run)
    episodes: list[int]  # episodes per task behind each run's numbers
    # (runs, tasks) mean episode return of each run; NaN where a run has none
    returns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n(self) -> int:
        """Number of runs (seeds)."""
        return len(self.seeds)

    @property
    def has_returns(self) -> bool:
        """Whether every run of the group has a mean episode return for every task."""
        return self.returns.size > 0 and bool(np.isfinite(self.returns).all())

    def return_mean_std(self) -> tuple[float, float]:
        """Mean and sample std over runs of the return averaged over tasks (NaN if none)."""
        if not self.has_returns:
            return float("nan"), float("nan")
        return mean_std(self.returns.mean(axis=1))

    def task_return_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-task mean and sample std over runs of the return (NaN where there is none)."""
        if not self.has_returns:
            nan = np.full(len(self.tasks), np.nan)
            return nan, nan.copy()
        r = self.returns
        std = r.std(axis=0, ddof=1) if len(r) > 1 else np.full(len(self.tasks), np.nan)
        return r.mean(axis=0), std


def group_stats(
    seeds: list[int],
    tasks: list[str],
    per_run: list[np.ndarray],
    episodes: list[int],
    returns: list[np.ndarray] | None = None,
) -> GroupStats:
    """Statistics of a group from each run's per-task success (all runs in ``tasks`` order) and,
    where given, each run's per-task mean episode return (NaN for a task without one)."""
    scores = np.stack([np.asarray(p, np.float64) for p in per_run])
    mean, std = mean_std(scores.mean(axis=1))
    lo, hi = iqm_bootstrap_ci(scores)
    task_std = scores.std(axis=0, ddof=1) if len(scores) > 1 else np.full(len(tasks), np.nan)
    return GroupStats(
        seeds=list(seeds),
        tasks=list(tasks),
        scores=scores,
        mean=mean,
        std=std,
        iqm=iqm(scores),
        iqm_low=lo,
        iqm_high=hi,
        task_mean=scores.mean(axis=0),
        task_std=task_std,
        episodes=list(episodes),
        returns=np.stack([np.asarray(r, np.float64) for r in returns])
        if returns
        else np.zeros((0, 0)),
    )


def aggregate_curves(
    curves: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and sample std over runs of success-vs-steps curves -> ``(steps, mean, std)``.

    Runs evaluated at the same steps are averaged point by point. Otherwise every run is linearly
    interpolated onto the union of their steps, up to the last step that every run reached. The
    std is NaN where there is one run.
    """
    curves = [(np.asarray(s), np.asarray(v, np.float64)) for s, v in curves if len(s)]
    if not curves:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    first = curves[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in curves):
        steps = first
        values = np.stack([v for _, v in curves])
    else:
        end = min(s[-1] for s, _ in curves)
        steps = np.unique(np.concatenate([s[s <= end] for s, _ in curves]))
        values = np.stack([np.interp(steps, s, v) for s, v in curves])
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.full(len(steps), np.nan)
    return steps, values.mean(axis=0), std
