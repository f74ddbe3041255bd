"""Parameter counts of every method's networks on Meta-World (paper Table 2 reports them).

Networks are built exactly as training builds them (:class:`~softmod.sac.agent.MultiTaskSAC`):
observation 39, action 4; the policy maps the observation to ``2|A|`` with one member, the twin
Q-function maps ``[observation, action]`` to 1 with two members, and ONE Q-function's count is half
the twin's. Counts are exact; the networks are built on PyTorch's ``meta`` device (no memory, no
initialisation arithmetic) where they allow it, on the CPU otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from softmod.methods import METHODS
from softmod.nets import build_actor_critic, count_parameters

OBS_DIM, ACT_DIM = 39, 4  # Meta-World v3
BENCHMARK_TASKS = {"mt10": 10, "mt50": 50}
REFERENCE = "soft-deep"  # paper Table 2 reports parameters relative to Ours (Deep)


def _build(make: Callable[[], tuple[nn.Module, nn.Module]]) -> tuple[nn.Module, nn.Module]:
    """Build on the meta device when the network allows it, else on the CPU."""
    try:
        with torch.device("meta"):
            return make()
    except (NotImplementedError, RuntimeError):
        return make()


def method_parameter_counts(method: str, num_tasks: int) -> dict[str, int]:
    """Parameters of one method's policy and of ONE of its Q-functions for ``num_tasks`` tasks."""
    net = METHODS[method].network
    policy, twin_q = _build(lambda: build_actor_critic(net, net, OBS_DIM, ACT_DIM, num_tasks))
    q_twin = count_parameters(twin_q)
    if q_twin % 2:
        raise AssertionError(f"{method}: the twin Q-function has an odd parameter count {q_twin}")
    return {"policy": count_parameters(policy), "q": q_twin // 2}


def parameter_table(benchmark: str) -> list[dict]:
    """One row per method: policy and one-Q parameter counts, and both relative to soft-deep.

    Row keys: ``method``, ``summary``, ``policy``, ``q``, ``policy_rel``, ``q_rel`` (the ratios are
    None when soft-deep cannot be built).
    """
    if benchmark not in BENCHMARK_TASKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; allowed: {', '.join(BENCHMARK_TASKS)}")
    num_tasks = BENCHMARK_TASKS[benchmark]
    counts = {m: method_parameter_counts(m, num_tasks) for m in METHODS}
    ref = counts.get(REFERENCE)
    rows = []
    for method, c in counts.items():
        rows.append(
            {
                "method": method,
                "summary": METHODS[method].summary,
                "policy": c["policy"],
                "q": c["q"],
                "policy_rel": c["policy"] / ref["policy"] if ref else None,
                "q_rel": c["q"] / ref["q"] if ref else None,
            }
        )
    return rows


def print_parameter_table(benchmark: str, console: Console | None = None) -> None:
    """Print the parameter table (paper Table 2 style, relative to soft-deep) with rich."""
    console = console or Console()
    rows = parameter_table(benchmark)
    table = Table(
        title=f"Parameters on {benchmark.upper()} ({BENCHMARK_TASKS[benchmark]} tasks, "
        f"obs {OBS_DIM}, action {ACT_DIM}); relative to {REFERENCE}"
    )
    table.add_column("method", no_wrap=True)
    table.add_column("policy", justify="right")
    table.add_column("× " + REFERENCE, justify="right")
    table.add_column("one Q-function", justify="right")
    table.add_column("× " + REFERENCE, justify="right")

    def rel(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}x"

    for r in rows:
        table.add_row(
            r["method"],
            f"{r['policy']:,}",
            rel(r["policy_rel"]),
            f"{r['q']:,}",
            rel(r["q_rel"]),
        )
    console.print(table)
