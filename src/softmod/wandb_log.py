"""Weights & Biases, optional (issue 22): ``softmod train --wandb PROJECT`` (extra ``[wandb]``).

:class:`WandbSink` receives every row :class:`~softmod.runlog.RunLogger` writes to TensorBoard,
with the same metric names and environment step (``train/…``, ``loss/…``, ``alpha/<task>``,
``eval/<task>/success``, ...), logs the resolved config (``config.json``'s content) when the run
starts and the final evaluation as a table (``final_eval``: task, success, return) and summary
values (``final/mean_success``, ``final/<task>/success``) at the end. W&B's files go to
``RUN_DIR/wandb``; ``WANDB_MODE=offline`` keeps them there without a network (the tests use it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from softmod.config import RunConfig, to_dict
from softmod.evaluate import EvalResult

INSTALL_HINT = "pip install 'softmod[wandb]' (or pip install wandb)"


def check_wandb(project: str | None, flag: str = "--wandb") -> None:
    """Before any work: a usable project name and an installed ``wandb``; else a ConfigError."""
    from softmod.validation import ConfigError

    if project is None:
        return
    if not project.strip() or "/" in project:
        raise ConfigError(f"{flag} {project!r} is not a W&B project name (no '/', not empty)")
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError(f"{flag} needs the wandb package, which is not installed: {INSTALL_HINT}")


class WandbSink:
    """One W&B run mirroring a softmod run's TensorBoard scalars."""

    def __init__(self, project: str, cfg: RunConfig, run_dir: Path) -> None:
        import wandb

        run_dir = Path(run_dir)
        self.run: Any = wandb.init(
            project=project,
            name=run_dir.name,
            dir=str(run_dir),
            config=to_dict(cfg),
            job_type="train",
            tags=[cfg.method, cfg.env.benchmark, cfg.env.goals],
        )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """The scalars of one TensorBoard row (``time_s`` is not one there either)."""
        self.run.log({k: v for k, v in metrics.items() if k != "time_s"}, step=step)

    def final(self, result: EvalResult) -> None:
        """The final evaluation: a table and summary values."""
        import wandb

        rows = [
            [name, float(result.success[i]), float(result.returns[i])]
            for i, name in enumerate(result.task_names)
        ]
        self.run.log({"final_eval": wandb.Table(columns=["task", "success", "return"], data=rows)})
        self.run.summary["final/mean_success"] = result.mean_success
        for name, success, _ in rows:
            self.run.summary[f"final/{name}/success"] = success

    def close(self, failed: bool = False) -> None:
        """Finish the W&B run (exit code 1 if the softmod run failed)."""
        self.run.finish(exit_code=1 if failed else 0)
