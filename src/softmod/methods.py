"""The methods ``softmod train --method`` accepts: a network config per method, nothing else.

Every method trains with the same multi-task SAC; a method only chooses the policy and Q networks,
whether the task balance weights are on by default, and the paper's sample budget (DESIGN §4).
"""

from __future__ import annotations

from dataclasses import dataclass

from softmod.config import MLPNetConfig, NetworkConfig


@dataclass(frozen=True)
class MethodSpec:
    """What a method name stands for."""

    network: NetworkConfig
    balance: bool  # task balance weights on by default (soft modularization only)
    paper_steps: dict[str, int]  # the paper's training samples per benchmark
    summary: str


METHODS: dict[str, MethodSpec] = {
    "mt-sac": MethodSpec(
        network=MLPNetConfig(hidden=(400, 400, 400)),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="MT-SAC: MLP 3 x 400 on [state, one-hot task]",
    ),
}

# Default sample budget where the paper gives none (toy, MT1).
DEFAULT_STEPS = {"toy": 100_000, "mt1": 1_000_000}


def method_names() -> list[str]:
    """Every method name, in table order."""
    return list(METHODS)


def get_method(name: str) -> MethodSpec:
    """Look up a method; an unknown name raises ValueError listing the valid ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def default_total_steps(method: str, benchmark: str) -> int:
    """The paper's sample budget for a method on a benchmark (DESIGN §4)."""
    spec = get_method(method)
    return spec.paper_steps.get(benchmark, DEFAULT_STEPS.get(benchmark, 1_000_000))
