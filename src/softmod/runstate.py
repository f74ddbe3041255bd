"""What a full checkpoint holds besides the replay: learner state, RNG states, resume rules.

Everything here turns live objects into tensors and plain Python data (ints, floats, strings,
lists, tuples, dicts), which ``torch.load(weights_only=True)`` reads back without unpickling any
object, and back again.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from softmod.config import RunConfig
from softmod.sac.agent import MultiTaskSAC
from softmod.validation import ConfigError

# options a resumed run may change; every other field of the config must match the saved run
RESUMABLE_CHANGES = (
    "total_steps",
    "device",
    "torch_threads",
    "checkpoint_interval",
    "keep_checkpoints",
    "on_nonfinite",
    "cuda_graph",
)


def capture_rng() -> dict[str, Any]:
    """The global RNG states: Python, NumPy (legacy global), PyTorch CPU and CUDA."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng` (CUDA states only where the same number of devices exists)."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _routed(agent: MultiTaskSAC) -> dict[str, nn.Module]:
    """Modules holding sampled routes outside their state_dict (Hard Routing's ``_routes``)."""
    return {name: m for name, m in agent.named_modules() if hasattr(m, "_routes")}


def learner_state(agent: MultiTaskSAC) -> dict[str, Any]:
    """Networks, target networks, temperatures, router buffers, optimisers, sampled routes."""
    return {
        "agent": agent.state_dict(),
        "dims": torch.tensor([agent.obs_dim, agent.act_dim, agent.num_tasks]),
        "optim": {
            "policy": agent.policy_opt.state_dict(),
            "q": agent.q_opt.state_dict(),
            "alpha": agent.alpha_opt.state_dict(),
        },
        "routes": {name: m._routes.value.cpu() for name, m in _routed(agent).items()},
    }


def load_learner_state(agent: MultiTaskSAC, state: dict[str, Any]) -> None:
    """Restore :func:`learner_state` into an agent built from the same config."""
    agent.load_state_dict(state["agent"])
    agent.policy_opt.load_state_dict(state["optim"]["policy"])
    agent.q_opt.load_state_dict(state["optim"]["q"])
    agent.alpha_opt.load_state_dict(state["optim"]["alpha"])
    for name, m in _routed(agent).items():
        m._routes.value = state["routes"][name].to(m.router_logits.device)


def first_nonfinite_parameter(agent: MultiTaskSAC) -> str | None:
    """The name of the first parameter or buffer holding a NaN or infinity, else None."""
    tensors = {k: v for k, v in agent.state_dict().items() if v.is_floating_point()}
    if not tensors:
        return None
    flags = torch.stack([torch.isfinite(v).all() for v in tensors.values()])
    if bool(flags.all()):
        return None
    return list(tensors)[int((~flags).nonzero()[0])]


def loop_state(trainer: Any) -> dict[str, Any]:
    """A Trainer's loop counters, episode sums, partial log sums and last evaluation."""
    t, last_eval = trainer, trainer.last_eval
    return {
        "it": t.it,
        "updates": t.updates,
        "updates_since_log": t.updates_since_log,
        "sums": {k: v.detach().cpu() for k, v in t.sums.items()},
        "done_returns": list(t.done_returns),
        "done_success": list(t.done_success),
        "ep_return": torch.from_numpy(t.ep_return.copy()),
        "ep_hit": torch.from_numpy(t.ep_hit.copy()),
        "obs": torch.from_numpy(np.array(t.obs, np.float32)),
        "elapsed": t.elapsed(),
        "last_log_step": t.last_log_step,
        "last_log_elapsed": t.last_log_elapsed,
        "best_success": t.best_success,
        "last_eval": None
        if last_eval is None
        else {
            "success": last_eval.success.tolist(),
            "returns": last_eval.returns.tolist(),
            "episodes": last_eval.episodes,
        },
        "faults": t.faults,
        "skipped": t.skipped,
        "action_rng": t.action_rng.bit_generator.state,
    }


def restore_loop_state(trainer: Any, loop: dict[str, Any]) -> None:
    """Restore :func:`loop_state` into a Trainer built from the same config (the running
    episodes' observations and sums are restored with the env state, by the Trainer)."""
    from softmod.evaluate import EvalResult

    t = trainer
    t.it, t.updates = int(loop["it"]), int(loop["updates"])
    t.updates_since_log = int(loop["updates_since_log"])
    t.sums = {k: v.to(t.device) for k, v in loop["sums"].items()}
    t.done_returns, t.done_success = list(loop["done_returns"]), list(loop["done_success"])
    t.elapsed_before = float(loop["elapsed"])
    t.last_log_step = int(loop["last_log_step"])
    t.last_log_elapsed = float(loop["last_log_elapsed"])
    t.best_success = float(loop["best_success"])
    if loop["last_eval"] is not None:
        e = loop["last_eval"]
        success, returns = np.array(e["success"]), np.array(e["returns"])
        t.last_eval = EvalResult(list(t.env.task_names), success, returns, int(e["episodes"]))
    t.faults, t.skipped = int(loop["faults"]), int(loop["skipped"])
    t.action_rng.bit_generator.state = loop["action_rng"]


def resumed_config(saved: RunConfig, changes: dict[str, Any]) -> RunConfig:
    """The saved config with the allowed ``changes``; any other change is a ConfigError."""
    for key, value in changes.items():
        if key in RESUMABLE_CHANGES:
            continue
        old = getattr(saved, key, None)
        if old != value:
            flag = "--" + key.replace("_", "-")
            allowed = ", ".join("--" + k.replace("_", "-") for k in RESUMABLE_CHANGES)
            raise ConfigError(
                f"--resume: {flag} {_show(value)} is incompatible with the run's {_show(old)}; "
                f"a resumed run may only change {allowed}"
            )
    allowed = {k: v for k, v in changes.items() if k in RESUMABLE_CHANGES}
    return dataclasses.replace(saved, **allowed)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
