"""The whole SAC update captured once as a CUDA graph and replayed (CUDA only).

UNTESTED ON A GPU (written on a CPU-only machine; the CPU path never uses it). It follows PyTorch's
whole-network capture recipe: the optimisers are switched to ``capturable`` (their step counters
live on the device), a few updates run on a side stream to warm up, then one update - temperatures,
critics, policy, gradient clipping, optimiser steps and the soft target update - is captured into a
graph that reads a static batch. Each call copies the new batch into the static tensors (the
replay buffer and its sampling are device-resident, so this is a device-to-device copy) and replays
the graph; the metrics returned are the graph's static outputs, cloned.

Only networks without host synchronisation in their forward can be captured: MT-SAC, Mix-Expert
and soft modularization. The networks that group rows by task (multi-head, single-task, Hard
Routing) read group sizes on the host and stay eager; :func:`graph_safe` tells which.
"""

from __future__ import annotations

import torch

from softmod.buffer import Batch
from softmod.sac.agent import MultiTaskSAC

GRAPH_SAFE = ("TaskConditionedMLP", "MixExpertNet", "SoftModularNet")


def graph_safe(agent: MultiTaskSAC) -> bool:
    """Whether the agent's networks can be captured (no host sync in their forward)."""
    nets = (type(agent.policy.net).__name__, type(agent.q.net).__name__)
    return all(n in GRAPH_SAFE for n in nets)


class GraphedUpdate:
    """``agent.update`` as a replayed CUDA graph for one fixed batch size."""

    def __init__(self, agent: MultiTaskSAC, example: Batch, warmup: int = 3) -> None:
        device = agent.log_alpha.device
        if device.type != "cuda":
            raise ValueError("CUDA graphs need the agent on a CUDA device")
        if not graph_safe(agent):
            raise ValueError("this method's networks synchronise with the host; update eagerly")
        self.agent = agent
        for opt in (agent.policy_opt, agent.q_opt, agent.alpha_opt):
            for group in opt.param_groups:
                group["capturable"] = True
            for state in opt.state.values():  # step counters must live on the device
                if "step" in state and not state["step"].is_cuda:
                    state["step"] = state["step"].to(device)
        self.static = Batch(*(t.detach().clone() for t in example))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                agent.update(self.static)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.metrics = agent.update(self.static)

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update on ``batch`` (same shapes as the example): copy in, replay, metrics out."""
        for dst, src in zip(self.static, batch, strict=True):
            dst.copy_(src, non_blocking=True)
        self.graph.replay()
        return {k: v.clone() for k, v in self.metrics.items()}


def maybe_graph(agent: MultiTaskSAC, example: Batch) -> GraphedUpdate | None:
    """A :class:`GraphedUpdate` when the agent is on CUDA and graph-safe, else ``None``."""
    if agent.log_alpha.device.type != "cuda" or not graph_safe(agent):
        return None
    return GraphedUpdate(agent, example)
