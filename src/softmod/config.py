"""Typed, frozen configuration: one dataclass per concern, a union of network configs.

Every run writes its resolved :class:`RunConfig` as JSON (``config.json``) and can be rebuilt from
it with :func:`config_from_dict`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

BenchmarkName = Literal["toy", "mt1", "mt10", "mt50"]
GoalSetting = Literal["fixed", "conditioned"]
RewardVersion = Literal["v1", "v2"]
DeviceName = Literal["auto", "cpu", "cuda"]
NonFinitePolicy = Literal["stop", "skip"]
PrecisionName = Literal["fp32", "bf16"]  # see softmod/precision.py

MAX_HORIZON = 500  # Meta-World raises when stepped past its max_path_length (500)


@dataclass(frozen=True)
class EnvConfig:
    """Which benchmark, in which setting (DESIGN §5)."""

    benchmark: BenchmarkName = "mt10"
    task: str | None = None  # MT1 only: the Meta-World task name, e.g. "reach-v3"
    goals: GoalSetting = "fixed"
    horizon: int = 150
    reward_version: RewardVersion = "v2"
    toy_tasks: int = 4  # toy benchmark only: number of tasks
    # collection (issue 6): 0 = every env in the training process; N > 0 = N worker processes
    # (Meta-World only; shared memory, tasks balanced by step cost; see envs/subproc.py)
    workers: int = 0
    # with workers > 0: overlap env stepping with the gradient update (the update at vector step
    # k samples the replay before step k's transitions are added); False = synchronous, the default
    async_step: bool = False


# ----------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class MLPNetConfig:
    """MT-SAC: one MLP on [state, one-hot task] (DESIGN §3)."""

    hidden: tuple[int, ...] = (400, 400, 400)


@dataclass(frozen=True)
class MultiHeadNetConfig:
    """MT-MH-SAC: shared MLP trunk on [state, one-hot], one output head per task (DESIGN §3)."""

    hidden: tuple[int, ...] = (400, 400, 400)


@dataclass(frozen=True)
class MixExpertNetConfig:
    """Mix-Expert: ``experts`` MT-SAC MLPs mixed by a softmax gate on [state, one-hot]."""

    experts: int = 4
    hidden: tuple[int, ...] = (400, 400, 400)
    gate_hidden: tuple[int, ...] = (256, 256)


@dataclass(frozen=True)
class HardRoutingNetConfig:
    """Hard Routing: L module layers x n modules, one module per layer chosen per task by a
    tabular REINFORCE router (DESIGN §3)."""

    layers: int = 4
    modules: int = 4
    module_dim: int = 128
    base_dim: int = 400
    baseline_decay: float = 0.99  # running-mean baseline of the REINFORCE reward


@dataclass(frozen=True)
class SingleTaskNetConfig:
    """Single-task SAC: one independent MLP per task, kept as stacked per-task weights."""

    hidden: tuple[int, ...] = (400, 400, 400)


@dataclass(frozen=True)
class SoftModularNetConfig:
    """Soft modularization (DESIGN §2). Shallow: L=2, n=2, d=256. Deep: L=4, n=4, d=128."""

    layers: int = 2  # L, module layers (>= 2)
    modules: int = 2  # n, modules per layer (>= 1)
    module_dim: int = 256  # d
    base_dim: int = 400  # D, state encoder and task embedding width
    gate_dim: int = 256  # routing (gating) MLP width
    route_obs: bool = True  # False: ablation "w/o obs", routing from the task embedding h alone


@dataclass(frozen=True)
class MOORENetConfig:
    """MOORE (Hendawy et al., ICLR 2024): ``experts`` MLP encoders made orthonormal per state by
    Gram-Schmidt, mixed by task weights, tanh, one output head per task (softmod/nets/moore.py)."""

    experts: int = 4  # k: 4 on MT10, 6 on MT50 (the authors' README)
    hidden: tuple[int, ...] = (400, 400, 400)  # each expert's layers; the last is linear


PaCoReset = Literal["interpolate", "copy", "off"]  # PaCo's reset of a masked task's w_t


@dataclass(frozen=True)
class PaCoNetConfig:
    """PaCo (Sun et al., NeurIPS 2022): K shared parameter sets, task t's network has the weights
    ``sum_k w_t[k] theta_k`` (softmod/nets/paco.py). The two training tricks are switchable."""

    param_sets: int = 5  # K: 5 on MT10 (the authors' config), 20 on MT50 (metaworld-algorithms)
    hidden: tuple[int, ...] = (400, 400, 400)
    # loss mask-out: a task whose mean loss in the batch exceeds this is left out of the update
    # (authors' config: 3e3); 0 turns the mask-out off
    mask_threshold: float = 3000.0
    # after a masked update, reset the masked task's compositional vector w_t from the other
    # tasks' vectors: "interpolate" (random convex combination, the authors' default), "copy"
    # (one other task's vector) or "off"
    reset: PaCoReset = "interpolate"


@dataclass(frozen=True)
class CARENetConfig:
    """CARE (Sodhani et al., ICML 2021): a mixture of ``experts`` state encoders weighted by
    attention from a task context, then an MLP on [encoding, task encoding] (softmod/nets/care.py).

    ``context`` empty: a learned task embedding (the default; the paper's language-model context
    cannot be downloaded here). Otherwise a frozen per-task context matrix ``(T, context_size)`` in
    the benchmark's task order, flattened, from ``--task-context FILE`` (softmod/task_context.py).
    """

    experts: int = 6  # k: 6 on MT10, 10 on MT50 (CARE paper, as metaworld-algorithms)
    hidden: tuple[int, ...] = (400, 400, 400)  # the actor / critic MLP
    encoder_hidden: int = 50  # each expert encoder: Linear(in, 50) -> ReLU -> Linear(50, 50)
    embed_dim: int = 50  # encoding and task-encoding width
    temperature: float = 1.0  # attention softmax temperature
    context_size: int = 0  # 0: learned task embedding; > 0: width of the frozen context rows
    context: tuple[float, ...] = field(default=(), repr=False)  # (T * context_size) values


# Every network config type, the ONE list of them: `network_types()` reads it, and
# `nets.build_network` dispatches on the type with `match` (docs/adding-a-network.md).
NetworkConfig = (
    MLPNetConfig
    | MultiHeadNetConfig
    | MixExpertNetConfig
    | HardRoutingNetConfig
    | SingleTaskNetConfig
    | SoftModularNetConfig
    | MOORENetConfig
    | PaCoNetConfig
    | CARENetConfig
)


def network_types() -> dict[str, type]:
    """Every network config type by class name, read from the :data:`NetworkConfig` union (the
    ``type`` a saved config names)."""
    return {c.__name__: c for c in typing.get_args(NetworkConfig)}


# ----------------------------------------------------------------- gradient methods (issue 21)
# How the per-task gradients of the critic and policy losses are combined (softmod/grad/).


@dataclass(frozen=True)
class PlainGradConfig:
    """The paper: the losses summed, one backward (no per-task gradients)."""


@dataclass(frozen=True)
class PCGradConfig:
    """PCGrad (Yu et al., 2020): each task gradient projected off the ones it conflicts with."""


@dataclass(frozen=True)
class CAGradConfig:
    """CAGrad (Liu et al., 2021): the update that maximises the worst task's improvement within a
    ball of radius ``c * ||g0||`` around the mean gradient ``g0``."""

    c: float = 0.9  # CAGrad's mtrl run.sh: 0.9 for MT10 (0.5 for MT50)


@dataclass(frozen=True)
class GradNormConfig:
    """GradNorm (Chen et al., 2018): task loss weights trained to balance the task gradient
    norms by their relative training rates."""

    alpha: float = 1.0  # asymmetry; mtrl's Meta-World config (metaworld_gradnorm.yaml): 1.0
    lr: float = 0.025  # Adam learning rate of the task weights (ours; see softmod/grad/gradnorm.py)


@dataclass(frozen=True)
class FAMOConfig:
    """FAMO (Liu et al., 2023): task weights softmax(xi) that balance the tasks' log-loss
    decrease, from the losses alone (no per-task gradients)."""

    gamma: float = 0.01  # weight decay of the logits; FAMO's mtrl run.sh for MT10: 0.01
    lr: float = 0.025  # Adam learning rate of the logits; FAMO's mtrl run.sh for MT10: 0.025


# `grad.build_grad_method` dispatches on the type with `match`.
GradConfig = PlainGradConfig | PCGradConfig | CAGradConfig | GradNormConfig | FAMOConfig


def grad_types() -> dict[str, type]:
    """Every gradient-method config type by class name, read from the :data:`GradConfig` union."""
    return {c.__name__: c for c in typing.get_args(GradConfig)}


def _tagged_types() -> dict[str, type]:
    """The union members a saved config names by ``type``: networks and gradient methods."""
    return {**network_types(), **grad_types()}


@dataclass(frozen=True)
class SACConfig:
    """Multi-task SAC hyperparameters (DESIGN §4, authors' code)."""

    batch_per_task: int = 128
    buffer_per_task: int = 100_000  # MT10: 1e5 per task; MT50: 2e5 per task (resolved by benchmark)
    lr_policy: float = 3e-4
    lr_q: float = 3e-4
    lr_alpha: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    grad_clip: float = 1.0
    init_log_alpha: float = 0.0
    target_entropy: float | None = None  # None: -|A|
    warmup_per_task: int = 4000
    balance: bool = False  # task balance weights w = T softmax(-log α) (DESIGN §4)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; written as ``config.json`` in the run directory."""

    env: EnvConfig = field(default_factory=EnvConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    policy_net: NetworkConfig = field(default_factory=MLPNetConfig)
    q_net: NetworkConfig = field(default_factory=MLPNetConfig)
    method: str = "mt-sac"
    total_steps: int = 200_000  # environment steps over all tasks (the paper's "samples")
    seed: int = 0
    device: DeviceName = "auto"
    eval_interval: int = 50_000  # environment steps between evaluations
    eval_episodes: int = 3  # per task, during training
    log_interval: int = 5_000  # environment steps between train-metric rows
    torch_threads: int = 0  # 0: PyTorch's default
    checkpoint_interval: int = 500_000  # environment steps between full checkpoints (and the end)
    keep_checkpoints: int = 2  # full checkpoints kept (the newest); best.pt is kept besides
    on_nonfinite: NonFinitePolicy = "stop"  # a non-finite loss/Q/gradient: stop, or skip the update
    cuda_graph: bool = True  # on CUDA: the update as one replayed CUDA graph (graph-safe methods)
    # issue 17: fp32 (faithful, default) or bf16 mixed precision (softmod/precision.py says what
    # runs in which precision); fixed for the run's lifetime (not a resumable change)
    precision: PrecisionName = "fp32"
    # issue 21: how task gradients are combined (softmod/grad/); plain = the paper
    grad: GradConfig = field(default_factory=PlainGradConfig)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Turn a (nested) config dataclass into JSON-ready data; network and gradient-method configs
    carry their type."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            sub = to_dict(value)
            if type(value) in _tagged_types().values():
                sub = {"type": type(value).__name__, **sub}
            out[f.name] = sub
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key == "type" or key not in names:
            continue
        default = getattr(cls(), key) if key in names else None
        if isinstance(value, dict):
            sub_cls = _tagged_type(value["type"], default) if "type" in value else type(default)
            kwargs[key] = _build(sub_cls, value)
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _tagged_type(name: str, default: Any) -> type:
    """The union member ``name`` of the field whose default is ``default`` (a network or a
    gradient-method config)."""
    networks = network_types()
    kind, types = ("network", networks) if type(default) in networks.values() else (
        "gradient-method", grad_types())  # fmt: skip
    if name not in types:
        raise ValueError(f"unknown {kind} config type {name!r}; allowed: {', '.join(types)}")
    return types[name]


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a :class:`RunConfig` from :func:`to_dict` output."""
    return _build(RunConfig, data)


def save_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config as indented JSON."""
    path.write_text(json.dumps(to_dict(cfg), indent=2) + "\n")


def load_config(path: Path) -> RunConfig:
    """Read a config written by :func:`save_config`."""
    return config_from_dict(json.loads(Path(path).read_text()))
