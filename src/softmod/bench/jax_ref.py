"""A peer reference for ``softmod bench``: the MT10 soft-shallow SAC update in JAX, jitted.

Written for this benchmark (not part of training), in the style of the JAX implementations of
soft modules, e.g. ``rainx0r/metaworld-algorithms`` (``metaworld_algorithms/nn/soft_modules.py``
and ``metaworld_algorithms/rl/algorithms/mtsac.py``): pure functions of parameter pytrees, the
twin critics as one ``jax.vmap`` over stacked parameters, the whole update one ``jax.jit``. The
network is softmod's soft-modular network (``softmod/nets/soft_modules.py``, the authors' code
with its departures: gating MLP, routing on all previous P, pre-activation mix, final routing
vector, one shared output layer), and the update is softmod's (``softmod/sac/agent.py``): α step
first, balance weights, twin-Q TD target with the target critics, policy loss through the frozen
critics, per-network gradient clipping (per critic for Q), Adam, Polyak averaging. It runs in fp32
(JAX's CPU default, as those implementations train); the FLOPs equal softmod's update.

The bench compares timing (same batch, same machine, same run); ``tests/test_jax_ref.py`` checks
that the forward equals softmod's on the same weights. ``jax`` is the optional extra
``pip install -e ".[bench-jax]"`` (also in ``[dev]``, for that test).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

JAX_HINT = 'pip install -e ".[bench-jax]"  (or: pip install jax; a CPU build, ~600 MB)'

Params = dict[str, Any]


def jax_available() -> bool:
    """Whether ``jax`` can be imported."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _linear(rng: np.random.Generator, i: int, o: int, output: bool = False) -> Params:
    bound = 3e-3 if output else 1.0 / np.sqrt(o)  # authors' init, as softmod.nets.layers
    w = rng.uniform(-bound, bound, (i, o)).astype(np.float32)
    b = rng.uniform(-bound, bound, (o,)) if output else np.full((o,), 0.1)
    return {"w": w, "b": b.astype(np.float32)}


def init_soft_modular(
    rng: np.random.Generator, in_dim: int, out_dim: int, tasks: int, layers: int = 2,
    modules: int = 2, d: int = 256, base: int = 400, gate: int = 256,
) -> Params:  # fmt: skip
    """Parameters of one soft-modular network (shapes as softmod's SoftModularNet)."""
    n = modules
    p: Params = {
        "enc1": _linear(rng, in_dim, base),
        "enc2": _linear(rng, base, base),
        "task": _linear(rng, tasks, base),
        "gate1": _linear(rng, base, gate),
        "gate2": _linear(rng, gate, gate),
        "route_first": _linear(rng, gate, n * n, output=True),
        "route_cond": [_linear(rng, k * n * n, gate) for k in range(1, layers - 1)],
        "route_out": [_linear(rng, gate, n * n, output=True) for _ in range(1, layers - 1)],
        "route_cond_last": _linear(rng, (layers - 1) * n * n, gate),
        "route_last": _linear(rng, gate, n, output=True),
        "modules": [
            {
                "w": rng.uniform(
                    -1 / np.sqrt(d), 1 / np.sqrt(d), (n, base if i == 0 else d, d)
                ).astype(np.float32),
                "b": np.full((n, 1, d), 0.1, np.float32),
            }
            for i in range(layers)
        ],
        "out": _linear(rng, d, out_dim, output=True),
    }
    return p


def soft_modular_forward(p: Params, x: Any, task: Any, n: int) -> Any:
    """``(B, in)``, ``task (B,)`` -> ``(B, out)``: softmod's soft-modular forward in jax.numpy."""
    import jax
    import jax.numpy as jnp

    def lin(q: Params, v: Any) -> Any:
        return v @ q["w"] + q["b"]

    relu = jax.nn.relu
    f = lin(p["enc2"], relu(lin(p["enc1"], x)))
    h = p["task"]["w"][task] + p["task"]["b"]
    g = lin(p["gate2"], relu(lin(p["gate1"], relu(f * h))))
    b = x.shape[0]
    probs = [jax.nn.softmax(lin(p["route_first"], relu(g)).reshape(b, n, n), -1)]
    flats = [probs[0].reshape(b, n * n)]
    for cond, out in zip(p["route_cond"], p["route_out"], strict=True):
        c = lin(cond, jnp.concatenate(flats, -1))
        probs.append(jax.nn.softmax(lin(out, relu(c * g)).reshape(b, n, n), -1))
        flats.append(probs[-1].reshape(b, n * n))
    c = lin(p["route_cond_last"], jnp.concatenate(flats, -1))
    final = jax.nn.softmax(lin(p["route_last"], relu(c * g)), -1)
    mods = p["modules"]
    o = jnp.einsum("bi,kio->kbo", relu(f), mods[0]["w"]) + mods[0]["b"]  # (n, B, d)
    for m, pr in zip(mods[1:], probs, strict=True):
        mix = jnp.einsum("bjk,kbd->jbd", pr, o)
        o = jnp.einsum("jbi,jio->jbo", relu(mix), m["w"]) + m["b"]
    last = jnp.einsum("bk,kbd->bd", final, o)
    return lin(p["out"], relu(last))


def make_update(tasks: int, act_dim: int, n: int = 2, lr: float = 3e-4, gamma: float = 0.99,
                tau: float = 0.005, clip: float = 1.0) -> Any:  # fmt: skip
    """The jitted update ``(state, batch, key) -> (state, q_loss)`` of soft-shallow MT-SAC."""
    import jax
    import jax.numpy as jnp

    tmap = jax.tree_util.tree_map
    target_entropy = -float(act_dim)

    def sample(pp: Params, obs: Any, task: Any, key: Any) -> tuple[Any, Any]:
        out = soft_modular_forward(pp, obs, task, n)
        mean, log_std = out[:, :act_dim], jnp.clip(out[:, act_dim:], -20.0, 2.0)
        noise = jax.random.normal(key, mean.shape)
        a = jnp.tanh(mean + jnp.exp(log_std) * noise)
        logp = (-0.5 * noise**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
        return a, logp - jnp.log(1 - a**2 + 1e-6).sum(-1)

    def twin_q(qp: Params, obs: Any, act: Any, task: Any) -> Any:  # (2, B), one vmap
        x = jnp.concatenate([obs, act], -1)
        return jax.vmap(lambda p: soft_modular_forward(p, x, task, n)[:, 0])(qp)

    def adam(params: Any, grads: Any, opt: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        t = opt["t"] + 1
        m = tmap(lambda m, g: 0.9 * m + 0.1 * g, opt["m"], grads)
        v = tmap(lambda v, g: 0.999 * v + 0.001 * g * g, opt["v"], grads)
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        new = tmap(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), params, m, v)
        return new, {"t": t, "m": m, "v": v}

    def clip_global(grads: Any, axis_members: bool) -> Any:
        leaves = jax.tree_util.tree_leaves(grads)
        if axis_members:  # per critic: norms over every axis but the first
            sq = sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in leaves)
            scale = jnp.minimum(clip / (jnp.sqrt(sq) + 1e-6), 1.0)
            return tmap(lambda g: g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), grads)
        norm = jnp.sqrt(sum((g**2).sum() for g in leaves))
        return tmap(lambda g: g * jnp.minimum(clip / (norm + 1e-6), 1.0), grads)

    def update(state: dict[str, Any], batch: dict[str, Any], key: Any) -> tuple[dict, Any]:
        k1, k2 = jax.random.split(key)
        obs, task = batch["obs"], batch["task"]
        (a_new, logp), pi_vjp = jax.vjp(lambda pp: sample(pp, obs, task, k1), state["pi"])
        # temperatures first (as softmod / the authors' code)
        ga = jax.grad(lambda la: -(la[task] * jax.lax.stop_gradient(logp + target_entropy)).mean())(
            state["log_alpha"]
        )
        log_alpha, alpha_opt = adam(state["log_alpha"], ga, state["alpha_opt"])
        alpha = jnp.exp(log_alpha)[task]
        weight = tasks * jax.nn.softmax(-log_alpha)[task]
        next_a, next_logp = sample(state["pi"], batch["next_obs"], task, k2)
        next_q = twin_q(state["q_target"], batch["next_obs"], next_a, task).min(0)
        y = batch["reward"] + gamma * (1 - batch["terminated"]) * (next_q - alpha * next_logp)
        y = jax.lax.stop_gradient(y)

        def q_loss(qp: Params) -> Any:
            q = twin_q(qp, obs, batch["action"], task)
            return ((q - y) ** 2 * weight).mean(1).sum()

        lq, gq = jax.value_and_grad(q_loss)(state["q"])

        def pi_loss(a: Any, lp: Any) -> Any:  # through the frozen critics (pre-update)
            qn = twin_q(jax.lax.stop_gradient(state["q"]), obs, a, task).min(0)
            return (weight * (alpha * lp - qn)).mean()

        g_a, g_lp = jax.grad(pi_loss, argnums=(0, 1))(a_new, logp)
        (gpi,) = pi_vjp((g_a, g_lp))
        pi, pi_opt = adam(state["pi"], clip_global(gpi, False), state["pi_opt"])
        q, q_opt = adam(state["q"], clip_global(gq, True), state["q_opt"])
        q_target = tmap(lambda t, s: t + tau * (s - t), state["q_target"], q)
        return {"pi": pi, "q": q, "q_target": q_target, "log_alpha": log_alpha,
                "pi_opt": pi_opt, "q_opt": q_opt, "alpha_opt": alpha_opt}, lq  # fmt: skip

    return jax.jit(update)


def bench_jax_update(batch: Any, tasks: int, obs_dim: int, act_dim: int, reps: int,
                     seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Milliseconds per jitted JAX soft-shallow update (best and median of ``reps``) on
    softmod's ``batch`` (a :class:`softmod.buffer.Batch`), and the compile time."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    pi = init_soft_modular(rng, obs_dim, 2 * act_dim, tasks)
    q1, q2 = (init_soft_modular(rng, obs_dim + act_dim, 1, tasks) for _ in range(2))
    q = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), q1, q2)

    def opt(p: Any) -> dict[str, Any]:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, p)
        return {"t": jnp.zeros((), jnp.int32), "m": zeros, "v": zeros}

    pi = jax.tree_util.tree_map(jnp.asarray, pi)
    log_alpha = jnp.zeros((tasks,))
    state = {"pi": pi, "q": q, "q_target": q, "log_alpha": log_alpha,
             "pi_opt": opt(pi), "q_opt": opt(q), "alpha_opt": opt(log_alpha)}  # fmt: skip
    jb = {k: jnp.asarray(getattr(batch, k).cpu().numpy()) for k in batch._fields}
    update = make_update(tasks, act_dim)
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    state, loss = update(state, jb, key)
    loss.block_until_ready()
    compile_s = time.perf_counter() - start
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        state, loss = update(state, jb, jax.random.fold_in(key, i))
        loss.block_until_ready()
        times.append(time.perf_counter() - t0)
    times = times[1:]  # one more untimed warm-up
    return {"ms_min": 1e3 * min(times), "ms_median": 1e3 * float(np.median(times)),
            "compile_s": compile_s, "jax": jax.__version__,
            "finite": bool(np.isfinite(float(loss)))}  # fmt: skip
