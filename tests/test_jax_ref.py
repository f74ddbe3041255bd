"""The JAX peer of `softmod bench` (issue 17) computes softmod's network, so its timing is a fair
reference: on the same weights, its soft-modular forward equals softmod's `SoftModularNet`."""

from __future__ import annotations

import jax  # in [dev], for this test: the suite checks the reference it is timed against
import numpy as np
import pytest
import torch

from softmod.bench.jax_ref import init_soft_modular, soft_modular_forward
from softmod.config import SoftModularNetConfig
from softmod.methods import get_method
from softmod.nets.soft_modules import SoftModularNet


def _jax_params(net: SoftModularNet) -> dict:
    """softmod's member-0 weights in the JAX reference's pytree (same (in, out) layout)."""

    def lin(m: torch.nn.Module) -> dict:
        return {"w": m.weight[0].detach().numpy(), "b": m.bias[0, 0].detach().numpy()}

    return {
        "enc1": lin(net.enc1),
        "enc2": lin(net.enc2),
        "task": lin(net.task_embed),
        "gate1": lin(net.gate1),
        "gate2": lin(net.gate2),
        "route_first": lin(net.route_first),
        "route_cond": [lin(m) for m in net.route_cond],
        "route_out": [lin(m) for m in net.route_out],
        "route_cond_last": lin(net.route_cond_last),
        "route_last": lin(net.route_last),
        "modules": [
            {"w": m.weight[0].detach().numpy(), "b": m.bias[0].detach().numpy()}
            for m in net.module_layers
        ],
        "out": lin(net.out),
    }


@pytest.mark.parametrize("method", ["soft-shallow", "soft-deep"])
def test_the_jax_reference_computes_softmods_soft_modular_network(method: str) -> None:
    cfg = get_method(method).network
    assert isinstance(cfg, SoftModularNetConfig)
    torch.manual_seed(0)
    net = SoftModularNet(cfg, 43, 8, 10)
    with torch.no_grad():  # away from the near-uniform routing of the init, so order matters
        for p in net.parameters():
            p.uniform_(-0.2, 0.2)
    params = _jax_params(net)
    shapes = init_soft_modular(np.random.default_rng(0), 43, 8, 10, layers=cfg.layers,
                               modules=cfg.modules, d=cfg.module_dim)  # fmt: skip
    same = jax.tree_util.tree_map(lambda a, b: np.shape(a) == np.shape(b), shapes, params)
    assert all(jax.tree_util.tree_leaves(same)), "the reference's parameter shapes differ"
    x = torch.randn(64, 43)
    task = torch.arange(10).repeat(7)[:64]
    ours = net(x, task)[0].detach().numpy()
    theirs = np.asarray(soft_modular_forward(params, x.numpy(), task.numpy(), cfg.modules))
    assert np.abs(ours).mean() > 1e-3  # the comparison is not between zeros
    routing = net.routing(x, task)
    assert float((routing.layers[0] - 1 / cfg.modules).abs().max()) > 0.1
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)
