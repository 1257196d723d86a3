"""Fine-tuning settings chosen from the data, when the user leaves them unset.

The rule (one place, documented in the README; explicit options always win):

* ``validation_windows``: the held-out tail has ``ceil(200 / series)`` windows per series,
  within [1, 8] (and per series at most a quarter of its length): about 200 held-out forecasts,
  so that the checkpoint choice and the guard's verdict are not decided by the noise of a few
  series (a one-window tail of 14 hourly crypto series kept a fine-tune 1.3% better on the tail
  and 6.5% worse on the following 48 hours).
* ``partial_future``: on when some series are shorter than the tail plus one whole training
  window (horizon + horizon in whole patches + 1): their windows' futures may run past the
  series' end (the loss ignores the padding), so short series (car_parts: 39 monthly steps,
  a third of M1/M3 quarterly) train instead of being refused.
* ``D`` = observations available for training: the sum over series of (length - held-out
  tail); ``windows`` = D / P, about one training window per patch start.
* ``batch_size``: 32, or the largest power of two <= 4 x the number of series when there are
  fewer than 8 series (tiny sets: fewer, less redundant windows per step), at least 8.
* ``max_steps``: about 4 passes over the windows, ``ceil(4 * windows / batch_size)``, within
  [100, 2000]. Small sets are over-fitted after a few passes; the guard's early stopping on
  the held-out tail catches what this misjudges.
* ``lr`` (peak): full 5e-5 below 20k observations, 1e-4 from there (small sets move the
  weights far from the pretrained ones per step); freeze 3e-4 (fewer parameters move); LoRA
  1e-3 (adapters start at zero and are scaled by alpha / rank).
* ``lora_rank`` 8 below 100k observations, else 16. ``freeze_blocks``: half the blocks.
* ``warmup_steps``: a tenth of the steps, at most 100.
* ``val_every_n_steps``: a tenth of the steps (at least 10), so that the best checkpoint is
  picked among ~10 evaluations; ``early_stopping_patience`` 3 evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rexforge.train.settings import round_up

# The options the rule may set; everything else keeps its ``TrainConfig`` default.
AUTO_OPTIONS = (
    "validation_windows",
    "partial_future",
    "batch_size",
    "max_steps",
    "lr",
    "lora_rank",
    "freeze_blocks",
    "warmup_steps",
    "val_every_n_steps",
    "early_stopping_patience",
)


@dataclass
class AutoSettings:
    values: dict[str, object] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line per chosen option: ``name value (why)``."""
        return "; ".join(f"{k} {self.values[k]} ({self.reasons[k]})" for k in self.values)


def choose_settings(
    mode: str,
    lengths: Sequence[int],
    horizon: int,
    *,
    num_blocks: int,
    patch_size: int = 32,
    explicit: Mapping[str, object] | None = None,
    processes: int = 1,
) -> AutoSettings:
    """The rule above for ``mode`` on series of ``lengths``. ``explicit`` holds the options the
    user set: they are left out, and choices that depend on them (steps on the batch size,
    warmup on the steps) use the user's values. ``processes``: of a distributed run, whose
    steps each train ``batch_size`` windows per process."""
    explicit = dict(explicit or {})
    series = len(lengths)
    chosen = AutoSettings()

    def choose(name: str, value: object, why: str) -> None:
        if name not in explicit:
            chosen.values[name] = value
            chosen.reasons[name] = why

    tail = min(8, max(1, math.ceil(200 / max(series, 1))))
    choose("validation_windows", tail, f"~200 held-out forecasts from {series} series")
    tail = int(explicit.get("validation_windows", tail))
    need = shortest_trainable(horizon, round_up(horizon, patch_size), True, False)
    short = sum(n < need for n in lengths)
    choose(
        "partial_future",
        short > 0,
        f"{short} of {series} series shorter than {need} steps"
        + (": they train on futures that run past their end" if short else ""),
    )
    held = validation_windows_per_series(lengths, horizon, tail)
    observations = int(sum(max(0, n - k * horizon) for n, k in zip(lengths, held)))
    windows = max(1, observations // patch_size)

    batch = 32 if series >= 8 else max(8, 2 ** int(math.log2(4 * max(series, 1))))
    choose("batch_size", batch, f"{series} series")
    batch = int(explicit.get("batch_size", batch))
    steps = min(2000, max(100, math.ceil(4 * windows / (batch * processes))))
    per_step = f" ({processes} processes)" if processes > 1 else ""
    choose(
        "max_steps",
        steps,
        f"~4 passes over {windows} windows of {observations} observations{per_step}",
    )
    steps = int(explicit.get("max_steps", steps))
    if mode == "lora":
        choose("lr", 1e-3, "LoRA adapters start at zero")
        rank = 8 if observations < 100_000 else 16
        choose("lora_rank", rank, f"{observations} observations")
    elif mode == "freeze":
        choose("lr", 3e-4, "only the unfrozen blocks move")
        choose("freeze_blocks", num_blocks // 2, f"half of {num_blocks} blocks")
    elif mode == "full":
        small = observations < 20_000
        choose("lr", 5e-5 if small else 1e-4, f"{observations} observations")
    choose("warmup_steps", min(100, steps // 10), "a tenth of the steps")
    choose("val_every_n_steps", max(10, steps // 10), "~10 evaluations on the held-out tail")
    choose("early_stopping_patience", 3, "3 evaluations without improvement")
    return chosen


def validation_windows_per_series(lengths: Sequence[int], horizon: int, windows: int) -> list[int]:
    """Held-out windows per series: ``windows``, but at most a quarter of a series' length (the
    rest must train), and always one."""
    return [max(1, min(windows, n // (4 * horizon))) for n in lengths]


def shortest_trainable(horizon: int, train_future: int, validation: bool, partial: bool) -> int:
    """Fewest steps a series needs to train: the held-out tail (``validation``), one history
    step and a whole training future (with ``partial`` futures: one future step)."""
    return (horizon if validation else 0) + (1 if partial else train_future) + 1
