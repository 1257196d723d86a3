"""``rexforge forecast`` with several targets and covariates (TiRex-2 models).

``forecast_table_file`` reads a long table (one row per item and step) with the targets and
covariates, and for known-future covariates a second table (``--future-data``) holding their
values over the forecast steps; it forecasts with ``TiRex2Forecaster.forecast_df`` and writes
its long output (``item_id, timestamp, [target,] mean, 0.1 ... 0.9``), and optionally a fan
chart with one panel per target of each item. Every problem with the input (a column that is
missing, text where numbers belong, future rows that are missing or too few, a model that
takes no covariates) ends in one ``InputError``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rexforge.errors import InputError
from rexforge.forecast.tirex2_frames import resolve_columns
from rexforge.forecast.tirex2_plot import plot_forecast_df

logger = logging.getLogger(__name__)

DEFAULT_ID, DEFAULT_TIME = "item_id", "timestamp"


def wants_table_forecast(target, past_covariates, future_covariates, future_data) -> bool:
    """Whether a forecast asks for this path: covariates, future data or several targets."""
    several = target is not None and "," in target
    return several or any(v is not None for v in (past_covariates, future_covariates, future_data))


def forecast_table_file(
    model,
    data: Path,
    horizon: int,
    output: Path,
    *,
    target: str | None = None,
    past_covariates: str | Sequence[str] | None = None,
    future_covariates: str | Sequence[str] | None = None,
    future_data: Path | None = None,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    batch_size: int = 512,
    rollout: str | None = None,
    plot: Path | None = None,
    unsupported: Sequence[str] = (),
) -> pd.DataFrame:
    """Forecast every item of the long table ``data`` (see the module doc), write the result to
    ``output`` (``rexforge.forecast.command.write_forecast``) and ``plot``; returns the frame.

    model: a loaded model whose ``forecast_df`` takes covariates (a ``TiRex2Forecaster``).
    target / past_covariates / future_covariates: column names (a,b, or a list); targets
        default to every numeric column that is not an id, timestamp or covariate.
    rollout: None cuts nothing and refuses horizons past the model's cap; ``"median"`` or ``"paths"`` rolls
        out past it (``rexforge.forecast.tirex2_rollout``).
    unsupported: the command's flags that were given but have no meaning here (an error).
    """
    from rexforge.data.sources import read_table
    from rexforge.forecast.command import write_forecast

    futures = _names(future_covariates)
    _check_request(model, horizon, rollout, futures, future_data, unsupported)
    df = read_table(data)
    future_df = None if future_data is None else read_table(future_data)
    id_column = _key_column(df, id_column, DEFAULT_ID, "--id-column")
    timestamp_column = _key_column(df, timestamp_column, DEFAULT_TIME, "--timestamp-column")
    pasts = _names(past_covariates)
    # Resolved here (forecast_df does it again) to know the targets for the plot.
    columns = resolve_columns(
        df, future_df, id_column, timestamp_column, _names(target) or None, pasts, futures
    )
    frame = model.forecast_df(
        df,
        horizon,
        id_column=id_column,
        timestamp_column=timestamp_column,
        target=columns.targets,
        past_covariates=pasts or None,
        future_covariates=columns.future or None,
        future_df=future_df,
        batch_size=batch_size,
        rollout=rollout or "cut",
    )
    write_forecast(frame, output)
    if plot is not None:
        plot_forecast_df(
            df,
            frame,
            plot,
            target=columns.targets,
            id_column=id_column,
            timestamp_column=timestamp_column,
        )
        logger.info("wrote fan chart to %s", plot)
    return frame


def _check_request(model, horizon: int, rollout, futures, future_data, unsupported) -> None:
    """One ``InputError`` for options that cannot go together, before any file is read."""
    from rexforge.forecast.tirex2_api import TiRex2Forecaster
    from rexforge.forecast.tirex2_rollout import PAST_CAP

    if unsupported:
        raise InputError(
            f"{', '.join(unsupported)} cannot be combined with several targets or covariates "
            "(a long table forecast with TiRex-2)"
        )
    if not isinstance(model, TiRex2Forecaster):
        raise InputError(
            "--target with several columns, --past-covariates, --future-covariates and "
            f"--future-data need a model that takes covariates (TiRex-2); {model.source or 'this'}"
            f" is a {type(model.model).__name__}"
        )
    further = " or ".join(PAST_CAP)
    if rollout not in (None, *PAST_CAP):
        raise InputError(
            f"--rollout {rollout} applies to TiRex models; TiRex-2 has --rollout {further}"
        )
    cap = model.config.future_len
    if horizon > cap and rollout is None:
        raise InputError(
            f"this TiRex-2 model forecasts at most {cap} steps per pass, got --horizon {horizon}; "
            f"add --rollout {further} to forecast further (forecasts are fed back as context)"
        )
    if futures and future_data is None:
        raise InputError(
            f"--future-covariates {','.join(futures)} need their values over the forecast "
            "steps: give them in --future-data FILE"
        )


def _names(columns: str | Sequence[str] | None) -> list[str]:
    """Columns given as ``a,b``, ``a b`` or a list of either."""
    from rexforge.data.sources import column_names

    return column_names(columns) or []


def _key_column(df: pd.DataFrame, named: str | None, default: str, flag: str) -> str | None:
    """The id or timestamp column: as named (it must exist), else ``default`` where the table
    has it, else None (one item / step positions)."""
    if named is not None:
        if named not in df.columns:
            raise InputError(f"{flag} {named!r} is not a column of the table")
        return named
    return default if default in df.columns else None
