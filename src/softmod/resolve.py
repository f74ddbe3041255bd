"""Run options -> a validated :class:`~softmod.config.RunConfig`: the one place that decides them.

An *option* is what a user writes (``softmod train --horizon 500``, a sweep's ``--set``, a Python
mapping); :class:`TrainOptions` declares every one of them: its type, its default and its
``--help`` text (the field's docstring), and where it lands in the :class:`RunConfig`
(:func:`lands`). The defaults that depend on other options are decided here too
(:func:`resolve_config`): the replay size per benchmark, the paper's budget per method and
benchmark (``softmod/methods.py`` holds the table), the balance weights per method, the batch per
task from a total ``batch_size``, and the networks of the method.

Used by the CLI (``softmod train`` is :class:`TrainOptions` plus ``--run-dir``, ``--resume`` and
``--progress``), by sweeps, by ``--resume`` (through :func:`options_from_config`) and from Python::

    from softmod.resolve import resolve_config
    cfg = resolve_config({"benchmark": "toy", "total_steps": 2000}, method="soft-shallow")
    cfg = resolve_config(preset="soft-deep-mt10-fixed", seed=3)

Adding an option is one edit: a field of :class:`TrainOptions`, its docstring, and ``lands(...)``
naming its place in the config (with no default given, the config's own default is the option's).
"""

from __future__ import annotations

import dataclasses
import time
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from softmod.config import (
    BenchmarkName,
    DeviceName,
    EnvConfig,
    GoalSetting,
    NonFinitePolicy,
    PrecisionName,
    RewardVersion,
    RunConfig,
    SACConfig,
)
from softmod.grad import GRAD_METHODS, GRAD_OPTIONS, grad_config, grad_options
from softmod.methods import METHODS, default_total_steps, get_method
from softmod.validation import ConfigError, batch_per_task_of, validate_config

if typing.TYPE_CHECKING:
    MethodName = str
    GradName = str
else:  # the choices tyro shows and checks
    MethodName = Literal[tuple(METHODS)]
    GradName = Literal[tuple(GRAD_METHODS)]

# Replay capacity per task when --buffer-per-task is not given (DESIGN §4: 1e5 on MT10, 2e5 on
# MT50; MT1 keeps every transition of its 1M default budget)
DEFAULT_BUFFER_PER_TASK: dict[str, int] = {
    "toy": 100_000,
    "mt1": 1_000_000,
    "mt10": 100_000,
    "mt50": 200_000,
}

_CONFIG_CLASSES: dict[str, type] = {"": RunConfig, "env": EnvConfig, "sac": SACConfig}


def lands(path: str, default: Any = dataclasses.MISSING) -> Any:
    """A :class:`TrainOptions` field that lands at ``path`` of the :class:`RunConfig` (``"seed"``,
    ``"env.horizon"``, ``"sac.lr_q"``). Without ``default`` the option's default is the config's
    default at ``path``; ``None`` means "derived from the other options" (see
    :func:`resolve_config`)."""
    if default is dataclasses.MISSING:
        head, _, leaf = path.rpartition(".")
        default = getattr(_CONFIG_CLASSES[head](), leaf)
    return dataclasses.field(default=default, metadata={"config": path})


@dataclasses.dataclass
class TrainOptions:
    """Train one multi-task SAC agent on a benchmark and write a run directory."""

    preset: str | None = None
    """A row of the paper (`softmod presets` lists them), e.g. soft-shallow-mt10-conditioned: sets
    --method, --benchmark, --goals, --balance and --total-steps (the paper's budget). Options given
    explicitly on the command line override the preset's values."""
    benchmark: BenchmarkName = lands("env.benchmark")
    """Benchmark: toy (pure-NumPy point masses, for tests), mt1 (one Meta-World task, see --task),
    mt10 or mt50."""
    task: str | None = lands("env.task")
    """Meta-World task for --benchmark mt1, e.g. reach-v3."""
    goals: GoalSetting = lands("env.goals")
    """fixed: one object/goal configuration per task for every episode; conditioned: a new one at
    every reset (the paper's MTxx-Fixed / MTxx-Conditioned)."""
    method: MethodName = lands("method")
    """Network (all methods share the same multi-task SAC)."""
    total_steps: int | None = lands("total_steps", None)
    """Environment steps over all tasks (the paper's samples). Default: the paper's budget for the
    method (MT10 15-20M, MT50 50-100M), 100k for toy, 1M for mt1."""
    seed: int = lands("seed")
    """Seed of everything: networks, replay sampling, environment configurations."""
    device: DeviceName = lands("device")
    """auto: CUDA when present, else the CPU."""
    horizon: int = lands("env.horizon")
    """Episode length in steps (paper: 150; Meta-World's standard: 500, the maximum)."""
    reward_version: RewardVersion = lands("env.reward_version")
    """Meta-World reward functions."""
    eval_interval: int = lands("eval_interval")
    """Environment steps between evaluations during training."""
    eval_episodes: int = lands("eval_episodes")
    """Deterministic episodes per task at each periodic evaluation."""
    log_interval: int = lands("log_interval")
    """Environment steps between rows of train.csv."""
    batch_per_task: int = lands("sac.batch_per_task")
    """Rows per task in each stratified batch (batch = T x this; DESIGN: 128)."""
    buffer_per_task: int | None = lands("sac.buffer_per_task", None)
    """Replay capacity per task. Default: 1e5 (MT10, toy), 2e5 (MT50), 1e6 (MT1)."""
    warmup_per_task: int = lands("sac.warmup_per_task")
    """Random-action transitions per task before the first gradient step."""
    balance: bool | None = lands("sac.balance", None)
    """Task balance weights w = T softmax(-log alpha). Default: on for soft modularization only."""
    lr_policy: float = lands("sac.lr_policy")
    """Adam learning rate of the policy (DESIGN §4)."""
    lr_q: float = lands("sac.lr_q")
    """Adam learning rate of the twin Q-functions (DESIGN §4)."""
    lr_alpha: float = lands("sac.lr_alpha")
    """Adam learning rate of the per-task temperatures (DESIGN §4)."""
    gamma: float = lands("sac.gamma")
    """Discount factor, in (0, 1] (DESIGN §4)."""
    tau: float = lands("sac.tau")
    """Soft update rate of the target Q-functions after every gradient step, in (0, 1]."""
    toy_tasks: int = lands("env.toy_tasks")
    """Number of tasks of the toy benchmark."""
    batch_size: int | None = None
    """Total batch instead of --batch-per-task: must be a multiple of the task count."""
    threads: int = lands("torch_threads")
    """PyTorch CPU threads (0: PyTorch's default)."""
    checkpoint_interval: int = lands("checkpoint_interval")
    """Environment steps between full checkpoints (one is also written at the end of the warm-up,
    at the end, and on SIGINT / SIGTERM)."""
    keep_checkpoints: int = lands("keep_checkpoints")
    """Full checkpoints kept (the newest; checkpoints/best.pt and final.pt are kept besides)."""
    on_nonfinite: NonFinitePolicy = lands("on_nonfinite")
    """A non-finite loss, Q-value or gradient: stop the run (the last checkpoint stays intact), or
    skip that update (the run stops after 100 in a row)."""
    workers: int = lands("env.workers")
    """Meta-World env worker processes (0: every env in the training process; N: shared-memory
    workers, tasks balanced by step cost, the same transitions)."""
    async_step: bool = lands("env.async_step")
    """With --workers: step the envs while the update runs (the update does not see the newest
    vector step's transitions yet). Default: synchronous."""
    cuda_graph: bool = lands("cuda_graph")
    """On CUDA, for the graph-safe networks (MT-SAC, Mix-Expert, soft modularization, MOORE, PaCo,
    CARE): capture the whole update once as a CUDA graph and replay it (falls back to eager
    updates with a warning if capture fails; ignored on CPU and with --on-nonfinite skip)."""
    precision: PrecisionName = lands("precision")
    """Arithmetic of the update: fp32 (the faithful default) or bf16 mixed precision (bf16 matrix
    products, fp32 weights, optimiser, Q-values, TD target and losses; fast on CPUs with AMX /
    AVX512-BF16). Recorded in config.json; a resumed run keeps it."""
    # issue 21: the gradient method and its options (softmod/grad/) land in `grad` together
    grad: GradName = dataclasses.field(default="plain", metadata={"config": "grad"})
    """How the task gradients of the critic and policy losses are combined (any --method):
    plain (the paper: summed losses), pcgrad, cagrad, gradnorm or famo (README: gradient
    methods). Not with --benchmark mt1."""
    cagrad_c: float | None = dataclasses.field(default=None, metadata={"config": "grad"})
    """--grad cagrad: radius c of the ball around the mean gradient (default 0.9, CAGrad's MT10)."""
    gradnorm_alpha: float | None = dataclasses.field(default=None, metadata={"config": "grad"})
    """--grad gradnorm: asymmetry alpha (default 1.0, mtrl's Meta-World GradNorm)."""
    gradnorm_lr: float | None = dataclasses.field(default=None, metadata={"config": "grad"})
    """--grad gradnorm: Adam learning rate of the task weights (default 0.025)."""
    famo_gamma: float | None = dataclasses.field(default=None, metadata={"config": "grad"})
    """--grad famo: weight decay of the task logits (default 0.01, FAMO's MT10)."""
    famo_lr: float | None = dataclasses.field(default=None, metadata={"config": "grad"})
    """--grad famo: Adam learning rate of the task logits (default 0.025, FAMO's MT10)."""
    task_context: Path | None = None
    """CARE only: per-task context vectors (.npy (T, C), or .json: T rows or {task: row}) instead
    of the learned task embedding; the rows are stored in config.json (softmod/task_context.py)."""

    def options(self) -> dict[str, Any]:
        """These options as a mapping for :func:`resolve_config` (without ``preset``: its values
        are already in the fields)."""
        return {n: getattr(self, n) for n in option_names() if n != "preset"}

    def to_config(self) -> RunConfig:
        """The validated run config these options describe (a ConfigError names a bad one)."""
        return resolve_config(self.options())


# ----------------------------------------------------------------------------- the option table
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_names() -> list[str]:
    """Every option of :class:`TrainOptions`, in ``--help`` order."""
    return [f.name for f in dataclasses.fields(TrainOptions)]


def option_kinds(cls: type = TrainOptions) -> dict[str, Any]:
    """Per field of an options dataclass: a tuple of the allowed strings (a Literal), ``int``,
    ``float``, ``bool``, ``Path``, or None (any string). Optional fields also take None."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp, kind = hints[f.name], None
        options = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        base = options[0] if len(options) == 1 else tp
        if typing.get_origin(base) is Literal:
            kind = tuple(str(a) for a in typing.get_args(base))
        elif base in (int, float, bool, Path):
            kind = base
        out[f.name] = kind
    return out


def check_option(name: str, value: Any, kind: Any) -> None:
    """A typed option value (from Python) must have its option's type: one-line ConfigError.
    The choices (benchmark, method, ...) are checked by ``validate_config``, in one place."""
    if value is None:
        return  # None: "not given" for the Optional options; validate_config catches the rest
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{_flag(name)} {value!r} is not True or False")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{_flag(name)} {value!r} is not an integer")
    if kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{_flag(name)} {value!r} is not a number")
    if kind is None and not isinstance(value, str):
        raise ConfigError(f"{_flag(name)} {value!r} is not a string")


def config_flag(path: str) -> str:
    """How a message names config field ``path``: the flag of the option landing there
    (``"torch_threads"`` -> ``--threads``, ``"env.horizon"`` -> ``--horizon``); a field no
    option sets keeps its dotted path (``sac.grad_clip``, ``policy_net.hidden``)."""
    if path.split(".")[0] == "grad":  # the gradient method and its options (issue 21)
        return "--grad"
    for f in dataclasses.fields(TrainOptions):
        if f.metadata.get("config") == path:
            return _flag(f.name)
    return path


def _unknown(name: str) -> ConfigError:
    known = ", ".join(_flag(k) for k in option_names())
    return ConfigError(f"unknown option {_flag(name)}; allowed: {known}")


# ----------------------------------------------------------------------------- resolution
def resolve_config(
    options: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    validate: bool = True,
    **kw: Any,
) -> RunConfig:
    """The :class:`RunConfig` that ``options`` describe, validated.

    ``options`` and ``kw``: option name -> value (names as the fields of :class:`TrainOptions`,
    ``total_steps`` or ``total-steps``; ``kw`` wins over ``options``). ``preset`` (or an option
    ``preset``) names a row of the paper whose values fill every option not given. Options not
    given take their defaults; ``None`` for ``total_steps``, ``buffer_per_task`` and ``balance``
    means the derived default (the paper's budget for the method and benchmark, the replay size of
    the benchmark, on for soft modularization).

    Raises :class:`~softmod.validation.ConfigError` (one line naming the option's flag and what is
    allowed) for an unknown option, a value of the wrong type or an invalid combination; with
    ``validate=False`` only the resolution's own checks run, not :func:`validate_config`.
    """
    given: dict[str, Any] = {}
    for key, value in {**(options or {}), **kw}.items():
        name = key.replace("-", "_")
        if name not in option_names():
            raise _unknown(name)
        given[name] = value
    preset = preset if preset is not None else given.pop("preset", None)
    given.pop("preset", None)
    values: dict[str, Any] = {}
    if preset is not None:
        from softmod.presets import get_preset

        try:
            values.update(get_preset(preset).train_options())
        except ValueError as err:
            raise ConfigError(str(err)) from None
    values.update(given)
    kinds = option_kinds()
    for name, value in values.items():
        check_option(name, value, kinds[name])
    cfg = _build(TrainOptions(**values))
    if validate:
        validate_config(cfg)
    return cfg


def _build(opts: TrainOptions) -> RunConfig:
    """Every option to its place in the config, then the derived defaults."""
    parts: dict[str, dict[str, Any]] = {"": {}, "env": {}, "sac": {}}
    for f in dataclasses.fields(TrainOptions):
        if f.metadata.get("config", "grad") != "grad":  # preset, batch_size: none; grad: below
            head, _, leaf = f.metadata["config"].rpartition(".")
            parts[head][leaf] = getattr(opts, f.name)
    env, sac, top = parts["env"], parts["sac"], parts[""]
    try:
        spec = get_method(opts.method)
    except ValueError as err:
        raise ConfigError(str(err).replace("valid methods", "allowed")) from None
    if opts.total_steps is None:
        top["total_steps"] = default_total_steps(opts.method, opts.benchmark)
    if opts.buffer_per_task is None:
        sac["buffer_per_task"] = DEFAULT_BUFFER_PER_TASK.get(opts.benchmark, 100_000)
    if opts.balance is None:
        sac["balance"] = spec.balance
    env_cfg = EnvConfig(**env)
    if opts.batch_size is not None:
        from softmod.envs import task_names

        try:
            num_tasks = len(task_names(env_cfg))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        sac["batch_per_task"] = batch_per_task_of(opts.batch_size, num_tasks)
    cfg = RunConfig(
        env=env_cfg,
        sac=SACConfig(**sac),
        policy_net=spec.network,
        q_net=spec.network,
        grad=grad_config(opts.grad, {k: getattr(opts, k) for k in GRAD_OPTIONS}),
        **top,
    )
    if opts.task_context is None:
        return cfg
    from softmod.task_context import with_task_context  # CARE's context rows, validated

    return with_task_context(cfg, Path(opts.task_context))


def options_from_config(cfg: RunConfig) -> dict[str, Any]:
    """The options that reproduce ``cfg`` with :func:`resolve_config` (every option, explicit;
    the networks come from ``cfg.method``). Used by ``--resume`` to compare a run's options."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(TrainOptions):
        if f.metadata.get("config", "grad") == "grad":
            continue  # preset, batch_size, task_context: their effect is in other fields already;
            # grad and its options: below
        value: Any = cfg
        for part in f.metadata["config"].split("."):
            value = getattr(value, part)
        out[f.name] = value
    out.update(grad_options(cfg.grad))  # --grad and its options (issue 21)
    return out


def default_run_dir(cfg: RunConfig) -> Path:
    """A new timestamped run directory: ``runs/<benchmark>-<goals>-<method>-s<seed>-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.env.benchmark}-{cfg.env.goals}-{cfg.method}-s{cfg.seed}-{stamp}"
