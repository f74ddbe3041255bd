"""Issue 19, item 1: run options resolve in one place (softmod/resolve.py); every error message
names a flag that exists; nothing imports the CLI (the sweep -> cli import cycle is gone)."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest
import tyro

import softmod
from softmod.cli import Command, TrainArgs, main
from softmod.config import EnvConfig, RunConfig, SACConfig, save_config
from softmod.methods import METHODS
from softmod.resolve import (
    TrainOptions,
    options_from_config,
    resolve_config,
)
from softmod.runstate import resumed_config
from softmod.sweep import SweepError, SweepSpec, build_trials, check_existing_trials
from softmod.validation import ConfigError

SRC = Path(softmod.__file__).parent
FLAG = re.compile(r"--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# modules whose messages are about `softmod train` (every flag in them must be a train option)
TRAIN_MODULES = [
    "validation.py", "resolve.py", "cli_checks.py", "runstate.py", "resume.py", "loopstate.py",
    "training_support.py", "loop.py", "precision.py", "progress.py", "methods.py", "presets.py",
]  # fmt: skip


def _flags_of(args_cls: type) -> set[str]:
    """Every flag of an options dataclass, ``--no-x`` for its booleans included."""
    out = set()
    for f in dataclasses.fields(args_cls):
        flag = "--" + f.name.replace("_", "-")
        out |= {flag, "--no-" + flag[2:]} if "bool" in str(f.type) else {flag}
    return out


def _message_strings(path: Path) -> list[str]:
    """Every string constant of a module except docstrings (f-strings: their literal parts)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
        if isinstance(node, ast.ClassDef):  # attribute docstrings (the --help texts)
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    docstrings.add(id(stmt.value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_every_flag_named_in_a_train_message_is_a_softmod_train_option() -> None:
    train_flags = _flags_of(TrainArgs) | {"--help"}
    named: dict[str, set[str]] = {}
    for module in TRAIN_MODULES:
        for text in _message_strings(SRC / module):
            for flag in FLAG.findall(text):
                named.setdefault(flag, set()).add(module)
    bad = {flag: sorted(mods) for flag, mods in named.items() if flag not in train_flags}
    assert not bad, f"messages name flags softmod train does not have: {bad}"
    # the scan sees the messages: the SAC hyperparameter checks and the resume rule are in it
    assert {"--lr-q", "--gamma", "--tau", "--horizon", "--resume", "--run-dir"} <= set(named)


def test_every_flag_named_in_a_cli_message_is_an_option_of_some_subcommand() -> None:
    every = {"--help"}
    for member in Command.__args__:  # type: ignore[attr-defined]
        every |= _flags_of(member.__origin__)
    for module in ["cli.py", "checkpoint.py", "evaluate.py", "sweep.py"]:
        flags = {f for text in _message_strings(SRC / module) for f in FLAG.findall(text)}
        assert flags <= every, f"{module}: {sorted(flags - every)}"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--lr-q 0", "--lr-q must be positive, got 0.0"),
        ("--lr-policy -1", "--lr-policy must be positive, got -1.0"),
        ("--lr-alpha 0", "--lr-alpha must be positive, got 0.0"),
        ("--gamma 1.5", "--gamma must be in (0, 1], got 1.5"),
        ("--tau 0", "--tau must be in (0, 1], got 0.0"),
        ("--gamma high", "--gamma 'high' is not a number"),
    ],
)
def test_sac_hyperparameter_errors_name_their_real_flag(
    tmp_path: Path, capsys, option: str, expected: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--benchmark", "toy", *option.split(), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err == f"softmod: error: {expected}"
    assert not (tmp_path / "r").exists()


def test_a_sac_hyperparameter_flag_lands_in_the_config() -> None:
    args = tyro.cli(TrainArgs, args=["--benchmark", "toy", "--lr-q", "1e-3", "--gamma", "0.9"])
    cfg = args.to_config()
    assert (cfg.sac.lr_q, cfg.sac.gamma, cfg.sac.lr_policy) == (1e-3, 0.9, 3e-4)


def test_nothing_imports_the_cli() -> None:
    """The CLI is a face over the library: no module of softmod imports softmod.cli (the sweep
    used to, for TrainArgs, closing an import cycle cli -> sweep -> cli)."""
    importers = []
    for path in SRC.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "softmod.cli":
                importers.append(str(path.relative_to(SRC)))
            if isinstance(node, ast.Import) and any(a.name == "softmod.cli" for a in node.names):
                importers.append(str(path.relative_to(SRC)))
    assert not importers, importers


@pytest.mark.parametrize(
    ("benchmark", "buffer"), [("toy", 100_000), ("mt1", 1_000_000), ("mt10", 100_000),
                              ("mt50", 200_000)]
)  # fmt: skip
def test_defaults_derived_from_other_options(benchmark: str, buffer: int) -> None:
    task = {"task": "reach-v3"} if benchmark == "mt1" else {}
    for method, spec in METHODS.items():
        cfg = resolve_config(benchmark=benchmark, method=method, validate=False, **task)
        assert cfg.sac.buffer_per_task == buffer
        assert cfg.sac.balance is spec.balance
        expected = spec.paper_steps.get(benchmark, {"toy": 100_000}.get(benchmark, 1_000_000))
        assert cfg.total_steps == expected
        assert cfg.policy_net == cfg.q_net == spec.network
    cfg = resolve_config(
        benchmark=benchmark, method="soft-shallow", balance=False, total_steps=5000,
        buffer_per_task=4000, validate=False, **task,
    )  # fmt: skip
    assert (cfg.sac.balance, cfg.total_steps, cfg.sac.buffer_per_task) == (False, 5000, 4000)


def test_python_options_the_cli_and_the_inverse_agree() -> None:
    argv = ["--benchmark", "toy", "--toy-tasks", "3", "--method", "soft-deep",
            "--batch-size", "48", "--horizon", "40", "--no-cuda-graph", "--threads", "2",
            "--seed", "5"]  # fmt: skip
    cli_cfg = tyro.cli(TrainArgs, args=argv).to_config()
    options = {"benchmark": "toy", "toy-tasks": 3, "method": "soft-deep", "batch_size": 48,
               "horizon": 40, "cuda_graph": False, "threads": 2, "seed": 5}  # fmt: skip
    cfg = resolve_config(options)
    assert cfg == cli_cfg and cfg.sac.batch_per_task == 16 and cfg.torch_threads == 2
    assert resolve_config(options_from_config(cfg)) == cfg  # the inverse, for --resume
    for method in METHODS:
        c = resolve_config(benchmark="toy", method=method, total_steps=900, validate=False)
        assert resolve_config(options_from_config(c), validate=False) == c


def test_a_preset_fills_what_is_not_given() -> None:
    cfg = resolve_config({"total_steps": 2000}, preset="soft-shallow-no-balance-mt10-conditioned")
    assert (cfg.method, cfg.env.goals, cfg.sac.balance) == ("soft-shallow", "conditioned", False)
    assert cfg.total_steps == 2000
    cfg = resolve_config({"preset": "mt-sac-mt50-fixed", "seed": 2}, validate=False)
    assert (cfg.env.benchmark, cfg.seed, cfg.total_steps) == ("mt50", 2, 100_000_000)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"bogus": 1}, "unknown option --bogus; allowed: --preset, --benchmark"),
        ({"horizon": "150"}, "--horizon '150' is not an integer"),
        ({"horizon": True}, "--horizon True is not an integer"),
        ({"goals": "random"}, "unknown goals setting 'random'; allowed: fixed, conditioned"),
        ({"method": "soft-wide"}, "unknown method 'soft-wide'; allowed: mt-sac"),
        ({"balance": "yes"}, "--balance 'yes' is not True or False"),
        ({"preset": "soft-shalow-mt10-fixed"}, "unknown preset 'soft-shalow-mt10-fixed'"),
        ({"benchmark": "mt10", "batch_size": 15}, "--batch-size 15 is not a positive multiple"),
        ({"horizon": 501}, "--horizon 501 is out of range; allowed: 1..500"),
    ],
)
def test_bad_python_options_are_one_line_config_errors(options: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config(options)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_every_option_lands_in_the_config_or_is_an_input_of_the_resolution() -> None:
    """Adding an option is one edit: a TrainOptions field with lands(...); only these three shape
    other fields instead (CARE's --task-context lands as rows of its network configs)."""
    unplaced = {f.name for f in dataclasses.fields(TrainOptions) if "config" not in f.metadata}
    assert unplaced == {"preset", "batch_size", "task_context"}


def test_a_sweep_refuses_a_trial_directory_holding_another_run(tmp_path: Path) -> None:
    spec = SweepSpec(("mt-sac",), (), ("toy",), ("fixed",), (0,), {"horizon": "30"})
    (trial,) = build_trials(spec)
    assert trial.config is not None and trial.config.env.horizon == 30
    run = tmp_path / trial.name
    run.mkdir()
    (run / "final_eval.json").write_text(json.dumps({}))  # a finished trial
    save_config(dataclasses.replace(trial.config, total_steps=123), run / "config.json")
    check_existing_trials(tmp_path, [trial])  # only a resumable field differs: the same run
    other = dataclasses.replace(trial.config.env, horizon=50)
    save_config(dataclasses.replace(trial.config, env=other), run / "config.json")
    with pytest.raises(SweepError, match=r"env\.horizon differ"):
        check_existing_trials(tmp_path, [trial])


@pytest.mark.parametrize(
    "changes",
    [
        {"seed": 3},
        {"torch_threads": 2, "method": "soft-deep"},
        {"env": EnvConfig(horizon=30)},
        {"sac": SACConfig(lr_q=1e-3)},
    ],
)
def test_resume_rule_messages_name_real_flags(changes: dict) -> None:
    """The resume rule's messages compute flag names from config fields (``torch_threads`` is
    ``--threads``): each named flag exists."""
    with pytest.raises(ConfigError) as err:
        resumed_config(RunConfig(), changes)
    flags = set(FLAG.findall(str(err.value)))
    assert "--threads" in flags and flags <= _flags_of(TrainArgs), flags
    assert resumed_config(RunConfig(), {"torch_threads": 2}).torch_threads == 2  # allowed
