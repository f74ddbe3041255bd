"""``softmod train --resume RUN_DIR``: continue a run from its newest good full checkpoint.

On CPU a resumed run is bit-identical to one that never stopped: the checkpoint holds every
parameter, optimiser moment, RNG state (Python, NumPy, PyTorch, each environment), the replay
rings, the counters and the partial sums of the current log interval. The CSV and TensorBoard logs
are cut back to the checkpoint's step first (see ``softmod/runlog.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from softmod.checkpoint import (
    CheckpointError,
    checkpoint_step,
    load_latest_checkpoint,
    step_checkpoints,
)
from softmod.config import RunConfig, config_from_dict, load_config, to_dict
from softmod.evaluate import archive_final_evals, final_eval_step
from softmod.loop import Trainer, TrainResult
from softmod.runstate import incompatible_fields, resumed_config
from softmod.training_support import hold_run_dir
from softmod.validation import ConfigError, validate_config


def _check_same_run(cfg: RunConfig, saved: dict[str, Any], path: Path) -> None:
    """The checkpoint must come from the run ``config.json`` describes."""
    try:
        ckpt_cfg = config_from_dict(saved)
    except Exception as err:
        raise CheckpointError(f"cannot read the config stored in {path}: {err}") from None
    a, b = to_dict(cfg), to_dict(ckpt_cfg)
    for key in incompatible_fields(cfg, ckpt_cfg):
        mine, theirs = _lookup(a, key), _lookup(b, key)
        raise ConfigError(
            f"--resume: config.json's {key} {mine!r} differs from {theirs!r} stored "
            f"in {path}; the directory holds an incompatible run"
        )


def _lookup(d: dict[str, Any], dotted: str) -> Any:
    value: Any = d
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _finished_at(run_dir: Path, step: int) -> bool:
    """Whether final.pt and final_eval.json of ``step`` were written (a final_eval.json of an
    older softmod holds no step: then final.pt's step decides)."""
    final_step = final_eval_step(run_dir)
    if final_step is not None or not (run_dir / "final_eval.json").exists():
        return final_step == step
    try:
        return checkpoint_step(run_dir) == step
    except CheckpointError:
        return False


def load_run_config(run_dir: Path) -> RunConfig:
    """A run directory's ``config.json``; a missing or unreadable one is a ConfigError."""
    cfg_path = Path(run_dir) / "config.json"
    if not cfg_path.exists():
        raise ConfigError(
            f"--resume {str(run_dir)!r}: not a softmod run directory (no config.json)"
        )
    try:
        return load_config(cfg_path)
    except Exception as err:
        raise ConfigError(f"--resume: cannot read {cfg_path}: {err}") from None


def resume(
    run_dir: Path,
    changes: dict[str, Any] | None = None,
    progress: bool = True,
    console: Console | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest loadable full checkpoint.

    ``changes``: config fields to change, only those in ``RESUMABLE_CHANGES`` (e.g. a larger
    ``total_steps``); anything else is a ConfigError. A checkpoint that does not load (truncated,
    corrupted, holding a pickled object) is reported, renamed ``*.bad``; the previous one is used.
    A run killed after its last checkpoint but before ``final.pt`` / ``final_eval.json`` is
    finished: those are written from the checkpoint (its last evaluation is in it).
    """
    console = console or Console(stderr=True)
    run_dir = Path(run_dir)
    cfg = resumed_config(load_run_config(run_dir), changes or {})
    names = validate_config(cfg)  # every option checked before anything is built
    if not os.access(run_dir, os.W_OK):
        raise ConfigError(f"--resume {str(run_dir)!r}: the run directory is not writable")
    if not step_checkpoints(run_dir / "checkpoints"):
        warmup_end = cfg.sac.warmup_per_task * len(names)
        raise ConfigError(
            f"--resume {str(run_dir)!r}: nothing to resume, the run stopped before its first "
            f"checkpoint (written at the end of the warm-up, about step {warmup_end:,}); remove "
            f"the directory (rm -r {run_dir}) and start the run again"
        )
    with hold_run_dir(run_dir):  # one process per run; before anything is renamed or written
        try:
            path, state, replay = load_latest_checkpoint(
                run_dir / "checkpoints", lambda msg: console.print(f"[yellow]warning: {msg}")
            )
        except CheckpointError as err:
            raise CheckpointError(
                f"{err}; the run cannot be continued: remove {run_dir} and start it again"
            ) from None
        _check_same_run(cfg, state["config"], path)
        step = int(state["step"])
        last_it = math.ceil(cfg.total_steps / len(names))  # one env per task: the vector's width
        if int(state["loop"]["it"]) > last_it or (
            int(state["loop"]["it"]) == last_it and _finished_at(run_dir, step)
        ):
            raise ConfigError(
                f"--resume: the run is complete at step {step:,} (--total-steps "
                f"{cfg.total_steps:,}); pass a larger --total-steps to continue it"
            )
        if _finished_at(run_dir, step):  # finished, yet not complete: trained to a larger budget
            for path in archive_final_evals(run_dir, step):
                console.print(f"the evaluation of the final weights at step {step:,} -> {path}")
        if cfg != load_config(run_dir / "config.json"):  # new total steps etc., atomically
            tmp = run_dir / "config.json.tmp"
            tmp.write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
            os.replace(tmp, run_dir / "config.json")
        trainer = Trainer.from_checkpoint(cfg, run_dir, names, console, path, state, replay)
        what = "finishing (final.pt, final_eval.json)" if trainer.loop.it == last_it else "resuming"
        console.print(
            f"[bold]softmod[/] {what} {cfg.method} on {cfg.env.benchmark}-{cfg.env.goals} from "
            f"{path} (step {step:,} of {cfg.total_steps:,}) -> {run_dir}"
        )
        return trainer.run(progress, stop_at)


def config_changes(cfg: RunConfig, base: RunConfig) -> dict[str, Any]:
    """The top-level config fields where ``cfg`` differs from ``base``."""
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if getattr(cfg, f.name) != getattr(base, f.name)
    }
