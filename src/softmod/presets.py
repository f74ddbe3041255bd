"""The paper's named configurations: ``softmod train --preset NAME`` (DESIGN §7).

A preset fixes what a row of the paper varies: the method, the benchmark, the goal setting, the task
balance weights and the paper's sample budget (DESIGN §4). Everything else keeps the ``train``
defaults, and any option given explicitly on the command line wins over the preset's value::

    softmod train --preset soft-shallow-mt10-conditioned --total-steps 2000000 --seed 3

Names are ``<row>-<benchmark>-<goals>``:

- Table 1 (and every other method of :data:`softmod.methods.METHODS`, e.g. the Table 2 capacity
  variants ``mt-mh-sac-4`` ... ``mt-mh-sac-5-wide`` and the "w/o obs" networks): ``<method>``;
- Figure 6 ablations: ``soft-shallow-no-balance`` / ``soft-deep-no-balance`` (w/o balance),
  ``soft-shallow-no-obs-no-balance`` / ``soft-deep-no-obs-no-balance`` (w/o observation and
  balance) and ``mt-mh-sac-balance`` (the baseline with balance);
- later networks (issue 20): ``moore``, ``paco``, ``care`` with their published budgets; on MT50
  they train the MT50 size of their reference configs (``moore-mt50``, ``paco-mt50``,
  ``care-mt50``, :data:`BENCHMARK_SIZES`);
- gradient methods (issue 21, not in the paper), MT10 only: ``<method>-<grad>`` for MT-SAC and
  soft-shallow with ``--grad pcgrad | cagrad | gradnorm | famo``, e.g.
  ``soft-shallow-pcgrad-mt10-fixed``; the method's budget and balance, the method's defaults.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from softmod.methods import METHODS, default_total_steps

BENCHMARKS = ("mt10", "mt50")
GOALS = ("fixed", "conditioned")
TABLE1_METHODS = ("mt-sac", "mt-mh-sac", "mix-expert", "hard-routing", "soft-shallow", "soft-deep")
CAPACITY_METHODS = (
    "mt-mh-sac-4",
    "mt-mh-sac-5",
    "mt-mh-sac-6",
    "mt-mh-sac-4-wide",
    "mt-mh-sac-5-wide",
)
# Figure 6 ablations: row name -> (method, balance)
ABLATIONS: dict[str, tuple[str, bool]] = {
    "soft-shallow-no-balance": ("soft-shallow", False),
    "soft-deep-no-balance": ("soft-deep", False),
    "soft-shallow-no-obs-no-balance": ("soft-shallow-no-obs", False),
    "soft-deep-no-obs-no-balance": ("soft-deep-no-obs", False),
    "mt-mh-sac-balance": ("mt-mh-sac", True),
}

# issue 21: gradient-method rows, MT10 only: row name -> (method, --grad)
GRAD_ROWS: dict[str, tuple[str, str]] = {
    f"{method}-{grad}": (method, grad)
    for method in ("mt-sac", "soft-shallow")
    for grad in ("pcgrad", "cagrad", "gradnorm", "famo")
}


# Networks published after the paper (issue 20) with a different size on MT50 in their reference
# configs: the preset of row R on MT50 trains method R-mt50 (MOORE 6 experts, PaCo K=20, CARE 10
# encoders); their sources are the methods' own papers and code (softmod/nets/*.py).
BENCHMARK_SIZES: dict[tuple[str, str], str] = {
    ("moore", "mt50"): "moore-mt50",
    ("paco", "mt50"): "paco-mt50",
    ("care", "mt50"): "care-mt50",
}
NEWER_SOURCES = {
    "moore": "MOORE (Hendawy et al., ICLR 2024)",
    "paco": "PaCo (Sun et al., NeurIPS 2022)",
    "care": "CARE (Sodhani et al., ICML 2021)",
}


@dataclass(frozen=True)
class Preset:
    """One named configuration: the ``train`` options it sets."""

    name: str
    row: str  # the paper's row label, e.g. "soft-shallow-no-balance"
    method: str
    benchmark: str
    goals: str
    balance: bool
    total_steps: int
    source: str  # where the paper shows it, e.g. "Table 1", "Table 2", "Figure 6b"
    grad: str = "plain"  # --grad (issue 21)

    def train_options(self) -> dict[str, Any]:
        """The options this preset sets (names of :class:`softmod.resolve.TrainOptions`)."""
        return {
            "method": self.method,
            "benchmark": self.benchmark,
            "goals": self.goals,
            "balance": self.balance,
            "total_steps": self.total_steps,
            "grad": self.grad,
        }


def _source(row: str, method: str, benchmark: str, goals: str) -> str:
    """Where the paper shows a row in a setting."""
    if row in ABLATIONS:
        return "Figure 6c" if method == "mt-mh-sac" else "Figure 6b"
    if method in CAPACITY_METHODS:
        return "Table 2, Figure 6a"
    if method in TABLE1_METHODS:
        table2 = method in ("mt-mh-sac", "soft-deep") and (benchmark, goals) == ("mt50", "fixed")
        return "Table 1, Figure 5" + (", Table 2, Figure 6a" if table2 else "")
    if method == "single-task-sac":
        return "Section 5.6"
    if row in NEWER_SOURCES:
        return NEWER_SOURCES[row]
    return "ablation: w/o obs, with balance"


def _build() -> dict[str, Preset]:
    sized = set(BENCHMARK_SIZES.values())  # e.g. moore-mt50: the moore row's MT50 size
    rows: list[tuple[str, str, bool]] = [
        (m, m, spec.balance) for m, spec in METHODS.items() if m not in sized
    ]
    rows += [(row, method, balance) for row, (method, balance) in ABLATIONS.items()]
    out: dict[str, Preset] = {}
    for row, base, balance in rows:
        for benchmark in BENCHMARKS:
            method = BENCHMARK_SIZES.get((base, benchmark), base)
            for goals in GOALS:
                name = f"{row}-{benchmark}-{goals}"
                out[name] = Preset(
                    name=name,
                    row=row,
                    method=method,
                    benchmark=benchmark,
                    goals=goals,
                    balance=balance,
                    total_steps=default_total_steps(method, benchmark),
                    source=_source(row, method, benchmark, goals),
                )
    for row, (method, grad) in GRAD_ROWS.items():
        for goals in GOALS:
            name = f"{row}-mt10-{goals}"
            out[name] = Preset(
                name=name,
                row=row,
                method=method,
                benchmark="mt10",
                goals=goals,
                balance=METHODS[method].balance,
                total_steps=default_total_steps(method, "mt10"),
                source="not in the paper (issue 21)",
                grad=grad,
            )
    return out


PRESETS: dict[str, Preset] = _build()


def preset_names() -> list[str]:
    """Every preset name, in table order (method, then benchmark, then goals)."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """Look up a preset; an unknown name raises ValueError (one line) with the closest names."""
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(name, PRESETS, n=5, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "`softmod presets` lists them"
    raise ValueError(f"unknown preset {name!r}; {hint}")


def row_label(method: str, balance: bool) -> str:
    """The paper row a run belongs to: its method, marked when the balance weights differ from the
    method's default (``soft-shallow`` without balance -> ``soft-shallow-no-balance``)."""
    default = METHODS[method].balance if method in METHODS else balance
    if balance == default:
        return method
    return f"{method}-balance" if balance else f"{method}-no-balance"
