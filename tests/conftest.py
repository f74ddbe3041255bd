"""Shared fixtures: a small, fast toy configuration."""

from __future__ import annotations

import os

import pytest
import torch

from softmod.config import EnvConfig, MLPNetConfig, RunConfig, SACConfig


@pytest.fixture(autouse=True)
def _threads() -> None:
    # two threads on the 2-core machine; one per worker under pytest-xdist (-n 2), where the two
    # workers already fill the cores
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def toy_config(**overrides) -> RunConfig:
    """A toy-environment run that MT-SAC learns in about 8k environment steps."""
    base = dict(
        env=EnvConfig(benchmark="toy", horizon=30, toy_tasks=4),
        sac=SACConfig(batch_per_task=32, warmup_per_task=500),
        policy_net=MLPNetConfig(),
        q_net=MLPNetConfig(),
        method="mt-sac",
        total_steps=10_000,
        eval_interval=4_000,
        eval_episodes=5,
        log_interval=2_000,
        device="cpu",
        seed=0,
    )
    base.update(overrides)
    return RunConfig(**base)


# One method per network type (the other methods of a type differ only in sizes): the tests that
# must reach every network parametrize over this list; tests/test_network_protocol.py keeps it
# complete.
NETWORK_METHODS = ["mt-sac", "mt-mh-sac", "mix-expert", "hard-routing", "single-task-sac",
                   "soft-shallow", "moore", "paco", "care"]  # fmt: skip
