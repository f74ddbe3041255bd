"""softmod: multi-task reinforcement learning with soft modularization on Meta-World.

The public Python API (issue 22; the README's "From Python" section shows it at work)::

    import softmod

    run = softmod.train({"benchmark": "toy", "method": "soft-shallow", "total_steps": 20_000})
    policy = softmod.load(run)                      # a Policy: NumPy in, NumPy out
    env = softmod.make_env("toy", "fixed", seed=0)  # the project's vector env
    actions = policy.act(env.reset(), env.task_ids)

- :func:`train` (options or a RunConfig -> run directory), :func:`load` (run directory ->
  :class:`Policy`, with ``act``, ``routing`` and ``task_names``), :func:`make_env` (the vector env)
  and :func:`make_task_env` (one task as a ``gymnasium.Env``) live in ``softmod/api.py``.
- ``import softmod`` stays light: PyTorch and Meta-World load when a function is first called.
- The training loop itself (``Trainer``, what the command line and :func:`train` run) is the
  module ``softmod.loop``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Policy",
    "Routing",
    "TaskEnv",
    "__version__",
    "load",
    "make_env",
    "make_task_env",
    "train",
]

if TYPE_CHECKING:
    from softmod.api import Policy, Routing, load, make_env, make_task_env, train
    from softmod.envs.gym_view import TaskEnv

_API = {
    "Policy": "softmod.api",
    "Routing": "softmod.api",
    "load": "softmod.api",
    "make_env": "softmod.api",
    "make_task_env": "softmod.api",
    "train": "softmod.api",
    "TaskEnv": "softmod.envs.gym_view",
}


def __getattr__(name: str) -> Any:
    """The public API, imported on first use (PEP 562)."""
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'softmod' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
