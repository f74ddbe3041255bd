"""Run-directory logging: CSV files and TensorBoard event files, same metric names in both.

Metric names are grouped: ``train/…``, ``loss/…``, ``alpha/<task>``, ``eval/<task>/success``,
and with a gradient method other than plain ``grad/…`` (``grad/q_weight/<task>``, issue 21).
``train.csv`` gets a row every log interval, ``eval.csv`` a row per evaluation; their columns are
fixed when the run starts, so every row of a file has the same columns.

Resuming from a checkpoint at step S (``resume_step=S``) first drops every CSV row after S (written
after that checkpoint by the run that stopped) and purges TensorBoard events after S
(``SummaryWriter(purge_step=S + 1)``), so no step is duplicated or missing.

TensorBoard reads a directory's event files in name order, and the name is
``events.out.tfevents.<time s>.<host>.<pid>.<counter>``: within one second the pid and counter
compare as strings ("10" before "9"), so a segment started in the same second as the previous one
could be read first and show its steps out of order. :func:`wait_for_new_event_second` waits (at
most two seconds) until the new file's name sorts after every existing one.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


def wait_for_new_event_second(tb_dir: Path) -> None:
    """Sleep until the wall-clock second is past the newest event file's in ``tb_dir``, so that
    an event file created now sorts after all of them (a no-op unless that one is this second's).

    A newest file more than a second ahead (written on a machine whose clock ran ahead) is not
    waited for: that could be hours, and order by name is then lost whatever we do."""
    stamps = [0]
    for f in tb_dir.glob("events.out.tfevents.*"):
        field = f.name.split(".")[3]
        if field.isdigit():
            stamps.append(int(field))
    wait = max(stamps) + 1 - time.time()
    if 0 < wait <= 2:
        time.sleep(wait)


def truncate_csv(path: Path, last_step: int) -> list[str] | None:
    """Drop the rows of ``path`` whose ``step`` is above ``last_step`` (atomic rewrite); returns
    the file's header, or None if there is no file or it is empty."""
    if not path.exists():
        return None
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    at = header.index("step")
    keep = [r for r in body if len(r) == len(header) and r[at].isdigit()]
    keep = [r for r in keep if int(r[at]) <= last_step]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows([header, *keep])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return header


class CSVTable:
    """An append-only CSV file with a fixed header (an existing file keeps its own header)."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None) -> None:
        self.path = path
        header = None
        if resume_step is not None:
            header = truncate_csv(path, resume_step)
            if header is None and path.exists():  # an empty file: start it again
                path.unlink()
        self.columns = columns = header or columns
        new = not path.exists()
        self._file = path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (missing columns stay empty) and flush it to disk."""
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return v


class RunLogger:
    """Writes ``train.csv``, ``eval.csv`` and TensorBoard events under ``run_dir``."""

    def __init__(
        self,
        run_dir: Path,
        task_names: list[str],
        resume_step: int | None = None,
        extra_columns: list[str] | None = None,
    ) -> None:
        """``extra_columns``: train.csv columns after the standard ones (the gradient method's
        metrics, issue 21: ``grad/q_cosine``, ``grad/q_weight/<task>``, ...)."""
        self.task_names = task_names
        per_task_alpha = [f"alpha/{t}" for t in task_names]
        per_task_balance = [f"balance/{t}" for t in task_names]
        self.train = CSVTable(
            run_dir / "train.csv",
            [
                "step", "time_s", "train/steps_per_s", "train/updates", "train/episode_success",
                "train/episode_return", "loss/q", "loss/policy", "loss/alpha", "q/mean",
                "policy/entropy", "grad_norm/policy", "grad_norm/q", "env/faults",
                "train/skipped_updates", *per_task_alpha, *per_task_balance,
                *(extra_columns or []),
            ],
            resume_step,
        )  # fmt: skip
        eval_cols = ["step", "time_s", "eval/mean_success", "eval/mean_return"]
        for t in task_names:
            eval_cols += [f"eval/{t}/success", f"eval/{t}/return"]
        self.eval = CSVTable(run_dir / "eval.csv", eval_cols, resume_step)
        purge = None if resume_step is None else resume_step + 1
        wait_for_new_event_second(run_dir / "tb")
        self.tb = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge)
        # more receivers of every TensorBoard row, ``sink.log(step, metrics)`` (issue 22: W&B)
        self.sinks: list[Any] = []

    def log_train(self, step: int, metrics: dict[str, float]) -> None:
        """One row of training metrics at environment step ``step``."""
        self.train.write({"step": step, **metrics})
        for k, v in metrics.items():
            if k != "time_s":
                self.tb.add_scalar(k, v, step)
        self.tb.flush()
        for sink in self.sinks:
            sink.log(step, metrics)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        """One row of evaluation metrics at environment step ``step``."""
        self.eval.write({"step": step, **metrics})
        for k, v in metrics.items():
            if k != "time_s":
                self.tb.add_scalar(k, v, step)
        self.tb.flush()
        for sink in self.sinks:
            sink.log(step, metrics)

    def close(self) -> None:
        """Flush and close every file."""
        self.train.close()
        self.eval.close()
        self.tb.close()
