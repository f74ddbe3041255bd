"""What a full checkpoint holds besides the replay: learner state, RNG states, resume rules.

Everything here turns live objects into tensors and plain Python data (ints, floats, strings,
lists, tuples, dicts), which ``torch.load(weights_only=True)`` reads back without unpickling any
object, and back again.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, cast

import numpy as np
import torch

from softmod.config import RunConfig
from softmod.nets.protocol import TaskNetwork
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
    np_state = cast(tuple, np.random.get_state())  # the legacy tuple (the default)
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


def _task_networks(agent: MultiTaskSAC) -> dict[str, TaskNetwork]:
    """Every task network of the agent by module name (``policy.net``, ``q.net``, ...)."""
    return {name: m for name, m in agent.named_modules() if isinstance(m, TaskNetwork)}


def learner_state(agent: MultiTaskSAC) -> dict[str, Any]:
    """Networks, target networks, temperatures, router buffers, optimisers, each network's
    extra state (:meth:`TaskNetwork.extra_state`: Hard Routing's sampled routes), and what the
    gradient method learns (issue 21: GradNorm's weights, FAMO's logits, their optimisers)."""
    return {
        "agent": agent.state_dict(),
        "dims": torch.tensor([agent.obs_dim, agent.act_dim, agent.num_tasks]),
        "optim": {
            "policy": agent.policy_opt.state_dict(),
            "q": agent.q_opt.state_dict(),
            "alpha": agent.alpha_opt.state_dict(),
        },
        "net_state": {
            name: extra for name, m in _task_networks(agent).items() if (extra := m.extra_state())
        },
        "grad": agent.grad.state_dict(),
    }


def load_learner_state(agent: MultiTaskSAC, state: dict[str, Any]) -> None:
    """Restore :func:`learner_state` into an agent built from the same config."""
    agent.load_state_dict(state["agent"])
    agent.policy_opt.load_state_dict(state["optim"]["policy"])
    agent.q_opt.load_state_dict(state["optim"]["q"])
    agent.alpha_opt.load_state_dict(state["optim"]["alpha"])
    extra = state.get("net_state")
    if extra is None:  # checkpoints before the network protocol: Hard Routing's routes only
        extra = {name: {"routes": t} for name, t in state.get("routes", {}).items()}
    for name, m in _task_networks(agent).items():
        m.load_extra_state(extra.get(name, {}))
    agent.grad.load_state_dict(state.get("grad", {}))  # checkpoints before issue 21: plain


def first_nonfinite_parameter(agent: MultiTaskSAC) -> str | None:
    """The name of the first parameter or buffer holding a NaN or infinity, else None."""
    tensors = {k: v for k, v in agent.state_dict().items() if v.is_floating_point()}
    if not tensors:
        return None
    flags = torch.stack([torch.isfinite(v).all() for v in tensors.values()])
    if bool(flags.all()):
        return None
    return list(tensors)[int((~flags).nonzero()[0])]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def incompatible_fields(a: RunConfig, b: RunConfig) -> list[str]:
    """The config fields (dotted, e.g. ``env.benchmark``) where ``a`` and ``b`` differ outside
    :data:`RESUMABLE_CHANGES`: the one rule of what a resumed run may change."""
    from softmod.config import to_dict

    fa, fb = _flat(to_dict(a)), _flat(to_dict(b))
    return sorted(
        k
        for k in fa.keys() | fb.keys()
        if k.split(".")[0] not in RESUMABLE_CHANGES and fa.get(k) != fb.get(k)
    )


def resumed_config(saved: RunConfig, changes: dict[str, Any]) -> RunConfig:
    """The saved config with ``changes`` (top-level fields); one outside
    :data:`RESUMABLE_CHANGES` that changes the run is a ConfigError."""
    unknown = [k for k in changes if not hasattr(saved, k)]
    new = dataclasses.replace(saved, **{k: v for k, v in changes.items() if k not in unknown})
    from softmod.config import to_dict
    from softmod.resolve import config_flag

    for key in unknown + incompatible_fields(saved, new):
        mine = changes.get(key) if key in unknown else _flat(to_dict(new)).get(key)
        theirs = _flat(to_dict(saved)).get(key)
        allowed = ", ".join(config_flag(k) for k in RESUMABLE_CHANGES)
        raise ConfigError(
            f"--resume: {config_flag(key)} {_show(mine)} is incompatible with the run's "
            f"{_show(theirs)}; a resumed run may only change {allowed}"
        )
    return new


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
