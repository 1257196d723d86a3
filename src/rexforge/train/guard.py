"""The zero-shot guard of fine-tuning, and the report every run writes.

The last ``prediction_length`` steps of every series are held out (never trained on). The base
model is scored on that tail before training; training keeps the checkpoint that scores best on
it; if that best is not better than zero-shot in WQL, the run exports the base model instead,
so a fine-tune never leaves the user worse off on the data they gave it.

The tail also selects the checkpoint, so the fine-tuned score on it is slightly optimistic:
the report says so; an independent test part (``rexforge evaluate``) gives the unbiased one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rexforge.io.atomic import atomic_write_text

REPORT_NAME = "finetune_report"
METRICS = ("wql", "mase", "coverage_80")


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

    @property
    def wql_ratio(self) -> float:
        base, tuned = self.zero_shot.get("wql", math.nan), self.fine_tuned.get("wql", math.nan)
        return tuned / base if base and math.isfinite(base) else math.nan

    def summary(self) -> str:
        """The one line the command prints."""
        zs, ft = self.zero_shot.get("wql", math.nan), self.fine_tuned.get("wql", math.nan)
        if self.kept == "base":
            return (
                f"fine-tuning did not beat zero-shot on the held-out tail (WQL {ft:.4f} vs "
                f"{zs:.4f}): final/ is the base model"
            )
        return (
            f"fine-tuned WQL {ft:.4f} vs zero-shot {zs:.4f} on the held-out tail "
            f"({self.wql_ratio:.3f}x; best step {self.best_step})"
        )


def keep_fine_tuned(zero_shot: dict[str, float], fine_tuned: dict[str, float]) -> bool:
    """True when the fine-tuned WQL is finite and strictly below zero-shot's."""
    base, tuned = zero_shot.get("wql", math.nan), fine_tuned.get("wql", math.nan)
    if not math.isfinite(tuned):
        return False
    return not math.isfinite(base) or tuned < base


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
