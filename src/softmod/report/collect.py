"""Finding run directories and reading what the report needs from them.

A run directory is one that holds ``config.json`` (written by ``softmod train``). Its final
per-task success comes from the evaluation of the final weights with the paper's 100 episodes per
task, else the one with the most episodes: ``softmod eval``'s ``eval_<N>ep.json`` or training's
last periodic evaluation (``final_eval.json``; on a tie ``softmod eval``'s file), so that a
1-episode video evaluation never replaces a longer one. A run with none of them is unfinished: it
is skipped with a reason, never a crash.

``softmod report --at STEP`` compares runs at equal samples instead: every run's per-task success
is its evaluation at exactly ``STEP`` environment steps, finished or not: ``softmod eval
--checkpoint step-<STEP>.pt`` (``eval_<N>ep_step-<STEP>.json``, where ``--resume`` also puts the
final weights' evaluation of a run it trains past STEP) where it was run, else the final
evaluation of a run that finished at STEP, else the periodic evaluation of training (a row of
``eval.csv``); a run with none is skipped with the steps it reached.
``--at common`` is the largest step at which every run has one (:func:`common_eval_step`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softmod.checkpoint import step_checkpoint_name
from softmod.config import EnvConfig, RunConfig
from softmod.evaluate import PAPER_EPISODES, final_eval_step
from softmod.presets import ABLATIONS, CAPACITY_METHODS, TABLE1_METHODS, row_label

GroupKey = tuple[str, str, str]  # (benchmark, goals, row)

# Row order of every table and legend: Table 1, then the other methods, then the ablations.
_ROW_ORDER = [
    *TABLE1_METHODS,
    "single-task-sac",
    *CAPACITY_METHODS,
    "soft-shallow-no-obs",
    "soft-deep-no-obs",
    *ABLATIONS,
]


class ReportError(ValueError):
    """Bad input to the report (a path that does not exist, no runs at all)."""


@dataclass
class Run:
    """What the report reads from one finished run directory."""

    path: Path
    config: dict
    benchmark: str  # mt10, mt50, mt1-<task>, or toy<T>
    goals: str
    method: str
    row: str  # method, marked for other balance weights (row_label) and settings (variant)
    seed: int
    tasks: list[str]
    success: np.ndarray  # (T,) final per-task success rate in [0, 1], in `tasks` order
    episodes: int  # episodes per task behind `success`
    source: str  # the file `success` comes from
    curve_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # eval.csv steps
    curve_success: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean success there
    curve_tasks: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (steps, T)
    policy_params: int | None = None  # params.json
    returns: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) mean return, NaN: none

    @property
    def key(self) -> GroupKey:
        """The group this run belongs to: (benchmark, goals, row)."""
        return (self.benchmark, self.goals, self.row)

    @property
    def soft_modular(self) -> bool:
        """Whether the policy has a routing network (soft modularization)."""
        return self.config.get("policy_net", {}).get("type") == "SoftModularNetConfig"


@dataclass(frozen=True)
class Skipped:
    """A run directory the report left out, and why."""

    path: Path
    reason: str


def setting_label(benchmark: str, goals: str) -> str:
    """The paper's name of a setting: ``mt10``/``fixed`` -> ``MT10-Fixed``."""
    if benchmark.startswith("toy"):
        bench = "Toy" + benchmark[3:]
    else:
        bench = benchmark if benchmark.startswith("mt1-") else benchmark.upper()
    return f"{bench}-{goals.capitalize()}"


def row_sort_key(row: str) -> tuple[int, str, int, str]:
    """Position of a row in the tables: the paper's order, unknown rows last by name; a method's
    variants after it, fewer differences first."""
    base = base_row(row)
    order = _ROW_ORDER.index(base) if base in _ROW_ORDER else len(_ROW_ORDER)
    differences = 0 if base == row else row.count(",") + 1
    return (order, base, differences, row)


def _default(cls: type, name: str) -> object:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def variant(cfg: dict) -> str:
    """What sets a run apart from the defaults (the paper's settings) where it changes the
    numbers, e.g. ``bf16, h500``: the precision, the episode horizon (Meta-World) and the reward
    version; ``""`` for a run at the defaults. Runs of one method that differ here are separate
    rows."""
    env = cfg.get("env", {})
    parts = []
    if cfg.get("precision", "fp32") != _default(RunConfig, "precision"):
        parts.append(str(cfg["precision"]))
    toy = env.get("benchmark") == "toy"  # the toy tasks' horizon is not a Meta-World setting
    if not toy and env.get("horizon", EnvConfig.horizon) != EnvConfig.horizon:
        parts.append(f"h{env['horizon']}")
    if env.get("reward_version", EnvConfig.reward_version) != EnvConfig.reward_version:
        parts.append(f"{env['reward_version']} rewards")
    return ", ".join(parts)


def with_variant(row: str, var: str) -> str:
    """A row label with its :func:`variant`: ``soft-shallow [bf16, h500]``; the row if none."""
    return f"{row} [{var}]" if var else row


def base_row(row: str) -> str:
    """A label without its variant: ``soft-shallow [bf16]`` -> ``soft-shallow``."""
    return row.split(" [", 1)[0]


def slug(*parts: object) -> str:
    """A file-name part made of ``parts``: ``("mt10", "soft-shallow [bf16, h500]")`` ->
    ``mt10-soft-shallow_bf16_h500``."""
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(p)).strip("_") for p in parts)


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Every run directory at or under ``paths`` (a directory holding ``config.json``), sorted."""
    found: set[Path] = set()
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise ReportError(f"{str(p)!r} does not exist")
        if not p.is_dir():
            raise ReportError(f"{str(p)!r} is not a directory")
        if (p / "config.json").is_file():
            found.add(p.resolve())
        found.update(c.parent.resolve() for c in p.rglob("config.json") if c.is_file())
    return sorted(found)


def _final_results(run_dir: Path) -> tuple[dict, int, str] | None:
    """Per-task results of the best available final evaluation, its episodes and its file name:
    ``softmod eval``'s ``eval_<N>ep.json`` of ``final.pt`` or training's ``final_eval.json``, the
    paper's episode count first, then the most episodes (a 1-episode video evaluation never
    shadows a 100-episode one). An ``eval_<N>ep.json`` of another step than ``final_eval.json``'s
    (final.pt has moved on since) is not taken."""
    final_step = final_eval_step(run_dir)
    candidates: list[tuple[bool, int, bool, dict, str]] = []
    for p in [*run_dir.glob("eval_*ep.json"), run_dir / "final_eval.json"]:
        if p.name != "final_eval.json" and not re.fullmatch(r"eval_\d+ep\.json", p.name):
            continue
        try:
            data = json.loads(p.read_text())
            episodes = int(data["episodes_per_task"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        stale = final_step is not None and data.get("step", final_step) != final_step
        if data.get("checkpoint", "final.pt") == "final.pt" and data.get("tasks") and not stale:
            # on a tie, softmod eval's file before training's (it may hold more per-task data)
            own = p.name != "final_eval.json"
            candidates.append((episodes == PAPER_EPISODES, episodes, own, data, p.name))
    if not candidates:
        return None
    *_, data, name = max(candidates, key=lambda c: c[:3])
    return data["tasks"], int(data["episodes_per_task"]), name


def eval_rows(path: Path) -> list[dict[str, str]]:
    """The rows of an ``eval.csv`` that carry a mean success (empty if there is no file)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("eval/mean_success", "") not in ("", "nan")]


def _step_eval(run_dir: Path, at: int) -> tuple[dict, int, str] | None:
    """``softmod eval --checkpoint step-<at>.pt`` results (``eval_<N>ep_step-<at>.json``, also
    the final weights' evaluation of a run since trained further, renamed so by ``--resume``),
    the most episodes first, or None."""
    ckpt = step_checkpoint_name(at).removesuffix(".pt")
    found = []
    for p in run_dir.glob(f"eval_*ep_{ckpt}.json"):
        if m := re.fullmatch(rf"eval_(\d+)ep_{ckpt}\.json", p.name):
            found.append((int(m.group(1)), p))
    for _, p in sorted(found, reverse=True):
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (data.get("checkpoint") == f"{ckpt}.pt" or data.get("step") == at) and data.get("tasks"):
            return data["tasks"], int(data["episodes_per_task"]), p.name
    return None


def _periodic_results(run_dir: Path, at: int) -> tuple[dict, int, str] | str:
    """Per-task results at step ``at``: a ``softmod eval`` of that step's checkpoint where one was
    made (:func:`_step_eval`), else the final evaluation if the run finished at ``at``
    (:func:`_final_results`: the paper's 100 episodes where they were run), else the periodic
    evaluation of ``eval.csv`` there (its episodes per task: ``eval_episodes`` of
    ``config.json``); with a source label; or why there is none."""
    evaluated = _step_eval(run_dir, at)
    if evaluated is None and final_eval_step(run_dir) == at:
        evaluated = _final_results(run_dir)
    if evaluated is not None:
        return evaluated
    rows = eval_rows(run_dir / "eval.csv")
    row = next((r for r in rows if int(float(r["step"])) == at), None)
    if row is None:
        if not rows:
            return f"no periodic evaluation at step {at:,}: eval.csv has none"
        steps = sorted(int(float(r["step"])) for r in rows)
        return (
            f"no periodic evaluation at step {at:,} (eval.csv has {steps[0]:,} .. {steps[-1]:,}, "
            f"every {steps[1] - steps[0] if len(steps) > 1 else steps[0]:,})"
        )
    tasks = {
        k.split("/")[1]: {"success": float(v)}
        for k, v in row.items()
        if k.startswith("eval/") and k.endswith("/success") and k.count("/") == 2
    }
    for task, result in tasks.items():
        if row.get(f"eval/{task}/return", "") not in ("", "nan"):
            result["return"] = float(row[f"eval/{task}/return"])
    if not tasks:
        return f"eval.csv has no per-task success columns at step {at:,}"
    episodes = int(json.loads((run_dir / "config.json").read_text()).get("eval_episodes", 0))
    return tasks, episodes, f"eval.csv@{at}"


def common_eval_step(dirs: list[Path]) -> int:
    """The largest step at which every run directory that has periodic evaluations has one
    (``--at common``); :class:`ReportError` when there is no such step."""
    sets = [
        {int(float(r["step"])) for r in rows}
        for d in dirs
        if (rows := eval_rows(Path(d) / "eval.csv"))
    ]
    common = set.intersection(*sets) if sets else set()
    if not common:
        raise ReportError(
            "--at common: the runs share no periodic evaluation step (eval.csv)"
            if sets
            else "--at common: no run has a periodic evaluation (eval.csv)"
        )
    return max(common)


def _read_curve(path: Path, tasks: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean success and per-task success (columns in ``tasks`` order, NaN where a row has
    none) of ``eval.csv``; rows without a mean success are dropped."""
    rows = eval_rows(path)
    steps = [int(float(r["step"])) for r in rows]
    success = [float(r["eval/mean_success"]) for r in rows]
    per_task = [[float(r.get(f"eval/{t}/success") or "nan") for t in tasks] for r in rows]
    return (np.asarray(steps, np.int64), np.asarray(success, np.float64),
            np.asarray(per_task, np.float64).reshape(len(rows), len(tasks)))  # fmt: skip


def group_key(cfg: dict, n_tasks: int) -> GroupKey:
    """A run's group from its ``config.json``: (benchmark, goals, row). The benchmark names the
    task of an MT1 run (``mt1-<task>``) and the task count of a toy run (``toy<T>``: toy runs with
    different task counts are not comparable); the row is the method marked for other balance
    weights (:func:`row_label`) and settings (:func:`variant`). Raises KeyError/TypeError on a
    malformed config."""
    env = cfg["env"]
    benchmark = env["benchmark"]
    if benchmark == "mt1":
        benchmark = f"mt1-{env.get('task')}"
    elif benchmark == "toy":
        benchmark = f"toy{n_tasks}"
    row = with_variant(row_label(cfg["method"], bool(cfg["sac"]["balance"])), variant(cfg))
    return benchmark, env["goals"], row


def load_run(run_dir: Path, at: int | None = None) -> Run | Skipped:
    """Read one run directory; an unfinished or unreadable one is returned as :class:`Skipped`.
    With ``at``, its success is its evaluation at that step (finished or not; see the module)."""
    run_dir = Path(run_dir)
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        method = cfg["method"]
        seed = int(cfg["seed"])
        group_key(cfg, 0)  # a malformed config is caught here, before the evaluation is read
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        return Skipped(run_dir, f"unreadable config.json ({err})")
    try:
        final = _final_results(run_dir) if at is None else _periodic_results(run_dir, at)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        kind = "final" if at is None else "periodic"
        return Skipped(run_dir, f"unreadable {kind} evaluation ({err})")
    if final is None:
        return Skipped(run_dir, "unfinished: no final_eval.json (and no eval_<N>ep.json)")
    if isinstance(final, str):
        return Skipped(run_dir, final)
    tasks_data, episodes, source = final
    tasks = list(tasks_data)
    benchmark, goals, row = group_key(cfg, len(tasks))
    params = run_dir / "params.json"
    policy_params = None
    if params.is_file():
        try:
            policy_params = int(json.loads(params.read_text())["policy"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            policy_params = None
    steps, success, per_task = _read_curve(run_dir / "eval.csv", tasks)
    return Run(
        path=run_dir,
        config=cfg,
        benchmark=benchmark,
        goals=goals,
        method=method,
        row=row,
        seed=seed,
        tasks=tasks,
        success=np.array([float(tasks_data[t]["success"]) for t in tasks]),
        episodes=episodes,
        source=source,
        curve_steps=steps,
        curve_success=success,
        curve_tasks=per_task,
        policy_params=policy_params,
        returns=np.array([float(tasks_data[t].get("return", "nan")) for t in tasks]),
    )


def collect_runs(paths: list[Path], at: int | None = None) -> tuple[list[Run], list[Skipped]]:
    """Load every run found at or under ``paths`` (with ``at``: at that step's periodic
    evaluation, see :func:`load_run`); raises :class:`ReportError` when none is found."""
    dirs = find_run_dirs(paths)
    if not dirs:
        shown = ", ".join(str(p) for p in paths)
        raise ReportError(f"no run directory (holding config.json) found in {shown}")
    runs: list[Run] = []
    skipped: list[Skipped] = []
    for d in dirs:
        loaded = load_run(d, at)
        if isinstance(loaded, Skipped):
            skipped.append(loaded)
        else:
            runs.append(loaded)
    return runs, skipped


def group_runs(runs: list[Run]) -> dict[GroupKey, list[Run]]:
    """Runs grouped by (benchmark, goals, row), each group sorted by seed, groups in table order."""
    groups: dict[GroupKey, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.key, []).append(r)
    ordered = sorted(groups, key=lambda k: (k[0], k[1], row_sort_key(k[2])))
    return {k: sorted(groups[k], key=lambda r: (r.seed, str(r.path))) for k in ordered}


def curve_groups(
    runs: list[Run], skipped: list[Skipped], at: int | None
) -> dict[GroupKey, list[Run]]:
    """The groups the training-curve figures draw: the report's runs, and each group all of
    whose runs were skipped from the tables as unfinished (no final evaluation; with ``at``:
    stopped short of it), at their last periodic evaluation, so that a method still training
    keeps its curve in Figure 5."""
    groups = group_runs(runs)
    short: list[Run] = []
    for s in skipped:
        steps = [int(float(r["step"])) for r in eval_rows(s.path / "eval.csv")]
        if steps and (at is None or max(steps) < at):
            loaded = load_run(s.path, max(steps))
            if isinstance(loaded, Run) and loaded.key not in groups:
                short.append(loaded)
    return group_runs(runs + short) if short else groups  # in the tables' row order
