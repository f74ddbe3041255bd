"""CARE's task context from a file: ``softmod train --method care --task-context FILE``.

CARE (softmod/nets/care.py) attends over its encoders from a per-task context vector. The paper
uses a language-model embedding of each task's description; this module reads any such vectors
from a file, one row per task, and validates them before anything expensive starts:

- ``.npy``: a 2-D float array ``(T, C)``, rows in the benchmark's task order;
- ``.json``: a list of T rows (task order), or an object ``{task name: row}`` naming every task of
  the benchmark. A name matches its task exactly or with another ``-vN`` version suffix
  (``reach-v1`` is ``reach-v3``), so facebookresearch/mtrl's
  ``metadata/task_embedding/roberta_small/metaworld-mt10.json`` (RoBERTa embeddings of the v1
  task descriptions) can be used as it is.

A wrong shape, a non-finite value, a missing or an unknown task is one :class:`ConfigError` line.
The rows are stored in the run's config (``CARENetConfig.context``), so the run, its resume and
its evaluation do not need the file again.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from softmod.config import CARENetConfig, NetworkConfig, RunConfig
from softmod.validation import ConfigError

_VERSION = re.compile(r"-v\d+$")


def _base(name: str) -> str:
    return _VERSION.sub("", name)


def _rows_from_json(data: object, tasks: list[str], where: str) -> list[object]:
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a list of rows or an object {{task: row}}")
    by_base = {_base(t): t for t in tasks}
    rows: dict[str, object] = {}
    for name, row in data.items():
        task = name if name in tasks else by_base.get(_base(str(name)))
        if task is None:
            raise ConfigError(
                f"{where}: unknown task {name!r}; this benchmark's tasks: {', '.join(tasks)}"
            )
        if task in rows:
            raise ConfigError(f"{where}: task {task!r} is given twice")
        rows[task] = row
    missing = [t for t in tasks if t not in rows]
    if missing:
        raise ConfigError(f"{where}: no row for task(s) {', '.join(missing)}")
    return [rows[t] for t in tasks]


def load_task_context(path: Path, tasks: list[str]) -> np.ndarray:
    """The context matrix ``(T, C)`` (float32) in the order of ``tasks``; ConfigError (one line)
    on an unreadable file, a wrong shape, a non-finite value, a missing or unknown task."""
    where = f"--task-context {path}"
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".json"):
        raise ConfigError(f"{where}: unknown file type {suffix!r}; allowed: .npy, .json")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            rows = _rows_from_json(json.loads(Path(path).read_text()), tasks, where)
            array = np.asarray(rows, dtype=np.float64)
    except ConfigError:
        raise
    except (OSError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{where}: cannot read it ({first})") from None
    if array.ndim != 2 or array.shape[0] != len(tasks) or array.shape[1] < 1:
        raise ConfigError(
            f"{where}: shape {tuple(array.shape)}, expected ({len(tasks)}, C): one row of C >= 1 "
            f"values per task of the benchmark"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ConfigError(f"{where}: every value must be a finite number")
    return array.astype(np.float32)


def with_task_context(cfg: RunConfig, path: Path) -> RunConfig:
    """``cfg`` with the context of ``path`` in its CARE policy and Q networks, rows in the order
    of ``cfg.env``'s tasks; ConfigError when the method is not CARE or the file is invalid
    (:func:`load_task_context`). Builds no environment."""
    nets = (cfg.policy_net, cfg.q_net)
    if not all(isinstance(n, CARENetConfig) for n in nets):
        raise ConfigError(
            f"--task-context applies to CARE only (--method care or care-mt50), got --method "
            f"{cfg.method}"
        )
    from softmod.envs import task_names

    try:
        tasks = task_names(cfg.env)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    context = load_task_context(path, tasks)
    values = tuple(float(v) for v in context.reshape(-1))

    def put(net: NetworkConfig) -> CARENetConfig:
        assert isinstance(net, CARENetConfig)  # checked above
        return dataclasses.replace(net, context_size=context.shape[1], context=values)

    return dataclasses.replace(cfg, policy_net=put(cfg.policy_net), q_net=put(cfg.q_net))
