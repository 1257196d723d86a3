"""The training data mix: files of real series, synthetic families, TSMixup, temporal aggregates.

``DataMix`` holds plain values (a YAML recipe or the command line fill it);
``build_training_series(mix)`` turns it into the list of ``TimeSeries`` that ``fit`` trains on,
plus a one-line description for the run's config::

    from rexforge.data import DataMix, build_training_series
    series, description = build_training_series(
        DataMix(files=["prices.csv"], synthetic={"kernelsynth": 100, "seasonal": 50})
    )

Synthetic families live in ``SYNTHETIC_FAMILIES`` (``register_synthetic``): a new family is
one entry, and ``rexforge pretrain`` / ``finetune`` get its count option (``--<option>``) from
it. Error messages name those options, as the command line is where most mixes come from.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rexforge.errors import InputError

if TYPE_CHECKING:  # series imports pandas, which the command-line parser does without
    from rexforge.data.multivariate import VariateSeries
    from rexforge.data.series import TimeSeries

# TSMixup crops its sources to a common length of at least this many steps.
TSMIXUP_MIN_LENGTH = 128


@dataclass(frozen=True)
class SyntheticFamily:
    """One synthetic generator family of the training mix.

    stream: ``(seed, synthetic_length) -> endless TimeSeries`` (most families draw their own
        lengths and ignore the second argument).
    label: the family's name in the mix description.
    lengths: the length range the description shows; None: the mix's ``synthetic_length``.
    option: the series-count option of the training commands (``--`` + dashes).
    help: that option's help text.
    """

    stream: Callable[[int, int], Iterator[TimeSeries]]
    label: str
    lengths: str | None
    option: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


# Registration order is the order in which families join the mix: changing it changes the
# training series of every existing recipe.
SYNTHETIC_FAMILIES: dict[str, SyntheticFamily] = {}


def register_synthetic(name: str, *, label: str, lengths: str | None, option: str, help: str):
    """Decorator: register ``stream(seed, synthetic_length)`` as synthetic family ``name``."""

    def register(stream: Callable[[int, int], Iterator[TimeSeries]]):
        if name in SYNTHETIC_FAMILIES:
            raise ValueError(f"synthetic family {name!r} is already registered")
        SYNTHETIC_FAMILIES[name] = SyntheticFamily(stream, label, lengths, option, help)
        return stream

    return register


# The generators import torch (rexforge.data.synthetic); import them only when drawing, so that
# building the command-line parser stays light.
@register_synthetic(
    "kernelsynth",
    label="KernelSynth",
    lengths=None,
    option="synthetic",
    help="add this many KernelSynth Gaussian-process series",
)
def _kernel_synth(seed: int, length: int) -> Iterator[TimeSeries]:
    from rexforge.data.synthetic import iter_kernel_synth

    return iter_kernel_synth(seed, length)


@register_synthetic(
    "seasonal",
    label="seasonal-trend synthetic",
    lengths="16-1024",
    option="seasonal_synth",
    help="add this many synthetic seasonal-trend series (ETS-like, 16..1024 steps)",
)
def _seasonal_trend(seed: int, length: int) -> Iterator[TimeSeries]:
    from rexforge.data.synthetic import iter_seasonal_trend

    return iter_seasonal_trend(seed)


@register_synthetic(
    "trend",
    label="persistent-trend synthetic",
    lengths="8-160",
    option="trend_synth",
    help="add this many short synthetic series whose trend persists (8..160 steps)",
)
def _persistent_trend(seed: int, length: int) -> Iterator[TimeSeries]:
    from rexforge.data.synthetic import iter_persistent_trend

    return iter_persistent_trend(seed)


@register_synthetic(
    "cycle",
    label="trend-cycle synthetic",
    lengths="8-160",
    option="cycle_synth",
    help="add this many short synthetic series: a drift plus a cycle reverting to it "
    "(8..160 steps)",
)
def _trend_cycle(seed: int, length: int) -> Iterator[TimeSeries]:
    from rexforge.data.synthetic import iter_trend_cycle

    return iter_trend_cycle(seed)


@register_synthetic(
    "stable",
    label="stable-season synthetic",
    lengths="12-240",
    option="stable_synth",
    help="add this many synthetic quarterly/monthly series with a fixed season, a steady "
    "drift and white noise (12..240 steps)",
)
def _stable_season(seed: int, length: int) -> Iterator[TimeSeries]:
    from rexforge.data.synthetic import iter_stable_season

    return iter_stable_season(seed)


@register_synthetic(
    "covariate",
    label="covariate-driven synthetic",
    lengths=None,
    option="covariate_synth",
    help="add this many synthetic series driven by a past and a known-future covariate with "
    "known effects (TiRex-2 models: they train on the covariates)",
)
def _covariate_driven(seed: int, length: int) -> Iterator[VariateSeries]:
    from rexforge.data.synthetic_covariates import iter_covariate_driven

    return iter_covariate_driven(seed, length)


@dataclass
class DataMix:
    """What to train on, as plain values.

    files: CSV/Parquet/Arrow files of real series, read with ``load_series`` and the layout
        options below (``target`` is the long layout's value column, ``columns`` the wide
        layout's series columns: ``a b`` or ``a,b``).
    past_covariates / future_covariates: columns of a long table that are inputs known up to
        now / known ahead (TiRex-2 models); with them, or several ``target`` columns (``a,b``),
        each item is read as one ``VariateSeries`` (``data.multivariate``).
    synthetic: series count per synthetic family (``SYNTHETIC_FAMILIES`` names).
    synthetic_length: length of families without their own lengths (KernelSynth).
    tsmixup: mixtures of the real series of at least 128 steps.
    aggregate: factors K: every real series also averaged over each K consecutive steps.
    seed: the seed of every synthetic draw.
    """

    files: list[str | Path] = field(default_factory=list)
    layout: str = "auto"
    id_column: str = "item_id"
    timestamp_column: str = "timestamp"
    target: str = "target"
    columns: list[str] | str | None = None
    past_covariates: list[str] | str | None = None
    future_covariates: list[str] | str | None = None
    synthetic: dict[str, int] = field(default_factory=dict)
    synthetic_length: int = 1024
    tsmixup: int = 0
    aggregate: list[int] = field(default_factory=list)
    seed: int = 0

    def check_counts(self) -> None:
        """Counts can come from YAML, past argparse: refuse bad ones before any data is read."""
        unknown = sorted(set(self.synthetic) - set(SYNTHETIC_FAMILIES))
        if unknown:
            raise InputError(
                f"unknown synthetic family {unknown[0]!r}; known: {', '.join(SYNTHETIC_FAMILIES)}"
            )
        counts = [(f.flag, self.synthetic.get(name, 0)) for name, f in SYNTHETIC_FAMILIES.items()]
        # KernelSynth, TSMixup, then the others: the order the commands have always checked.
        counts.insert(1, ("--tsmixup", self.tsmixup))
        for flag, count in counts:
            if (count or 0) < 0:
                raise InputError(f"{flag} must be a number of series >= 0, got {count}")


def build_training_series(mix: DataMix) -> tuple[list[TimeSeries], str]:
    """The mix's series, in a fixed order (files, aggregates, synthetic families in registry
    order, TSMixup), and a one-line description of where they came from."""
    mix.check_counts()
    from rexforge.data.series import TimeSeries

    series, parts = _read_files(mix)
    # Only real univariate series are mixed, and only those long enough for TSMixup's
    # shortest crop.
    univariate = [s for s in series if isinstance(s, TimeSeries)]
    real = [s.target for s in univariate if len(s) >= TSMIXUP_MIN_LENGTH]
    factors = mix.aggregate or []
    if factors:
        aggregates = aggregated_series(univariate, factors)
        series += aggregates
        parts.append(
            f"temporal aggregates ({len(aggregates)} series: means over "
            f"{', '.join(map(str, factors))} steps)"
        )
    for name, family in SYNTHETIC_FAMILIES.items():
        wanted = mix.synthetic.get(name, 0) or 0
        if wanted:
            stream = family.stream(mix.seed, mix.synthetic_length)
            series += list(itertools.islice(stream, wanted))
            lengths = family.lengths or mix.synthetic_length
            parts.append(f"{family.label} ({wanted} series of {lengths}, seed {mix.seed})")
    if mix.tsmixup:
        series += _tsmixup(real, mix.tsmixup, mix.seed)
        parts.append(
            f"TSMixup ({mix.tsmixup} mixtures of {len(real)} real series, seed {mix.seed})"
        )
    if not series:
        raise InputError("no training data: give --data FILE(S) and/or --synthetic N")
    return series, "; ".join(parts)


def _read_files(mix: DataMix) -> tuple[list, list[str]]:
    from rexforge.data.sources import column_names, load_series

    series, parts = [], []
    multivariate = bool(
        column_names(mix.past_covariates)
        or column_names(mix.future_covariates)
        or len(column_names(mix.target) or []) > 1
    )
    for path in mix.files or []:
        if multivariate:
            loaded = _read_variate_file(path, mix)
            series += loaded
            parts.append(
                f"{path} ({len(loaded)} items, target {mix.target!r}, past covariates "
                f"{column_names(mix.past_covariates) or []}, future covariates "
                f"{column_names(mix.future_covariates) or []})"
            )
            continue
        loaded = load_series(
            path,
            layout=mix.layout,
            id_column=mix.id_column,
            timestamp_column=mix.timestamp_column,
            target_column=mix.target,
            columns=column_names(mix.columns),
        )
        if not loaded:
            raise InputError(f"{path}: no series found")
        series += loaded
        parts.append(f"{path} ({len(loaded)} series, target {mix.target!r})")
    return series, parts


def _read_variate_file(path, mix: DataMix) -> list[VariateSeries]:
    from rexforge.data.multivariate import read_variate_series

    if mix.layout == "wide":
        raise InputError("covariates and several targets need a long table (--layout long)")
    return read_variate_series(
        path,
        id_column=mix.id_column,
        timestamp_column=mix.timestamp_column,
        target=mix.target,
        past_covariates=mix.past_covariates,
        future_covariates=mix.future_covariates,
    )


def _tsmixup(real: Sequence, count: int, seed: int) -> list[TimeSeries]:
    from rexforge.data.synthetic import iter_tsmixup

    if not real:
        raise InputError(
            f"--tsmixup needs --data series of at least {TSMIXUP_MIN_LENGTH} steps to mix"
        )
    return list(itertools.islice(iter_tsmixup(seed, real), count))


def aggregated_series(series: list, factors, min_observed: int = 8) -> list:
    """``TimeSeries`` of every series averaged over each factor's blocks (``aggregate_temporal``),
    named ``<item_id>@mean<K>``; aggregates with fewer than ``min_observed`` values are left out."""
    import numpy as np

    from rexforge.data.series import TimeSeries
    from rexforge.data.transforms import aggregate_temporal

    bad = [k for k in factors if isinstance(k, bool) or not isinstance(k, int) or k < 2]
    if bad:
        raise InputError(f"--aggregate: factors must be integers >= 2, got {bad[0]!r}")
    out = []
    for k in factors:
        for s in series:
            values = aggregate_temporal(s.target, k)
            if int((~np.isnan(values)).sum()) < min_observed:
                continue
            # Each block is stamped with its last step's time.
            stamps = (
                None
                if s.timestamps is None
                else s.timestamps[len(s) - len(values) * k + k - 1 :: k]
            )
            out.append(TimeSeries(f"{s.item_id}@mean{k}", values, stamps, None, {"aggregate": k}))
    return out
