"""Saving and loading trained weights: tensors only, written atomically, loaded without pickle."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from softmod.config import RunConfig, load_config
from softmod.sac.agent import MultiTaskSAC


class CheckpointError(ValueError):
    """A checkpoint or run directory that cannot be loaded."""


def atomic_torch_save(obj: dict, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_weights(agent: MultiTaskSAC, path: Path, step: int) -> None:
    """Save the agent's networks and temperatures (no optimiser or replay state)."""
    dims = torch.tensor([agent.obs_dim, agent.act_dim, agent.num_tasks])
    atomic_torch_save({"agent": agent.state_dict(), "step": torch.tensor(step), "dims": dims}, path)


def load_agent(
    run_dir: Path, device: torch.device, name: str = "final.pt"
) -> tuple[RunConfig, MultiTaskSAC]:
    """Rebuild a run's agent from ``config.json`` and ``checkpoints/<name>`` (weights only)."""
    run_dir = Path(run_dir)
    cfg_path, ckpt = run_dir / "config.json", run_dir / "checkpoints" / name
    if not cfg_path.exists():
        raise CheckpointError(f"{cfg_path} not found: not a softmod run directory")
    if not ckpt.exists():
        raise CheckpointError(f"{ckpt} not found: the run has no saved weights yet")
    cfg = load_config(cfg_path)
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
        obs_dim, act_dim, n_tasks = (int(x) for x in state["dims"])
        agent = MultiTaskSAC(cfg, obs_dim, act_dim, n_tasks, device)
        agent.load_state_dict(state["agent"])
    except Exception as err:  # truncated, corrupted or not a softmod file
        raise CheckpointError(f"cannot load checkpoint {ckpt}: {err}") from None
    return cfg, agent
