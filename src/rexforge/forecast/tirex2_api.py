"""``TiRex2Forecaster``: forecasting with a TiRex-2 network from arrays.

``forecast`` takes what the reference ``tirex2`` (0.4.0) ``ForecastModel.forecast`` takes and
returns what it returns, so code written for it switches by changing the import:

    from rexforge import load_model
    model = load_model("path/to/tirex2-folder")          # config.json + model.safetensors
    [f] = model.forecast([TimeseriesType(target=torch.randn(2, 128))], prediction_length=16)
    f.shape                                               # [2 targets, 9 quantiles, 16 steps]

How one forecast is made (the reference's rules, measured and documented there):

* every series is one group of variates: its targets, then its past-only covariates, then its
  known-future covariates; the variate attention mixes within the group only;
* trending target rows are differenced first (``rexforge.forecast.tirex2_post``);
* each row is laid out as [context | future_len steps], the future NaN except where a
  known-future covariate gives values (up to the horizon), then left-padded with NaN or cut to
  ``context_len + future_len`` steps (``pad_context=False``: padded only to the longest series
  of its batch);
* the network forecasts the future_len window in one pass; horizons beyond future_len are cut
  to future_len with a warning, as the reference does, or forecast window by window with the
  median fed back (``rollout="median"``) or along Q paths (``"paths"``;
  ``rexforge.forecast.tirex2_rollout``);
* the targets' quantiles are post-processed (bands widened, or differences integrated), and
  with ``tta_sign_flip`` averaged with the mirrored forecast of the negated series.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from rexforge.config_tirex2 import TiRex2Config
from rexforge.errors import ConfigError, InputError
from rexforge.forecast.api import check_prediction_length
from rexforge.forecast.mixture import check_paths_levels
from rexforge.forecast.tirex2_inputs import TimeseriesType, build_series
from rexforge.forecast.tirex2_post import (
    complement_order,
    difference_rows,
    last_observed,
    target_forecasts,
    trending_rows,
)
from rexforge.forecast.tirex2_rollout import ROLLOUTS, median_rollout, paths_rollout
from rexforge.model.tirex2 import TiRex2Model, count_parameters

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("torch", "numpy")

__all__ = ["TiRex2Forecaster", "TimeseriesType"]


class TiRex2Forecaster:
    """A TiRex-2 network plus everything needed to forecast with it.

    Forecasts are float32 CPU tensors (or numpy arrays), one [V_t, Q, H] per series: its
    target variates, the model's quantile levels (0.1 ... 0.9), the horizon.
    """

    def __init__(self, model: TiRex2Model, metadata: dict | None = None, source: str = ""):
        self.model = model.eval()
        self.metadata = dict(metadata or {})
        self.source = source

    @classmethod
    def from_checkpoint(
        cls, ckpt, device: str = "cpu", kernel: str = "auto", numerics: str | None = None
    ) -> TiRex2Forecaster:
        """Build from a ``Checkpoint`` whose config is a ``TiRex2Config`` (weights in our
        names). ``kernel``: the recurrences' kernels ("auto": the plain torch references, whose
        forecasts are tirex-2's; a name registered for one recurrence only sets that one).
        ``numerics="fast"`` with ``kernel="auto"`` takes the fast CPU kernels (fp32, not bit
        for bit the reference's); TiRex's other numerics have no meaning here (fp32)."""
        from rexforge.kernels.tirex2 import recurrence_kernels
        from rexforge.registry import create_model

        slstm, mlstm = recurrence_kernels(kernel, numerics)
        model = create_model(
            ckpt.config, state_dict=ckpt.state_dict, slstm_kernel=slstm, mlstm_kernel=mlstm
        )
        return cls(model.to(device), ckpt.metadata, ckpt.source)

    @property
    def config(self) -> TiRex2Config:
        return self.model.config

    @property
    def quantiles(self) -> list[float]:
        return list(self.config.quantiles)

    @property
    def rollouts(self) -> tuple[str, ...]:
        """The names ``forecast(..., rollout=)`` takes: what happens past ``future_len``."""
        return ROLLOUTS

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def to_checkpoint(self):
        """The network's weights (CPU), config and metadata as a ``Checkpoint``."""
        from rexforge.io.checkpoint import Checkpoint

        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return Checkpoint(self.config, state, dict(self.metadata), self.source)

    def save(self, folder) -> Path:
        """Save in the official layout (``config.json`` + ``model.safetensors`` [+ NOTICE]),
        which ``tirex2.load_model`` and ``rexforge.load_model`` read; returns the folder."""
        from rexforge.io.tirex2_folder import write_official_folder

        return write_official_folder(folder, self.to_checkpoint())

    # -- forecasting -----------------------------------------------------------------------
    def forecast(
        self,
        timeseries,
        prediction_length: int,
        *,
        past_covariates=None,
        future_covariates=None,
        output_type: Literal["torch", "numpy"] = "torch",
        batch_size: int = 512,
        yield_per_batch: bool = False,
        tta_sign_flip: bool | None = None,
        tta_diff: bool | None = None,
        pad_context: bool = True,
        rollout: Literal["cut", "median", "paths"] = "cut",
    ):
        """Quantile forecasts, one [V_t, Q, H] per series of ``timeseries``.

        timeseries: ``TimeseriesType`` items (ours or the reference's), or arrays: a 1-D array,
            a 2-D array (rows = univariate series), or a list of 1-D series and 2-D
            [variates, T] multivariate targets; NaN marks missing values anywhere.
        past_covariates / future_covariates: with arrays, one [V, T] / [V, >= T + H] entry (or
            None) per series, or one array for a single series.
        prediction_length: steps to forecast. The model forecasts at most ``future_len`` steps
            per pass (320 for the released checkpoint); past that, ``rollout`` decides.
        tta_sign_flip / tta_diff: None uses the checkpoint's setting (``config.json``).
        rollout: ``"cut"`` (default) cuts longer horizons to ``future_len`` with a warning, as
            the reference does; ``"median"`` forecasts further by feeding the median forecast
            back as context (``rexforge.forecast.tirex2_rollout``; its later bands are too
            narrow); ``"paths"`` feeds back one quantile curve along each of Q paths and mixes
            their forecasts (Q times the cost past the first window). Known-future covariates
            must then cover the whole horizon.
        Returns a list of torch tensors or numpy arrays (``output_type``); with
        ``yield_per_batch`` an iterator of such lists, one per ``batch_size`` series.
        """
        if output_type not in OUTPUT_TYPES:
            raise InputError(f"output_type must be 'torch' or 'numpy', got {output_type!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        series = build_series(timeseries, past_covariates, future_covariates)
        horizon = self._horizon(prediction_length, rollout)
        for index, item in enumerate(series):
            _check_future_covariates(index, item, horizon)
        options = {"tta_sign_flip": tta_sign_flip, "tta_diff": tta_diff, "pad_context": pad_context}

        def batches():
            for start in range(0, len(series), batch_size):
                chunk = series[start : start + batch_size]
                forecasts = self._predict_any_horizon(chunk, horizon, options, rollout)
                yield [f.numpy() for f in forecasts] if output_type == "numpy" else forecasts

        if yield_per_batch:
            return batches()
        return list(itertools.chain.from_iterable(batches()))

    def forecast_df(
        self,
        df,
        prediction_length: int,
        *,
        id_column: str | None = "item_id",
        timestamp_column: str | None = "timestamp",
        target=None,
        past_covariates=None,
        future_covariates=None,
        future_df=None,
        batch_size: int = 512,
        tta_sign_flip: bool | None = None,
        tta_diff: bool | None = None,
        pad_context: bool = True,
        rollout: Literal["cut", "median", "paths"] = "cut",
    ):
        """Forecast every item of a long pandas DataFrame (``rexforge.forecast.tirex2_frames``).

        id_column / timestamp_column: None forecasts the whole frame as one series / counts
            steps instead of timestamps.
        target: column name(s); the targets of an item are forecast jointly. Default: every
            numeric column that is not the id, timestamp or a covariate.
        past_covariates: columns known up to now. future_covariates: columns known ahead, with
            their values over the forecast steps in ``future_df`` (same id and timestamp
            columns); default: the columns ``future_df`` shares with ``df``.
        rollout: horizons past ``future_len``, see ``forecast``.
        Returns a DataFrame: id_column, timestamp_column, ``target`` (only with several
        targets), ``mean`` (the median) and one column per quantile level.
        """
        from rexforge.forecast import tirex2_frames as frames

        columns = frames.resolve_columns(
            df, future_df, id_column, timestamp_column, target, past_covariates, future_covariates
        )
        frames.check_output_names(columns, self.quantiles)
        horizon = self._horizon(prediction_length, rollout)
        items = frames.frame_items(df, future_df, columns, horizon)
        forecasts = self.forecast(
            [item.series for item in items],
            horizon,
            output_type="numpy",
            batch_size=batch_size,
            tta_sign_flip=tta_sign_flip,
            tta_diff=tta_diff,
            pad_context=pad_context,
            rollout=rollout,
        )
        return frames.forecast_frame(items, forecasts, columns, self.quantiles)

    def predict_quantiles(
        self, context, prediction_length: int, **options
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TiRex-style: ``(quantiles [B, H, Q], mean [B, H])`` for the B target variates of
        ``context`` (all series' targets in order); the mean is the median forecast, as
        TiRex's is. ``options`` go to ``forecast``."""
        forecasts = self.forecast(context, prediction_length, **options)
        quantiles = torch.cat(forecasts).transpose(1, 2)  # [B, Q, H] -> [B, H, Q]
        return quantiles, quantiles[..., self.config.num_quantiles // 2].clone()

    @torch.no_grad()
    def predict(
        self,
        timeseries: list[TimeseriesType],
        prediction_length: int,
        *,
        tta_sign_flip: bool | None = None,
        tta_diff: bool | None = None,
        pad_context: bool = True,
    ) -> list[torch.Tensor]:
        """One batch: checked ``TimeseriesType`` items -> one [V_t, Q, H] tensor each (the
        reference network's ``predict``, as ``forecast`` calls it per batch)."""
        sign_flip = self.config.tta_sign_flip if tta_sign_flip is None else tta_sign_flip
        differencing = self.config.tta_diff if tta_diff is None else tta_diff
        horizon = self._horizon(prediction_length)
        for index, item in enumerate(timeseries):
            _check_future_covariates(index, item, horizon)
        forecasts = self._predict_once(timeseries, horizon, differencing, pad_context)
        if not sign_flip:
            return forecasts
        order = complement_order(self.quantiles)
        if order is None:
            raise ConfigError(
                f"tta_sign_flip needs quantile levels symmetric around 0.5, got {self.quantiles}"
            )
        negated = [_negated(item) for item in timeseries]
        mirrored = self._predict_once(negated, horizon, differencing, pad_context)
        # The q-quantile of -x is minus the (1 - q)-quantile of x.
        return [(a - b[:, order]) / 2 for a, b in zip(forecasts, mirrored)]

    # -- internals -------------------------------------------------------------------------
    def _horizon(self, prediction_length, rollout: str = "cut") -> int:
        """The horizon to forecast: ``prediction_length``, cut to ``future_len`` unless rolled
        out past it."""
        if rollout not in ROLLOUTS:
            raise InputError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}")
        horizon = check_prediction_length(prediction_length)
        if rollout == "paths":
            check_paths_levels(self.quantiles)
        if rollout != "cut":
            return horizon
        if horizon > self.config.future_len:
            logger.warning(
                "prediction_length=%d exceeds the model's horizon %d; forecasting %d steps",
                horizon,
                self.config.future_len,
                self.config.future_len,
            )
        return min(horizon, self.config.future_len)

    def _predict_any_horizon(
        self, series, horizon: int, options: dict, rollout: str
    ) -> list[torch.Tensor]:
        """``predict``, rolled out over several windows when ``horizon`` passes the cap."""
        cap = self.config.future_len
        if horizon <= cap:
            return self.predict(series, horizon, **options)

        def predict(items, steps):
            return self.predict(items, steps, **options)

        if rollout == "paths":
            return paths_rollout(predict, series, horizon, cap, self.quantiles)
        median = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))
        return median_rollout(predict, series, horizon, cap, median)

    def _predict_once(
        self, series: list[TimeseriesType], horizon: int, differencing: bool, pad_context: bool
    ) -> list[torch.Tensor]:
        """One pass of the network over ``series`` -> one [V_t, Q, H] forecast each."""
        c = self.config
        flags = [
            trending_rows(s.target) if differencing else [False] * len(s.target) for s in series
        ]
        groups = [self._group_rows(s, horizon, f) for s, f in zip(series, flags)]
        length = c.context_len + c.future_len if pad_context else max(g.shape[-1] for g in groups)
        length = min(length, c.context_len + c.future_len)  # longer contexts are cut
        x = torch.cat([_fit_length(g, length) for g in groups])  # [BV, length]
        group_ids = torch.cat([torch.full((len(g),), i) for i, g in enumerate(groups)])
        target_mask = torch.cat(
            [torch.arange(len(g)) < len(s.target) for s, g in zip(series, groups)]
        )
        out = self.model(x.to(self.device), group_ids.to(self.device), target_mask.to(self.device))
        # Position n forecasts patch n + 1: the last position reaches past the input, the
        # future_len steps before it are the forecast window.
        window = out[..., : -c.output_patch_size][..., -c.future_len :][..., :horizon].cpu()
        results, start = [], 0
        for item, flagged, group in zip(series, flags, groups):
            targets = window[start : start + len(item.target)]  # [V_t, Q, H]
            start += len(group)
            results.append(target_forecasts(targets, flagged, last_observed(item.target)))
        return results

    def _group_rows(self, item: TimeseriesType, horizon: int, flagged: list[bool]) -> torch.Tensor:
        """One series' variates laid out over [context | future_len]: [V, T + future_len].

        Rows: targets (trending ones differenced), past covariates, known-future covariates.
        The future is NaN except the known-future covariates' first ``horizon`` steps."""
        future_len = self.config.future_len
        steps = item.target.shape[-1]
        pasts = [difference_rows(item.target, flagged)]
        if item.past_covariates is not None:
            pasts.append(item.past_covariates)
        rows = [F.pad(torch.cat(pasts), (0, future_len), value=torch.nan)]
        if item.future_covariates is not None:
            known = item.future_covariates[:, : steps + horizon]
            rows.append(F.pad(known, (0, future_len - horizon), value=torch.nan))
        return torch.cat(rows)


def _fit_length(rows: torch.Tensor, length: int) -> torch.Tensor:
    """rows [V, T'] -> [V, length]: the last ``length`` steps, left-padded with NaN."""
    if rows.shape[-1] >= length:
        return rows[:, -length:]
    return F.pad(rows, (length - rows.shape[-1], 0), value=torch.nan)


def _negated(item: TimeseriesType) -> TimeseriesType:
    """The series with its target and every covariate negated (for the sign flip)."""

    def flip(rows):
        return None if rows is None else -rows

    return TimeseriesType(-item.target, flip(item.past_covariates), flip(item.future_covariates))


def _check_future_covariates(index: int, item: TimeseriesType, horizon: int) -> None:
    if item.future_covariates is None:
        return
    needed = item.target.shape[-1] + horizon
    if item.future_covariates.shape[-1] < needed:
        raise InputError(
            f"future_covariates of series {index} have {item.future_covariates.shape[-1]} "
            f"steps; they need the target's {item.target.shape[-1]} plus the horizon {horizon}"
        )
