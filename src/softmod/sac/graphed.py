"""The whole SAC update captured once as a CUDA graph and replayed (CUDA only).

Checked on an NVIDIA H200 (2026-12-04, ``tests/test_cuda.py``, ``benchmarks/results/gpu/``): from
the same state, replays equal eager updates bit for bit; the CPU path never uses it. It follows
PyTorch's whole-network capture recipe: the optimisers are switched to ``capturable`` (their step
counters live on the device), a few updates run on a side stream to warm up, then one update -
temperatures, critics, policy, gradient clipping, optimiser steps and the soft target update - is
captured into a graph that reads a static batch. The warm-up updates are undone afterwards
(parameters, targets, temperatures and optimiser moments are copied back in place), so the run sees
exactly the updates it asked for. Each call copies the new batch into the static tensors (the replay
buffer and its sampling are device-resident, so this is a device-to-device copy) and replays the
graph; the metrics returned are the graph's static outputs, cloned. The first replay checks that the
live parameters moved (a graph that updated copies would be caught there, and training falls back to
eager updates: :func:`graphed_update`).

Reproducibility: a graphed run is deterministic for a seed, but not bit-identical to an eager run
(the warm-up draws from the CUDA generator), and a resumed graphed run continues with a new graph.

Only networks without host synchronisation in their forward can be captured: those that declare
``graph_safe = True`` (:class:`softmod.nets.protocol.TaskNetwork`; MT-SAC, Mix-Expert, soft
modularization, MOORE, PaCo and CARE). The networks that group rows by task (multi-head,
single-task, Hard Routing) read group sizes on the host and stay eager, as do the gradient
methods other than ``plain`` (issue 21); :func:`graph_safe` tells which.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from softmod.buffer import Batch
from softmod.sac.agent import MultiTaskSAC


def graph_safe(agent: MultiTaskSAC) -> bool:
    """Whether the agent's update can be captured: both networks declare ``graph_safe`` (no host
    sync in their forward) and so does the gradient method (only ``plain``: softmod/grad/)."""
    return agent.policy.net.graph_safe and agent.q.net.graph_safe and agent.grad.graph_safe


class GraphCheckError(RuntimeError):
    """The first replay left the live parameters unchanged (nothing was updated)."""


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
        saved = _snapshot(agent)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    agent.update(self.static)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.metrics = agent.update(self.static)
        finally:  # undo the warm-up updates, in place (the graph keeps its addresses)
            _restore(agent, saved)
        self.checked = False

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update on ``batch`` (same shapes as the example): copy in, replay, metrics out."""
        for dst, src in zip(self.static, batch, strict=True):
            dst.copy_(src, non_blocking=True)
        probe = None if self.checked else _probe(self.agent)
        self.graph.replay()
        if probe is not None:
            same = [torch.equal(a, b) for a, b in zip(probe, _probe(self.agent), strict=True)]
            if all(same):  # nothing moved: the eager update can take over safely
                raise GraphCheckError("the replayed CUDA graph did not update the live parameters")
            if any(same):  # part moved: neither path can be trusted from here
                raise RuntimeError(
                    "the replayed CUDA graph updated only part of the agent (temperatures, policy, "
                    f"Q unchanged: {same}); rerun with --no-cuda-graph"
                )
            self.checked = True
        return {k: v.clone() for k, v in self.metrics.items()}


def _optim_state(agent: MultiTaskSAC) -> list[torch.Tensor]:
    return [
        v
        for opt in (agent.policy_opt, agent.q_opt, agent.alpha_opt)
        for state in opt.state.values()
        for v in state.values()
        if torch.is_tensor(v)
    ]


def _snapshot(agent: MultiTaskSAC) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Copies of every parameter (targets and temperatures included) and of the optimiser state
    (``None`` while the optimisers have not stepped yet: their state is then all zeros)."""
    params = [t.detach().clone() for t in agent.parameters()]
    opt = _optim_state(agent)
    return params, ([t.clone() for t in opt] if opt else None)


def _restore(agent: MultiTaskSAC, saved: tuple[list[torch.Tensor], list[torch.Tensor] | None]):
    params, opt = saved
    with torch.no_grad():
        for t, v in zip(agent.parameters(), params, strict=True):
            t.copy_(v)
        for i, s in enumerate(_optim_state(agent)):  # Adam's fresh state: step 0, zero moments
            s.copy_(opt[i]) if opt is not None else s.zero_()


def _probe(agent: MultiTaskSAC) -> list[torch.Tensor]:
    """Small copies of live tensors every update changes: the temperatures, one policy and one Q
    parameter."""
    first = [next(agent.policy.parameters()), next(agent.q.parameters())]
    return [agent.log_alpha.detach().clone(), *(p.detach().flatten()[:4096].clone() for p in first)]


def graphed_update(
    agent: MultiTaskSAC, example: Batch, warn: Callable[[str], None]
) -> Callable[[Batch], dict[str, torch.Tensor]]:
    """The update training should call: the CUDA graph when it can be built and passes its first
    replay, else ``agent.update`` (``warn`` says why, once)."""
    try:
        graphed = GraphedUpdate(agent, example)
    except Exception as err:  # any capture failure: stay eager, say so
        warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); updating eagerly")
        return agent.update
    state: dict[str, Callable[[Batch], dict[str, torch.Tensor]]] = {"fn": graphed}

    def update(batch: Batch) -> dict[str, torch.Tensor]:
        try:
            return state["fn"](batch)
        except GraphCheckError as err:  # nothing was updated: the eager update is safe
            warn(f"{err}; updating eagerly from here on")
            state["fn"] = agent.update
            return agent.update(batch)

    return update


def update_fn(
    agent: MultiTaskSAC, example: Batch, enabled: bool, warn: Callable[[str], None]
) -> Callable[[Batch], dict[str, torch.Tensor]]:
    """Training's update: the CUDA graph (:func:`graphed_update`) when ``enabled``, the agent is
    on CUDA and its networks are graph-safe; ``agent.update`` otherwise."""
    if enabled and agent.log_alpha.device.type == "cuda" and graph_safe(agent):
        return graphed_update(agent, example, warn)
    return agent.update


def maybe_graph(agent: MultiTaskSAC, example: Batch) -> GraphedUpdate | None:
    """A :class:`GraphedUpdate` when the agent is on CUDA and graph-safe, else ``None``."""
    if agent.log_alpha.device.type != "cuda" or not graph_safe(agent):
        return None
    return GraphedUpdate(agent, example)
