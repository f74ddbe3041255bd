"""Command-line checks of ``softmod train`` that give one-line errors (exit code 2, no traceback).

tyro reports a bad choice or a non-number in a multi-line box; :func:`precheck_argv` finds those
first, from the option types of the argument dataclass. :func:`resume_changes` turns the options
given next to ``--resume`` into config changes, refusing any that would change the run.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

from softmod.config import RunConfig
from softmod.validation import ConfigError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kinds(args_cls: type) -> dict[str, Any]:
    """Per option: a tuple of allowed strings (Literal), ``int``, ``float``, ``bool`` or None."""
    hints = typing.get_type_hints(args_cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(args_cls):
        tp, kind = hints[f.name], None
        options = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        base = options[0] if len(options) == 1 else tp
        if typing.get_origin(base) is Literal:
            kind = tuple(str(a) for a in typing.get_args(base))
        elif base in (int, float, bool, Path):
            kind = base
        out[f.name] = kind
    return out


def given_options(argv: list[str]) -> set[str]:
    """The field names of the ``--options`` written in ``argv`` (``--no-x`` counts as ``x``)."""
    names = set()
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            name = tok[2:].split("=", 1)[0].replace("-", "_")
            names.add(name[3:] if name.startswith("no_") else name)
    return names


def precheck_argv(args_cls: type, argv: list[str]) -> None:
    """Refuse unknown options, bad choices and non-numbers with a one-line ConfigError."""
    kinds = _kinds(args_cls)
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if not tok.startswith("--") or tok in ("--help", "-h"):
            continue
        name, eq, value = tok[2:].partition("=")
        name = name.replace("-", "_")
        if name not in kinds:
            if name.startswith("no_") and kinds.get(name[3:]) is bool:
                continue
            known = ", ".join(_flag(k) for k in kinds)
            raise ConfigError(f"unknown option --{tok[2:].split('=')[0]}; allowed: {known}")
        kind = kinds[name]
        if kind is bool:
            continue
        if not eq:
            if i >= len(argv):
                raise ConfigError(f"{_flag(name)} needs a value")
            value = argv[i]
            i += 1
        if kind is Path and value == "":
            raise ConfigError(f"{_flag(name)} is empty; give a path")
        if isinstance(kind, tuple) and value not in kind:
            raise ConfigError(f"unknown {_flag(name)} {value!r}; allowed: {', '.join(kind)}")
        if kind in (int, float) and value != "None":
            try:
                kind(value)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise ConfigError(f"{_flag(name)} {value!r} is not {what}") from None


def args_from_config(args_cls: type, cfg: RunConfig) -> Any:
    """The ``softmod train`` options that reproduce a saved config (for ``--resume``)."""
    from softmod.grad import grad_options

    e, s = cfg.env, cfg.sac
    return args_cls(
        benchmark=e.benchmark,
        task=e.task,
        goals=e.goals,
        method=cfg.method,
        total_steps=cfg.total_steps,
        seed=cfg.seed,
        device=cfg.device,
        horizon=e.horizon,
        reward_version=e.reward_version,
        eval_interval=cfg.eval_interval,
        eval_episodes=cfg.eval_episodes,
        log_interval=cfg.log_interval,
        batch_per_task=s.batch_per_task,
        buffer_per_task=s.buffer_per_task,
        warmup_per_task=s.warmup_per_task,
        balance=s.balance,
        toy_tasks=e.toy_tasks,
        workers=e.workers,
        async_step=e.async_step,
        threads=cfg.torch_threads,
        checkpoint_interval=cfg.checkpoint_interval,
        keep_checkpoints=cfg.keep_checkpoints,
        on_nonfinite=cfg.on_nonfinite,
        cuda_graph=cfg.cuda_graph,
        precision=cfg.precision,
        **grad_options(cfg.grad),
    )


def resume_changes(args: Any, given: set[str], run_dir: Path) -> dict[str, Any]:
    """The config changes the options given next to ``--resume`` ask for; an option that would
    change the run itself (benchmark, method, seed, ...) is a ConfigError naming it."""
    from softmod.resume import config_changes, load_run_config
    from softmod.runstate import RESUMABLE_CHANGES, incompatible_fields

    saved = load_run_config(run_dir)
    if "run_dir" in given:
        raise ConfigError("--resume RUN_DIR names the run directory; leave out --run-dir")
    base = args_from_config(type(args), saved)
    base_cfg = base.to_config()
    changes: dict[str, Any] = {}
    for name in sorted(given - {"resume", "progress"}):
        value = getattr(args, name)
        probe = dataclasses.replace(base, **{name: value}).to_config()
        if incompatible_fields(base_cfg, probe):
            allowed = ", ".join(
                _flag("threads" if k == "torch_threads" else k) for k in RESUMABLE_CHANGES
            )
            raise ConfigError(
                f"--resume: {_flag(name)} {value} is incompatible with the run in {run_dir} "
                f"(it has {_flag(name)} {getattr(base, name)}); a resumed run may only change "
                f"{allowed}"
            )
        changes.update(config_changes(probe, base_cfg))
    return changes
