"""The zero-shot guard of fine-tuning, and the report every run writes.

The last ``validation_windows`` horizons of every series are held out (never trained on). The
base model is scored on that tail before training; training keeps the checkpoint that scores
best on it; unless that best is better than zero-shot in WQL *beyond the tail's noise*, the run
exports the base model instead, so a fine-tune does not leave the user worse off on the data
they gave it.

"Beyond the noise": the WQL ratio fine-tuned / zero-shot is a ratio of summed pinball losses
over the held-out forecasts. Resampling those forecasts (a paired bootstrap) gives its
spread; the fine-tune is kept only when the ratio's upper ``CONFIDENCE`` bound is below 1. A
tail of a few series otherwise keeps a fine-tune that won by chance (and the tail also chose
the checkpoint, which favours chance winners).

The tail also selects the checkpoint, so the fine-tuned score on it is slightly optimistic:
the report says so; an independent test part (``rexforge evaluate``) gives the unbiased one.

The scale-free error must not get worse either (tail MASE at most zero-shot's). WQL is
dominated by the largest series; a fine-tune that wins there while most series get worse was
4.9% worse than zero-shot on the hospital set's official test part (tail WQL -5.4%, tail MASE
+2.3%), while every fine-tune kept on M1/M3 that helped on the test also lowered the tail MASE
(benchmarks/results/finetune_gain-starter-*).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rexforge.io.atomic import atomic_write_text

REPORT_NAME = "finetune_report"
METRICS = ("wql", "mase", "coverage_80")
CONFIDENCE = 0.9
BOOTSTRAP_SAMPLES = 2000


@dataclass
class FinetuneReport:
    zero_shot: dict[str, float]  # METRICS of the base model on the held-out tail
    fine_tuned: dict[str, float]  # METRICS of the best checkpoint on the tail
    kept: str  # "fine-tuned" or "base"
    best_step: int | None
    steps: int
    seconds: float
    settings: dict[str, object] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)  # automatic option -> why
    tail_forecasts: int = 0  # held-out forecasts the comparison pooled
    wql_ratio_upper: float = math.nan  # upper CONFIDENCE bound of the WQL ratio (bootstrap)

    @property
    def wql_ratio(self) -> float:
        base, tuned = self.zero_shot.get("wql", math.nan), self.fine_tuned.get("wql", math.nan)
        return tuned / base if base and math.isfinite(base) else math.nan

    def summary(self) -> str:
        """The one line the command prints."""
        zs, ft = self.zero_shot.get("wql", math.nan), self.fine_tuned.get("wql", math.nan)
        if self.kept == "base":
            mase = self.zero_shot.get("mase", math.nan), self.fine_tuned.get("mase", math.nan)
            worse_mase = ft < zs and mase[1] > mase[0]
            because = f"; MASE {mase[1]:.4f} vs {mase[0]:.4f}" if worse_mase else ""
            return (
                f"fine-tuning did not beat zero-shot on the held-out tail (WQL {ft:.4f} vs "
                f"{zs:.4f}{self._bound()}{because}): final/ is the base model"
            )
        return (
            f"fine-tuned WQL {ft:.4f} vs zero-shot {zs:.4f} on the held-out tail "
            f"({self.wql_ratio:.3f}x{self._bound()}; best step {self.best_step})"
        )

    def _bound(self) -> str:
        if not math.isfinite(self.wql_ratio_upper):
            return ""
        return (
            f", ratio at most {self.wql_ratio_upper:.3f} with {CONFIDENCE:.0%} confidence over "
            f"{self.tail_forecasts} held-out forecasts"
        )


def keep_fine_tuned(
    zero_shot: dict[str, float], fine_tuned: dict[str, float], upper_ratio: float = math.nan
) -> bool:
    """True when the fine-tuned WQL is finite and strictly below zero-shot's, the upper
    confidence bound of their ratio (``wql_ratio_bound``; NaN = not known) is below 1, and the
    fine-tuned MASE is not above zero-shot's (where both are known)."""
    base, tuned = zero_shot.get("wql", math.nan), fine_tuned.get("wql", math.nan)
    if not math.isfinite(tuned):
        return False
    if not math.isfinite(base):
        return True
    base_mase, tuned_mase = zero_shot.get("mase", math.nan), fine_tuned.get("mase", math.nan)
    return tuned < base and not upper_ratio >= 1.0 and not tuned_mase > base_mase


def wql_ratio_bound(
    base_losses: np.ndarray, tuned_losses: np.ndarray, confidence: float = CONFIDENCE, seed=0
) -> float:
    """Upper ``confidence`` bound of sum(tuned) / sum(base) over the held-out forecasts: the
    paired per-forecast pinball losses [N] of both models, resampled together. NaN when fewer
    than two forecasts pair up or the losses are not finite."""
    base, tuned = np.asarray(base_losses, float), np.asarray(tuned_losses, float)
    if base.shape != tuned.shape or base.size < 2:
        return math.nan
    if not (np.isfinite(base).all() and np.isfinite(tuned).all()) or base.sum() <= 0:
        return math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, base.size, size=(BOOTSTRAP_SAMPLES, base.size))  # [S, N]
    ratios = tuned[picks].sum(1) / np.maximum(base[picks].sum(1), np.finfo(float).tiny)
    return float(np.quantile(ratios, confidence))


def report_markdown(report: FinetuneReport) -> str:
    lines = [
        "# Fine-tuning report\n",
        report.summary() + "\n",
        "| on the held-out tail | " + " | ".join(METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for name, values in (("zero-shot", report.zero_shot), ("fine-tuned", report.fine_tuned)):
        cells = " | ".join(_fmt(values.get(m, math.nan)) for m in METRICS)
        lines.append(f"| {name} | {cells} |")
    lines += [
        f"\nKept: **{report.kept}**. Steps {report.steps}, best step {report.best_step}, "
        f"{report.seconds:.1f} s.",
        f"Held-out forecasts: {report.tail_forecasts}; upper {CONFIDENCE:.0%} bound of the WQL "
        f"ratio (paired bootstrap): {_fmt(report.wql_ratio_upper)}. The fine-tune is kept only "
        "when that bound is below 1.",
        "The tail also chose the checkpoint, so the fine-tuned score is slightly optimistic; "
        "`rexforge evaluate` on data not used here gives an unbiased one.\n",
        "## Settings\n",
    ]
    for name, value in sorted(report.settings.items()):
        why = report.chosen.get(name)
        lines.append(f"- `{name}`: {value}" + (f" (automatic: {why})" if why else ""))
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path, report: FinetuneReport) -> Path:
    """``finetune_report.md`` and ``.json`` in ``run_dir`` (atomic); returns the .md path."""
    base = Path(run_dir) / REPORT_NAME
    payload = {**asdict(report), "wql_ratio": report.wql_ratio}
    atomic_write_text(base.with_suffix(".json"), json.dumps(payload, indent=2, default=str) + "\n")
    md = base.with_suffix(".md")
    atomic_write_text(md, report_markdown(report))
    return md


def _fmt(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"
