"""Arithmetic precision of the SAC update: ``fp32`` (default, the faithful reference) or ``bf16``.

``bf16`` is mixed precision (issue 17), a departure from the paper and the authors' code, which
train in fp32:

- **bf16**: the matrix products of the policy, the critics (online and target) and the routing
  network (every hidden layer, the batched module products, the routing mixes), under
  ``torch.autocast`` with their weights cast to bf16 once per update (:func:`lowp`), not once per
  product.
- **fp32**: the master weights, the optimiser state (Adam moments), the temperatures, gradient
  clipping and the soft target update; every *output* layer (``output=True``: the Q-value, the
  policy's mean and log-std, the routing logits) and what follows it: the Q-values, the tanh
  squashing and log-probabilities, the TD target and every loss. Q-values reach ~1e3 on
  Meta-World, where bf16's step is 4 (8 bits of mantissa), so a bf16 Q output or target would be
  too coarse for the TD error. Gradients reach the fp32 weights through the bf16 casts in fp32.

Acting in the environments and the evaluations run under the same precision as the run.

:func:`bf16_support` is the one place that decides whether this CPU has bf16 matrix units;
:func:`check_precision` warns once (never silently) when it does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of bf16 matrix instructions


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_support(device: torch.device | str = "cpu") -> dict[str, bool]:
    """Which bf16 matrix features the device has: on the CPU ``amx_bf16`` and ``avx512_bf16``
    (from :func:`cpu_flags`); on CUDA ``cuda_bf16`` (compute capability >= 8.0)."""
    if torch.device(device).type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
        return {"cuda_bf16": bool(ok)}
    flags = cpu_flags()
    return {f: f in flags for f in BF16_CPU_FLAGS}


def check_precision(
    precision: str, device: torch.device | str, warn: Callable[[str], None]
) -> None:
    """``bf16`` on a device without bf16 matrix units: one warning naming what is missing (it
    runs, in emulation, slower than fp32)."""
    if precision != "bf16":
        return
    features = bf16_support(device)
    if not any(features.values()):
        missing = " and ".join(features)
        warn(
            f"--precision bf16 on a {torch.device(device).type} without {missing}: bf16 products "
            "are emulated and will be slower than fp32"
        )


_WEIGHTS: dict[int, torch.Tensor] | None = None  # bf16 weight copies of the current update


def lowp(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` as the products use it: itself in fp32; inside :func:`autocast` with bf16, its
    bf16 copy, cast once per :func:`autocast` block (the cast is differentiable, so gradients
    reach the fp32 master weight)."""
    if _WEIGHTS is None:
        return weight
    # a frozen use (``requires_grad_(False)``, as the critics in the policy loss, or no_grad) gets
    # a detached copy, so no gradient leaks through a copy cast for an earlier trainable use
    need_grad = weight.requires_grad and torch.is_grad_enabled()
    cast = _WEIGHTS.get(id(weight))
    if cast is None or (need_grad and cast.grad_fn is None):
        cast = _WEIGHTS[id(weight)] = weight.to(torch.bfloat16)
    return cast if need_grad else cast.detach()


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """The block's matrix products in ``precision``: nothing changes for ``fp32``; ``bf16`` is
    ``torch.autocast`` plus one bf16 copy per weight for the whole block (:func:`lowp`)."""
    global _WEIGHTS
    if precision == "fp32":
        yield
        return
    outer = _WEIGHTS
    _WEIGHTS = {} if outer is None else outer
    try:
        # the autocast cache is off (our weight copies replace it; CUDA graphs need it off)
        kind = torch.device(device).type
        with torch.autocast(kind, dtype=torch.bfloat16, cache_enabled=False):
            yield
    finally:
        _WEIGHTS = outer


def bf16_active(x: torch.Tensor) -> bool:
    """Whether ``x``'s products run inside a bf16 :func:`autocast` block."""
    return torch.is_autocast_enabled(x.device.type)


def fp32_output(
    product: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> torch.Tensor:
    """An output layer ``product(x, weight, bias)``: in fp32 even inside a bf16 block, so
    Q-values, the policy's mean / log-std and the routing logits keep fp32 range and resolution;
    elsewhere the product with :func:`lowp` weights (identity in fp32)."""
    if not bf16_active(x):
        return product(x, lowp(weight), bias)
    with torch.autocast(x.device.type, enabled=False):
        return product(x.float(), weight, bias)


def fp32_einsum(spec: str, *operands: torch.Tensor) -> torch.Tensor:
    """``torch.einsum`` kept in fp32 inside a bf16 block (Mix-Expert's gate mix of its experts'
    fp32 outputs, which are Q-values in a critic); the plain einsum otherwise."""
    if not bf16_active(operands[-1]):
        return torch.einsum(spec, *operands)
    with torch.autocast(operands[-1].device.type, enabled=False):
        return torch.einsum(spec, *(x.float() for x in operands))
