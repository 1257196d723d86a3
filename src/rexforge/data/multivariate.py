"""Series with several variates: targets, past covariates and known-future covariates.

``VariateSeries`` is what TiRex-2 trains on (``TimeSeries`` stays the univariate form):

    target             [V_t, T]  what the model learns to forecast (the loss sees only these)
    past_covariates    [V_p, T]  known up to the forecast origin only
    future_covariates  [V_f, T]  known over the forecast horizon as well (calendars, prices
                                 set in advance, weather forecasts)

Covariates are inputs, never targets. ``read_variate_series`` reads them from a long table
with the same column options as forecasting (``target``, ``past_covariates``,
``future_covariates``), putting each item on its regular time grid exactly as
``TiRex2Forecaster.forecast_df`` does, so a table trains and forecasts alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rexforge.errors import InputError


@dataclass
class VariateSeries:
    """One item: float64 rows [variates, T], NaN = missing. Covariate arrays may have 0 rows."""

    item_id: str
    target: np.ndarray
    past_covariates: np.ndarray | None = None
    future_covariates: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_id = str(self.item_id)
        self.target = _rows(self.target, f"{self.item_id}: target")
        T = self.target.shape[1]
        for name in ("past_covariates", "future_covariates"):
            value = getattr(self, name)
            rows = np.empty((0, T)) if value is None else _rows(value, f"{self.item_id}: {name}")
            if rows.shape[1] != T:
                raise InputError(
                    f"series {self.item_id}: {name} have {rows.shape[1]} steps, the target {T}"
                )
            setattr(self, name, rows)

    def __len__(self) -> int:
        return self.target.shape[1]

    @property
    def num_targets(self) -> int:
        return self.target.shape[0]

    def rows(self) -> np.ndarray:
        """[V_t + V_p + V_f, T]: targets, past covariates, known-future covariates."""
        return np.concatenate([self.target, self.past_covariates, self.future_covariates])

    def slice(self, start: int | None = None, stop: int | None = None) -> VariateSeries:
        """Steps ``[start:stop]`` of every variate."""
        return VariateSeries(
            self.item_id,
            self.target[:, start:stop],
            self.past_covariates[:, start:stop],
            self.future_covariates[:, start:stop],
            dict(self.meta),
        )

    def without_covariates(self) -> VariateSeries:
        return VariateSeries(self.item_id, self.target, meta=dict(self.meta))


def _rows(values, what: str) -> np.ndarray:
    rows = np.asarray(values, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2:
        raise InputError(f"{what} must be 1-D [T] or 2-D [variates, T], got {rows.shape}")
    if np.isinf(rows).any():
        raise InputError(f"{what} contains infinite values")
    return rows


def read_variate_series(
    path: str | Path,
    *,
    id_column: str | None = "item_id",
    timestamp_column: str | None = "timestamp",
    target: str | list[str] = "target",
    past_covariates: list[str] | None = None,
    future_covariates: list[str] | None = None,
) -> list[VariateSeries]:
    """Every item of a long CSV/Parquet table as a ``VariateSeries`` (one-line ``InputError``
    for a missing column, text in a value column, duplicate or irregular timestamps)."""
    # The forecaster's table reader, so that training reads a table as forecasting does. It
    # lives with the forecaster, which builds on data/; imported here to keep that order.
    from rexforge.data.sources import column_names, read_table
    from rexforge.forecast.tirex2_frames import frame_items, resolve_columns

    frame = read_table(path)
    if id_column is not None and id_column not in frame.columns:
        id_column = None  # a table of one item
    past = column_names(past_covariates) or []
    future = column_names(future_covariates) or []
    targets = column_names(target) or []
    # Known-future covariates are read as past ones here: in training data their future is
    # simply the next rows of the same table.
    columns = resolve_columns(
        frame, None, id_column, timestamp_column, targets, past + future, None
    )
    items = frame_items(frame, None, columns, horizon=1)
    out = []
    for item in items:
        series = item.series
        covariates = (
            np.empty((0, series.target.shape[1]))
            if series.past_covariates is None
            else series.past_covariates.double().numpy()
        )
        out.append(
            VariateSeries(
                "series" if item.item_id is None else item.item_id,
                series.target.double().numpy(),
                covariates[: len(past)],
                covariates[len(past) :],
                {"source": str(path)},
            )
        )
    if not out:
        raise InputError(f"{path}: no series found")
    return out
