"""Checkpoints: tensors and plain data only, written atomically, loaded without unpickling objects.

A run directory's ``checkpoints/`` holds:

- ``step-<S>.pt``: a full checkpoint at environment step S (networks, target networks, optimisers,
  temperatures, router state, every RNG state, counters, logger position, config), small;
- ``replay-<S>.pt``: the replay rings at step S, large, written before ``step-<S>.pt`` so that a
  full checkpoint never exists without its replay;
- ``best.pt``: the weights of the best periodic evaluation (mean success), ``final.pt``: the
  weights at the end. Both load with :func:`load_agent` (``softmod eval --checkpoint``).

Every file is written to a temporary name, fsynced and renamed over the target, so a crash during
a save never damages an earlier file. Only the newest ``keep`` full checkpoints are kept. Loading
uses ``torch.load(weights_only=True)``: a file holding any pickled object is refused.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from softmod.config import RunConfig, load_config
from softmod.sac.agent import MultiTaskSAC

FORMAT = "softmod-checkpoint-1"
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint or run directory that cannot be loaded."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. a full disk); earlier checkpoints are intact."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform / file system
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: dict, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path`` (and fsync the dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # e.g. a full disk: leave no half-written temporary behind
        raise
    _fsync_dir(path.parent)


def load_file(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; any failure is a one-line CheckpointError
    naming the file (refused pickled objects, truncated or corrupted data)."""
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain data ({first})"
        ) from None
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found") from None
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot load {path}: truncated or corrupted ({first})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"cannot load {path}: not a softmod checkpoint")
    return obj


def save_weights(agent: MultiTaskSAC, path: Path, step: int, **extra: Any) -> None:
    """Save the agent's networks and temperatures (no optimiser or replay state)."""
    dims = torch.tensor([agent.obs_dim, agent.act_dim, agent.num_tasks])
    obj = {"agent": agent.state_dict(), "step": torch.tensor(step), "dims": dims, **extra}
    atomic_torch_save(obj, path)


def load_agent(
    run_dir: Path, device: torch.device, name: str = "final.pt"
) -> tuple[RunConfig, MultiTaskSAC]:
    """Rebuild a run's agent from ``config.json`` and ``checkpoints/<name>`` (weights only); any
    checkpoint works: ``final.pt``, ``best.pt`` or a full ``step-<S>.pt``."""
    run_dir = Path(run_dir)
    cfg_path, ckpt = run_dir / "config.json", run_dir / "checkpoints" / name
    if not cfg_path.exists():
        raise CheckpointError(f"{cfg_path} not found: not a softmod run directory")
    if not ckpt.exists():
        raise CheckpointError(f"{ckpt} not found: the run has no saved weights yet")
    cfg = load_config(cfg_path)
    state = load_file(ckpt, device)
    try:
        obs_dim, act_dim, n_tasks = (int(x) for x in state["dims"])
        agent = MultiTaskSAC(cfg, obs_dim, act_dim, n_tasks, device)
        agent.load_state_dict(state["agent"])
    except Exception as err:  # not a softmod file, or another run's networks
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"cannot load checkpoint {ckpt}: {first}") from None
    return cfg, agent


def step_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """The full checkpoints of a run directory's ``checkpoints/``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.match(p.name))]
    return sorted(found)


def replay_path(ckpt_dir: Path, step: int) -> Path:
    """Where the replay rings of the full checkpoint at ``step`` live."""
    return ckpt_dir / f"replay-{step:012d}.pt"


def write_checkpoint(
    ckpt_dir: Path, step: int, state: dict[str, Any], replay: dict[str, Any], keep: int
) -> Path:
    """Write the replay, then the full checkpoint at ``step``; keep only the newest ``keep``."""
    rpath = replay_path(ckpt_dir, step)
    path = ckpt_dir / f"step-{step:012d}.pt"
    try:
        atomic_torch_save(replay, rpath)
        meta = {"format": FORMAT, "step": step, "replay_file": rpath.name}
        atomic_torch_save({**meta, "replay_bytes": rpath.stat().st_size, **state}, path)
    except OSError as err:  # a full disk, a lost mount: keep what was there before
        if not path.exists():
            rpath.unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"cannot write the checkpoint of step {step:,} to {ckpt_dir}: "
            f"{err.strerror or err}; the earlier checkpoints are intact"
        ) from None
    for old_step, old in step_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
        replay_path(ckpt_dir, old_step).unlink(missing_ok=True)
    for stray in ckpt_dir.glob("replay-*.pt"):  # replays whose full checkpoint is gone
        m = re.match(r"^replay-(\d+)\.pt$", stray.name)
        if m and not (ckpt_dir / f"step-{m.group(1)}.pt").exists():
            stray.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Load one full checkpoint and its replay; a CheckpointError names the bad file."""
    state = load_file(path, device)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"cannot load {path}: not a full softmod checkpoint")
    rpath = path.parent / str(state["replay_file"])
    if not rpath.exists():
        raise CheckpointError(f"{rpath} not found: the replay of {path.name} is missing")
    if rpath.stat().st_size != state["replay_bytes"]:
        raise CheckpointError(
            f"cannot load {rpath}: truncated ({rpath.stat().st_size} bytes, "
            f"{state['replay_bytes']} written)"
        )
    return state, load_file(rpath, device)


def load_latest_checkpoint(
    ckpt_dir: Path, warn: Callable[[str], None], device: torch.device | str = "cpu"
) -> tuple[Path, dict, dict]:
    """The newest full checkpoint that loads; a bad one is reported through ``warn``, renamed to
    ``*.bad`` and the previous one is tried. Raises CheckpointError if none loads."""
    found = step_checkpoints(ckpt_dir)
    if not found:
        raise CheckpointError(f"no checkpoint in {ckpt_dir}: nothing to resume")
    errors = []
    for _, path in reversed(found):
        try:
            state, replay = load_checkpoint(path, device)
        except CheckpointError as err:
            errors.append(str(err))
            warn(f"{err}; trying the previous checkpoint")
            path.rename(path.with_name(path.name + ".bad"))
            continue
        return path, state, replay
    raise CheckpointError(f"no loadable checkpoint in {ckpt_dir}: {'; '.join(errors)}")


def latest_checkpoint_step(run_dir: Path) -> int | None:
    """The step of the newest full checkpoint of a run (by file name; not loaded), or None."""
    found = step_checkpoints(Path(run_dir) / "checkpoints")
    return max(step for step, _ in found) if found else None
