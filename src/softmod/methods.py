"""The methods ``softmod train --method`` accepts: a network config per method, nothing else.

Every method trains with the same multi-task SAC; a method only chooses the policy and Q networks,
whether the task balance weights are on by default, and the paper's sample budget (DESIGN §4).
"""

from __future__ import annotations

from dataclasses import dataclass

from softmod.config import (
    CARENetConfig,
    HardRoutingNetConfig,
    MixExpertNetConfig,
    MLPNetConfig,
    MOORENetConfig,
    MultiHeadNetConfig,
    NetworkConfig,
    PaCoNetConfig,
    SingleTaskNetConfig,
    SoftModularNetConfig,
)


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
    "mt-mh-sac": MethodSpec(
        network=MultiHeadNetConfig(hidden=(400, 400, 400)),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="MT-MH-SAC: shared MLP 3 x 400, one output head per task",
    ),
    **{
        f"mt-mh-sac-{depth}{'-wide' if width == 600 else ''}": MethodSpec(
            network=MultiHeadNetConfig(hidden=(width,) * depth),
            balance=False,
            paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
            summary=f"MT-MH-SAC capacity variant (Table 2): {depth} x {width}, one head per task",
        )
        for depth, width in [(4, 400), (5, 400), (6, 400), (4, 600), (5, 600)]
    },
    "mix-expert": MethodSpec(
        network=MixExpertNetConfig(),
        balance=False,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Mix-Expert: 4 MT-SAC experts mixed by a softmax gate on [state, one-hot]",
    ),
    "hard-routing": MethodSpec(
        network=HardRoutingNetConfig(),
        balance=False,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Hard Routing: 4 x 4 modules (d=128), one per layer, tabular REINFORCE router",
    ),
    "single-task-sac": MethodSpec(
        network=SingleTaskNetConfig(),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="Single-task SAC: an independent MLP 3 x 400 per task (stacked weights)",
    ),
    "soft-shallow": MethodSpec(
        network=SoftModularNetConfig(layers=2, modules=2, module_dim=256),
        balance=True,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Soft modularization, Shallow: L=2, n=2, d=256, balance weights on",
    ),
    "soft-deep": MethodSpec(
        network=SoftModularNetConfig(layers=4, modules=4, module_dim=128),
        balance=True,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Soft modularization, Deep: L=4, n=4, d=128, balance weights on",
    ),
    "soft-shallow-no-obs": MethodSpec(
        network=SoftModularNetConfig(layers=2, modules=2, module_dim=256, route_obs=False),
        balance=True,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Ablation (Fig. 6b): soft-shallow routed from the task embedding alone",
    ),
    "soft-deep-no-obs": MethodSpec(
        network=SoftModularNetConfig(layers=4, modules=4, module_dim=128, route_obs=False),
        balance=True,
        paper_steps={"mt10": 15_000_000, "mt50": 50_000_000},
        summary="Ablation (Fig. 6b): soft-deep routed from the task embedding alone",
    ),
    # Networks published after the paper (issue 20), trained by the same multi-task SAC. Each
    # has an MT10 and an MT50 size (its reference configs); presets pick the benchmark's size.
    # Budgets: MOORE 20 epochs x 1e5 vector steps x T envs (run_metaworld_mt*_mhsac_mt_moore.sh);
    # PaCo 5e6 x T (paco-mtrl metaworld_mt10_paco_conf.py); CARE 2e6 vector steps x T envs
    # (facebookresearch/mtrl docs, tutorials/baseline.rst).
    "moore": MethodSpec(
        network=MOORENetConfig(experts=4),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="MOORE (MT10 size): 4 orthonormal experts 3 x 400, task mix, tanh, task heads",
    ),
    "moore-mt50": MethodSpec(
        network=MOORENetConfig(experts=6),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="MOORE (MT50 size): 6 orthonormal experts 3 x 400, task mix, tanh, task heads",
    ),
    "paco": MethodSpec(
        network=PaCoNetConfig(param_sets=5),
        balance=False,
        paper_steps={"mt10": 50_000_000, "mt50": 100_000_000},
        summary="PaCo (MT10 size): K=5 parameter sets 3 x 400, mask-out 3e3, reset interpolate",
    ),
    "paco-mt50": MethodSpec(
        network=PaCoNetConfig(param_sets=20),
        balance=False,
        paper_steps={"mt10": 50_000_000, "mt50": 100_000_000},
        summary="PaCo (MT50 size): K=20 parameter sets 3 x 400, mask-out 3e3, reset interpolate",
    ),
    "care": MethodSpec(
        network=CARENetConfig(experts=6),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="CARE (MT10 size): 6 encoders 2 x 50, attention from a task context, MLP 3 x 400",
    ),
    "care-mt50": MethodSpec(
        network=CARENetConfig(experts=10),
        balance=False,
        paper_steps={"mt10": 20_000_000, "mt50": 100_000_000},
        summary="CARE (MT50 size): 10 encoders 2 x 50, attention from a task context, MLP 3 x 400",
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
