"""Presets: every row of the paper has one, explicit options win over it, bad names are one line."""

from __future__ import annotations

import pytest

from softmod.cli import TrainArgs, main, parse_train_preset
from softmod.methods import METHODS, default_total_steps
from softmod.presets import BENCHMARK_SIZES, PRESETS, get_preset

SETTINGS = [(b, g) for b in ("mt10", "mt50") for g in ("fixed", "conditioned")]
TABLE1 = ["mt-sac", "mt-mh-sac", "mix-expert", "hard-routing", "soft-shallow", "soft-deep"]
TABLE2 = ["mt-mh-sac-4", "mt-mh-sac-5", "mt-mh-sac-6", "mt-mh-sac-4-wide", "mt-mh-sac-5-wide"]
FIG6 = {  # row -> (method, balance)
    "soft-shallow-no-balance": ("soft-shallow", False),
    "soft-deep-no-balance": ("soft-deep", False),
    "soft-shallow-no-obs-no-balance": ("soft-shallow-no-obs", False),
    "soft-deep-no-obs-no-balance": ("soft-deep-no-obs", False),
    "mt-mh-sac-balance": ("mt-mh-sac", True),
}


@pytest.mark.parametrize(("bench", "goals"), SETTINGS)
def test_every_row_of_the_paper_has_a_preset_in_every_setting(bench: str, goals: str) -> None:
    sized = set(BENCHMARK_SIZES.values())  # moore-mt50 etc.: the MT50 size of the moore row
    rows = {
        m: (m, METHODS[m].balance) for m in [*TABLE1, *TABLE2, *METHODS] if m not in sized
    } | FIG6
    for row, (method, balance) in rows.items():
        method = BENCHMARK_SIZES.get((row, bench), method)
        p = get_preset(f"{row}-{bench}-{goals}")
        assert (p.method, p.benchmark, p.goals, p.balance) == (method, bench, goals, balance)
        assert p.total_steps == default_total_steps(method, bench)  # the paper's budget
    assert get_preset(f"soft-deep-{bench}-{goals}").total_steps == (
        15_000_000 if bench == "mt10" else 50_000_000
    )
    assert get_preset(f"mt-sac-{bench}-{goals}").total_steps == (
        20_000_000 if bench == "mt10" else 100_000_000
    )
    grad_rows = 2 * 4 * 2  # issue 21: MT-SAC and soft-shallow x 4 gradient methods x 2 goals
    assert len(PRESETS) == 4 * (len(METHODS) - len(sized) + len(FIG6)) + grad_rows


def test_the_later_networks_train_their_reference_size_on_each_benchmark() -> None:
    for row, experts10, experts50 in [("moore", 4, 6), ("care", 6, 10)]:
        assert METHODS[get_preset(f"{row}-mt10-fixed").method].network.experts == experts10
        assert METHODS[get_preset(f"{row}-mt50-conditioned").method].network.experts == experts50
    assert METHODS[get_preset("paco-mt10-fixed").method].network.param_sets == 5
    assert METHODS[get_preset("paco-mt50-fixed").method].network.param_sets == 20
    assert get_preset("moore-mt10-fixed").total_steps == 20_000_000
    assert get_preset("paco-mt10-fixed").total_steps == 50_000_000
    assert get_preset("care-mt50-fixed").total_steps == 100_000_000


def test_a_preset_sets_the_run_config_and_explicit_options_override_it() -> None:
    args = parse_train_preset(["train", "--preset", "soft-shallow-no-balance-mt10-conditioned"])
    assert isinstance(args, TrainArgs)
    cfg = args.to_config()
    assert (cfg.method, cfg.env.benchmark, cfg.env.goals) == ("soft-shallow", "mt10", "conditioned")
    assert cfg.sac.balance is False and cfg.total_steps == 15_000_000
    assert cfg.policy_net == METHODS["soft-shallow"].network

    args = parse_train_preset(
        [
            "train",
            "--preset=mt-mh-sac-mt50-fixed",
            "--total-steps",
            "2000",
            "--goals",
            "conditioned",
            "--balance",
            "True",
            "--seed",
            "4",
        ]
    )
    assert args is not None
    cfg = args.to_config()
    assert (cfg.method, cfg.env.benchmark) == ("mt-mh-sac", "mt50")  # from the preset
    assert (cfg.total_steps, cfg.env.goals, cfg.sac.balance, cfg.seed) == (
        2000,
        "conditioned",
        True,
        4,
    )
    # options before the preset win too: precedence is by being explicit, not by position
    args = parse_train_preset(["train", "--method", "mt-sac", "--preset", "soft-deep-mt10-fixed"])
    assert args is not None and args.method == "mt-sac" and args.benchmark == "mt10"

    # no preset: the ordinary parser
    assert parse_train_preset(["train", "--method", "mt-sac"]) is None
    assert parse_train_preset(["eval", "runs/x"]) is None


def test_an_unknown_preset_is_a_one_line_error_naming_close_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["train", "--preset", "soft-shalow-mt10-fixd"])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unknown preset 'soft-shalow-mt10-fixd'" in lines[0]
    assert "soft-shallow-mt10-fixed" in lines[0]
    with pytest.raises(ValueError, match="softmod presets"):
        get_preset("zzz")


def test_softmod_presets_lists_every_preset(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one table row per preset, nothing truncated
    main(["presets"])
    out = capsys.readouterr().out
    listed = {line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")}
    assert listed == set(PRESETS)
    main(["presets", "--match", "mt50-conditioned"])
    out = capsys.readouterr().out
    listed = {line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")}
    assert listed == {n for n in PRESETS if n.endswith("mt50-conditioned")}
