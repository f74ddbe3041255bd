"""Bad input: every option is checked before anything is built; one line, exit code 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from softmod.cli import main
from softmod.config import SACConfig, SoftModularNetConfig, save_config
from softmod.validation import ConfigError, validate_config

from .conftest import toy_config


def _error_line(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("softmod: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--benchmark", "mt20"], ["'mt20'", "toy, mt1, mt10, mt50"]),
        (["--benchmark", "mt1", "--task", "fly-v3"], ["'fly-v3'", "reach-v3"]),
        (["--method", "soft-wide"], ["'soft-wide'", "soft-shallow", "mt-sac"]),
        (["--benchmark", "mt10", "--batch-size", "1285"], ["1285", "multiple", "10, 20"]),
        (["--total-steps", "0"], ["--total-steps", "positive", "0"]),
        (["--total-steps", "-5"], ["--total-steps", "-5"]),
        (["--total-steps", "many"], ["--total-steps 'many'", "integer"]),
        (["--eval-interval", "0"], ["--eval-interval", "0"]),
        (["--checkpoint-interval", "-1"], ["--checkpoint-interval", "-1"]),
        (["--keep-checkpoints", "0"], ["--keep-checkpoints", "0"]),
        (["--horizon", "501"], ["--horizon 501", "1..500"]),
        (["--on-nonfinite", "ignore"], ["'ignore'", "stop, skip"]),
        (["--goals", "random"], ["'random'", "fixed, conditioned"]),
        (["--bogus", "1"], ["--bogus", "--benchmark"]),
    ],
)
def test_each_bad_option_is_one_line_with_exit_code_2(
    tmp_path: Path, capsys, args: list[str], expected: list[str]
) -> None:
    run = tmp_path / "run"
    line = _error_line(capsys, "train", *args, "--run-dir", str(run), "--no-progress")
    for part in expected:
        assert part in line, line
    assert not run.exists()  # nothing was built or written


def test_an_unwritable_run_directory_is_refused(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _error_line(capsys, "train", "--benchmark", "toy", "--run-dir", str(blocker / "run"))
    assert "not writable" in line and str(blocker / "run") in line
    line = _error_line(capsys, "train", "--benchmark", "toy", "--run-dir", "/proc/softmod-run")
    assert "not writable" in line


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (dict(policy_net=SoftModularNetConfig(layers=1)), "L >= 2 module layers, got L=1"),
        (dict(policy_net=SoftModularNetConfig(modules=0)), "n >= 1 modules per layer, got n=0"),
        (dict(q_net=SoftModularNetConfig(module_dim=0)), "module_dim must be positive, got 0"),
        (dict(sac=SACConfig(lr_q=0.0)), "--lr-q must be positive, got 0.0"),
        (dict(sac=SACConfig(lr_policy=-3e-4)), "--lr-policy must be positive, got -0.0003"),
        (dict(method="soft-wide"), "unknown method 'soft-wide'; allowed: mt-sac"),
        (dict(on_nonfinite="ignore"), "unknown --on-nonfinite 'ignore'; allowed: stop, skip"),
    ],
)
def test_config_level_checks_name_the_value(change: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        validate_config(toy_config(**change))


def _saved_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    save_config(toy_config(total_steps=600), run / "config.json")
    return run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--method", "soft-deep"], "--method soft-deep is incompatible"),
        (["--benchmark", "mt10"], "--benchmark mt10 is incompatible"),
        (["--seed", "7"], "--seed 7 is incompatible"),
        (["--batch-per-task", "64"], "--batch-per-task 64 is incompatible"),
        (["--run-dir", "elsewhere"], "leave out --run-dir"),
    ],
)
def test_resume_with_an_incompatible_option_is_refused(
    tmp_path: Path, capsys, args: list[str], expected: str
) -> None:
    run = _saved_run(tmp_path)
    line = _error_line(capsys, "train", "--resume", str(run), *args)
    assert (expected in line and "may only change" in line) or "--run-dir" in expected


def test_resume_of_a_directory_without_a_run_or_checkpoint(tmp_path: Path, capsys) -> None:
    line = _error_line(capsys, "train", "--resume", str(tmp_path))
    assert "not a softmod run directory" in line
    run = _saved_run(tmp_path)
    line = _error_line(capsys, "train", "--resume", str(run), "--total-steps", "800")
    assert "nothing to resume" in line and "rm -r" in line
    line = _error_line(capsys, "train", "--resume", str(run), "--toy-tasks", "3")
    assert "--toy-tasks 3 is incompatible" in line


def test_resume_when_config_json_no_longer_matches_the_checkpoint(tmp_path: Path, capsys) -> None:
    from softmod.loop import train

    from .test_resume import small_config

    cfg = small_config(total_steps=200)
    train(cfg, tmp_path / "run", progress=False)
    edited = dataclasses.replace(cfg, total_steps=400, env=dataclasses.replace(cfg.env, horizon=40))
    save_config(edited, tmp_path / "run" / "config.json")  # edited by hand
    capsys.readouterr()
    line = _error_line(capsys, "train", "--resume", str(tmp_path / "run"))
    assert "differs from" in line and "step-000000000200.pt" in line and "incompatible" in line
