"""GluonTS in and out, as the official package offers it: ``output_type="gluonts"`` and
``forecast_gluon(dataset)``. Needs the ``gluonts`` package (not a core dependency)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from rexforge.errors import InputError
from rexforge.forecast.frames import quantile_column

# Where a forecast starts when the series carries no start: the official package's default.
DEFAULT_START = ("2000-01-01", "h")


def _gluonts():
    try:
        from gluonts.model.forecast import QuantileForecast
    except ImportError:
        raise InputError(
            "output_type='gluonts' and forecast_gluon need gluonts: pip install gluonts"
        ) from None
    return QuantileForecast


def quantile_forecasts(quantiles, mean, levels, metas: list[dict]) -> list:
    """GluonTS ``QuantileForecast`` objects from quantiles [B, H, Q] and mean [B, H].

    Each forecast starts right after its series: ``meta["start"]`` (a pandas Period) plus
    ``meta["length"]`` steps; keys are the quantile levels as strings, then ``"mean"``.
    """
    import pandas as pd

    QuantileForecast = _gluonts()
    quantiles, mean = np.asarray(quantiles), np.asarray(mean)
    keys = [quantile_column(level) for level in levels] + ["mean"]
    out = []
    for q, m, meta in zip(quantiles, mean, metas):
        start = meta.get("start")
        if start is None:
            start = pd.Period(DEFAULT_START[0], freq=meta.get("freq", DEFAULT_START[1]))
        arrays = np.concatenate((q, m[:, None]), axis=1).T  # [Q + 1, H]
        out.append(
            QuantileForecast(
                forecast_arrays=arrays,
                start_date=start + meta.get("length", 0),
                item_id=meta.get("item_id"),
                forecast_keys=keys,
            )
        )
    return out


def dataset_entries(dataset: Iterable[dict], target_field: str = "target"):
    """(1-D float32 targets, metas with start / item_id / length) of a GluonTS dataset."""
    targets, metas = [], []
    for i, entry in enumerate(dataset):
        if target_field not in entry:
            raise InputError(f"gluonts entry {i} has no {target_field!r} field")
        target = np.asarray(entry[target_field], dtype=np.float32)
        if target.ndim != 1:
            raise InputError(f"gluonts entry {i}: the target must be 1-D, got {target.shape}")
        targets.append(target)
        meta = {k: entry[k] for k in ("start", "item_id") if k in entry}
        metas.append({**meta, "length": len(target)})
    return targets, metas


def forecast_as_gluonts(
    forecaster, series: list, metas: list[dict], yield_per_batch: bool, batch_size: int, **kwargs
):
    """``forecaster.forecast`` of ``series`` turned into QuantileForecast lists: one list, or
    with ``yield_per_batch`` one list per ``batch_size`` series."""
    levels = forecaster.quantiles

    def batches() -> Iterator[list]:
        pairs = iter(zip(series, metas))
        while chunk := list(itertools.islice(pairs, batch_size)):
            q, m = forecaster.forecast(
                [torch.as_tensor(s) for s, _ in chunk], batch_size=batch_size, **kwargs
            )
            yield quantile_forecasts(q, m, levels, [meta for _, meta in chunk])

    if yield_per_batch:
        return batches()
    return [f for batch in batches() for f in batch]
