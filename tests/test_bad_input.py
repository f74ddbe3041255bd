"""Issue 16, point 6: bad input that used to get through is one line, exit code 2, before anything
is written (in-process through ``softmod.cli.main``, so the checks themselves are what is timed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
import tyro

from softmod.cli import main
from softmod.loop import train
from softmod.sweep import SweepArgs

from .test_resume import small_config

# its module-scoped fixture is built once: under pytest-xdist the module stays on one worker
pytestmark = pytest.mark.xdist_group("test_bad_input")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished toy run to evaluate and report on."""
    path = tmp_path_factory.mktemp("bad-input") / "run"
    train(small_config(total_steps=200), path, progress=False)
    return path


def _error(argv: list[str], capsys) -> str:
    """The one-line error of ``softmod ARGV``, which must exit with code 2."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    assert "\n" not in err and err.startswith("softmod: error: "), err
    return err


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("--seed -1", "--seed -1 is out of range"),
        ("--workers -1", "--workers -1 is negative"),
        ("--threads -3", "--threads -3 is negative"),
        ("--buffer-per-task 10", "--buffer-per-task 10 is smaller than the warm-up (4000)"),
        ("--buffer-per-task 100 --warmup-per-task 50", "batch per task (128); allowed: >= 128"),
        ("--total-steps 1e23", "--total-steps '1e23' is not an integer"),
        ("--total-steps 100000000000000000000000", "--total-steps 100,000,000,000,000,000,000,000"),
        ("--async-step", "--async-step needs env worker processes: add --workers N"),
        ("--benchmark toy --workers 2", "the toy benchmark runs in-process"),
    ],
)
def test_bad_train_options_are_refused_before_anything_is_written(
    tmp_path: Path, capsys, options: str, expected: str
) -> None:
    target = tmp_path / "new"
    err = _error(["train", *shlex.split(options), "--run-dir", str(target)], capsys)
    assert expected in err
    assert not target.exists() and _listing(tmp_path) == []


def test_an_empty_run_dir_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "--run-dir is empty" in _error(["train", "--run-dir", ""], capsys)
    assert _listing(tmp_path) == []


def test_a_negative_sweep_seed_is_refused_before_ray_starts(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    argv = ["sweep", "--sweep-dir", str(sweep), "--methods", "mt-sac", "--seeds", "-1"]
    assert "--seed -1 is out of range" in _error(argv, capsys)
    assert not sweep.exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("--out /proc/x.json", "--out '/proc/x.json' is not writable"),
        ("--out {tmp}", "is a directory; give a file name"),
        ("--checkpoint ../config.json", "--checkpoint '../config.json' is not a file name in"),
        ("--checkpoint nothing.pt", "nothing.pt not found; allowed: best.pt, final.pt"),
        ("--seed -2", "--seed -2 is out of range"),
        ("--horizon 0", "--horizon 0 is out of range; allowed: 1..500"),
        ("--horizon 501", "--horizon 501 is out of range; allowed: 1..500"),
    ],
)
def test_bad_eval_options_are_refused_before_the_evaluation(
    run: Path, tmp_path: Path, capsys, options: str, expected: str
) -> None:
    before = _listing(run)
    argv = ["eval", str(run), *shlex.split(options.format(tmp=tmp_path))]
    assert expected in _error(argv, capsys)
    assert _listing(run) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU-only machine")
def test_eval_on_cuda_without_a_gpu_names_the_device_not_the_file(run: Path, capsys) -> None:
    err = _error(["eval", str(run), "--device", "cuda"], capsys)
    assert "--device cuda was asked for but no CUDA device is available" in err
    assert "corrupted" not in err


def test_bad_report_options_are_refused_before_any_work(run: Path, tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    err = _error(["report", str(run), "--out", "/proc/rep"], capsys)
    assert "--out '/proc/rep' is not writable" in err
    err = _error(["report", str(run), "--out", str(a_file)], capsys)
    assert "exists and is not a directory" in err
    err = _error(["report", "--out", str(tmp_path / "r")], capsys)
    assert "needs at least one run directory" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("eval RUN --camera top", "unknown --camera 'top'; allowed: corner, corner2, corner3,"),
        ("eval RUN --precision fp16", "unknown --precision 'fp16'; allowed: fp32, bf16"),
        ("eval RUN --episodes ten", "--episodes 'ten' is not an integer"),
        ("report RUN --device gpu", "unknown --device 'gpu'; allowed: auto, cpu, cuda"),
        ("report RUN --bogus", "unknown option --bogus; allowed: --out, --routing,"),
        ("params --benchmark mt20", "unknown --benchmark 'mt20'; allowed: mt10, mt50"),
        ("bench --threads two", "--threads 'two' is not an integer"),
        ("sweep --precision fp8", "unknown --precision 'fp8'; allowed: fp32, bf16"),
    ],
)
def test_every_subcommand_refuses_a_bad_choice_or_number_in_one_line(
    tmp_path: Path, capsys, argv: str, expected: str
) -> None:
    """tyro's own message for these is a multi-line box; the check runs before it parses."""
    err = _error(shlex.split(argv.replace("RUN", str(tmp_path / "run"))), capsys)
    assert expected in err
    assert _listing(tmp_path) == []


def test_none_is_a_choice_of_an_option_that_may_be_none() -> None:
    from softmod.cli import EvalArgs
    from softmod.cli_checks import precheck_argv

    precheck_argv(EvalArgs, ["RUN", "--precision", "None", "--seed", "None"])  # no error


def test_presets_matching_nothing_is_an_error(capsys) -> None:
    err = _error(["presets", "--match", "mt10-conditoned"], capsys)
    assert "no preset name contains it" in err and "closest: " in err


def test_the_sweep_help_example_parses() -> None:
    example = re.search(r"Example: softmod sweep (.*?)\n\n", SweepArgs.__doc__ + "\n\n", re.S)
    assert example is not None
    args = tyro.cli(SweepArgs, args=shlex.split(example.group(1).replace("\n", " ")))
    assert args.sweep_dir == Path("sweeps/table1") and args.seeds == (0, 1, 2)
