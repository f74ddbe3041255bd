"""Command-line checks that give one-line errors (exit code 2, no traceback), for every subcommand.

tyro reports a bad choice or a non-number in a multi-line box; :func:`precheck_argv` finds those
first, from the option types of the argument dataclass (``softmod/resolve.py`` declares them).
:func:`resume_changes` turns the options given next to ``--resume`` into config changes, refusing
any that would change the run.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import tyro

from softmod.resolve import config_flag, option_kinds, options_from_config, resolve_config
from softmod.validation import ConfigError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def given_options(argv: list[str]) -> set[str]:
    """The field names of the ``--options`` written in ``argv`` (``--no-x`` counts as ``x``)."""
    names = set()
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            name = tok[2:].split("=", 1)[0].replace("-", "_")
            names.add(name[3:] if name.startswith("no_") else name)
    return names


def precheck_argv(args_cls: type, argv: list[str]) -> None:
    """Refuse unknown options, bad choices and non-numbers with a one-line ConfigError (``None``
    is a choice of the options that may be None)."""
    hints = typing.get_type_hints(args_cls)
    marker = typing.get_args(tyro.conf.Positional[int])[1]
    positional = {n for n, h in typing.get_type_hints(args_cls, include_extras=True).items()
                  if marker in typing.get_args(h)[1:]}  # fmt: skip
    kinds = {n: k for n, k in option_kinds(args_cls).items() if n not in positional}
    optional = {n for n in kinds if type(None) in typing.get_args(hints[n])}
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
            if not (value == "None" and name in optional):
                raise ConfigError(f"unknown {_flag(name)} {value!r}; allowed: {', '.join(kind)}")
        if kind in (int, float) and value != "None":
            try:
                kind(value)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise ConfigError(f"{_flag(name)} {value!r} is not {what}") from None


def resume_changes(args: Any, given: set[str], run_dir: Path) -> dict[str, Any]:
    """The config changes the options given next to ``--resume`` ask for; an option that would
    change the run itself (benchmark, method, seed, ...) is a ConfigError naming it (the rule:
    :func:`softmod.runstate.incompatible_fields`)."""
    from softmod.resume import config_changes, load_run_config
    from softmod.runstate import RESUMABLE_CHANGES, incompatible_fields

    saved = load_run_config(run_dir)
    if "run_dir" in given:
        raise ConfigError("--resume RUN_DIR names the run directory; leave out --run-dir")
    base = options_from_config(saved)
    base_cfg = resolve_config(base, validate=False)
    changes: dict[str, Any] = {}
    for name in sorted(given - {"resume", "progress", "preset"}):
        value = getattr(args, name)
        probe = resolve_config({**base, name: value}, validate=False)
        if incompatible_fields(base_cfg, probe):
            allowed = ", ".join(config_flag(k) for k in RESUMABLE_CHANGES)
            raise ConfigError(
                f"--resume: {_flag(name)} {value} is incompatible with the run in {run_dir} "
                f"(it has {_flag(name)} {base.get(name)}); a resumed run may only change "
                f"{allowed}"
            )
        changes.update(config_changes(probe, base_cfg))
    return changes
