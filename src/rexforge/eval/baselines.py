"""Reference forecasters, registered by name like presets.

Every baseline has the forecaster interface the backtest uses (the same as rexforge models)::

    forecast(context: list[np.ndarray], prediction_length: int, output_type="numpy", batch_size=...)
        -> (quantiles [B, H, Q] float64, mean [B, H] float64)

with an attribute ``quantiles`` (the levels of the last axis, default 0.1..0.9).

- ``naive``: the last observed value.
- ``seasonal_naive``: the value one season earlier (``season`` given, default 1 = naive).
- ``auto_ets``, ``auto_theta``: statsforecast's AutoETS / AutoTheta (``pip install statsforecast``,
  the ``rexforge[baselines]`` extra); their prediction intervals fill the quantiles.

Point baselines (naive, seasonal naive) put their point forecast in every quantile column: a point
forecast is a degenerate distribution, and its WQL then equals its weighted absolute error. The
Chronos benchmark scores point baselines the same way.

Missing values (NaN) in a context are carried forward from the last observation before them;
leading NaNs are dropped. A context with no observation at all is forecast as NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from rexforge.errors import ConfigError, InputError

log = logging.getLogger(__name__)

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

_REGISTRY: dict[str, Callable[..., object]] = {}


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def register_baseline(name: str, factory: Callable[..., object] | None = None):
    """Register ``factory(**kwargs) -> forecaster`` under ``name``; usable as a decorator.

    Names are case-insensitive and ``-`` equals ``_`` (``seasonal-naive`` is ``seasonal_naive``).
    Registering a name twice replaces the first entry and logs a warning.
    """

    def decorator(f: Callable[..., object]) -> Callable[..., object]:
        key = _normalise(name)
        if key in _REGISTRY:
            log.warning("baseline %r registered twice; the later one wins", key)
        _REGISTRY[key] = f
        return f

    return decorator(factory) if factory is not None else decorator


def list_baselines() -> list[str]:
    """Registered baseline names, sorted."""
    return sorted(_REGISTRY)


def is_baseline(name: str) -> bool:
    """Whether ``name`` (any case, ``-`` or ``_``) is a registered baseline."""
    return _normalise(name) in _REGISTRY


def get_baseline(name: str, **kwargs):
    """Build the baseline registered as ``name``; keyword arguments go to its constructor.

    Keyword arguments that are None are dropped, so each baseline keeps its defaults.
    Raises ``InputError`` for an unknown name (listing the known ones).
    """
    key = _normalise(name)
    if key not in _REGISTRY:
        raise InputError(
            f"unknown baseline {name!r}; known baselines: {', '.join(list_baselines())}"
        )
    return _REGISTRY[key](**{k: v for k, v in kwargs.items() if v is not None})


def _check_levels(levels: Sequence[float]) -> list[float]:
    levels = [float(q) for q in levels]
    bad = [q for q in levels if not 0.0 < q < 1.0]
    if not levels or bad:
        raise ConfigError(f"quantile levels must be in (0, 1), got {levels}")
    return levels


def _fill_context(x: np.ndarray) -> np.ndarray:
    """Drop leading NaNs and carry the last observation forward over the others ([T] -> [T'])."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    observed = ~np.isnan(x)
    if not observed.any():
        return x[:0]
    x = x[np.argmax(observed) :]
    idx = np.where(~np.isnan(x), np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    return x[idx]


def _check_horizon(prediction_length: int) -> int:
    h = int(prediction_length)
    if h < 1:
        raise InputError(f"prediction_length must be >= 1, got {prediction_length}")
    return h


class _PointBaseline:
    """Shared ``forecast`` for baselines that produce one value per step."""

    name = "point"

    def __init__(self, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> None:
        self.quantiles = _check_levels(quantiles)

    def _point(self, x: np.ndarray, h: int) -> np.ndarray:  # [T'] (no NaN) -> [h]
        raise NotImplementedError

    def forecast(
        self,
        context: Sequence[np.ndarray],
        prediction_length: int,
        output_type: str = "numpy",
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forecast each context; returns (quantiles [B, H, Q], mean [B, H]), all columns equal."""
        h = _check_horizon(prediction_length)
        mean = np.full((len(context), h), np.nan)
        for i, x in enumerate(context):
            x = _fill_context(x)
            if len(x):
                mean[i] = self._point(x, h)
        quantiles = np.repeat(mean[:, :, None], len(self.quantiles), axis=2)
        return quantiles, mean

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NaiveForecaster(_PointBaseline):
    """Repeat the last observed value.

    ``season`` is accepted (and ignored) so every baseline can be built with the same arguments.
    """

    name = "naive"

    def __init__(self, season: int | None = None, quantiles: Sequence[float] = DEFAULT_QUANTILES):
        super().__init__(quantiles)

    def _point(self, x: np.ndarray, h: int) -> np.ndarray:
        return np.full(h, x[-1])


class SeasonalNaiveForecaster(_PointBaseline):
    """Repeat the last observed season: ``f[t + k] = y[t + k - season * ceil(k / season)]``.

    A context shorter than one season is forecast with its last value (naive).
    """

    name = "seasonal_naive"

    def __init__(self, season: int = 1, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> None:
        super().__init__(quantiles)
        if int(season) < 1:
            raise ConfigError(f"seasonal_naive: season must be >= 1, got {season}")
        self.season = int(season)

    def _point(self, x: np.ndarray, h: int) -> np.ndarray:
        if len(x) < self.season:
            return np.full(h, x[-1])
        last = x[-self.season :]
        return last[np.arange(h) % self.season]

    def __repr__(self) -> str:
        return f"SeasonalNaiveForecaster(season={self.season})"


_STATSFORECAST_MODELS = {
    "auto_ets": "AutoETS",
    "auto_theta": "AutoTheta",
    "auto_arima": "AutoARIMA",
}


def _as_level(percent: float) -> int | float:
    percent = round(percent, 6)
    return int(percent) if percent == int(percent) else percent


class StatsForecastBaseline:
    """A statsforecast model (``AutoETS``, ``AutoTheta``, ``AutoARIMA``) fitted per series.

    Quantiles come from the model's prediction intervals: level ``L`` gives the quantiles
    ``(1 - L/100) / 2`` and ``(1 + L/100) / 2`` (levels 20, 40, 60, 80 give 0.1..0.9), and the 0.5
    quantile is the point forecast. Quantiles are sorted per point so they never cross.
    A series the model can't fit (statsforecast raises, e.g. "tiny datasets") is forecast with
    seasonal naive instead, and the count is logged as a warning.
    """

    def __init__(
        self,
        model: str = "auto_ets",
        season: int = 1,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> None:
        key = _normalise(model)
        if key not in _STATSFORECAST_MODELS:
            raise ConfigError(
                f"unknown statsforecast model {model!r}; known: {', '.join(_STATSFORECAST_MODELS)}"
            )
        try:
            import statsforecast.models as sf_models
        except ImportError:
            raise ConfigError(
                f"baseline {key!r} needs statsforecast: pip install statsforecast "
                "(or pip install 'rexforge[baselines]')"
            ) from None
        self.name = key
        self.season = max(int(season), 1)
        self.quantiles = _check_levels(quantiles)
        self._model_class = getattr(sf_models, _STATSFORECAST_MODELS[key])
        # Interval level (percent) behind each quantile level; 0 marks the median. statsforecast
        # names its outputs after the level as given ("lo-80" for 80, "lo-80.0" for 80.0).
        self._interval = [_as_level(abs(1.0 - 2.0 * q) * 100) for q in self.quantiles]
        self._fallback = SeasonalNaiveForecaster(self.season, self.quantiles)

    def _fit_one(self, x: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Quantiles [h, Q] and mean [h] for one series, or None when statsforecast can't fit it."""
        levels = sorted({lv for lv in self._interval if lv > 0})
        model = self._model_class(season_length=self.season)
        try:
            out = model.forecast(y=x, h=h, level=levels or None)
        except Exception as exc:  # statsforecast raises many types for unfittable series
            log.debug("%s failed on a series of length %d: %s", self.name, len(x), exc)
            return None
        mean = np.asarray(out["mean"], dtype=np.float64)
        cols = []
        for q, lv in zip(self.quantiles, self._interval):
            if lv == 0:
                cols.append(mean)
            else:
                cols.append(np.asarray(out[f"{'lo' if q < 0.5 else 'hi'}-{lv}"], dtype=np.float64))
        return np.sort(np.stack(cols, axis=-1), axis=-1), mean

    def forecast(
        self,
        context: Sequence[np.ndarray],
        prediction_length: int,
        output_type: str = "numpy",
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit and forecast each context; returns (quantiles [B, H, Q], mean [B, H])."""
        h = _check_horizon(prediction_length)
        quantiles = np.full((len(context), h, len(self.quantiles)), np.nan)
        mean = np.full((len(context), h), np.nan)
        failed = 0
        for i, x in enumerate(context):
            x = _fill_context(x)
            if not len(x):
                continue
            fitted = self._fit_one(x, h)
            if fitted is None:
                failed += 1
                fitted = tuple(a[0] for a in self._fallback.forecast([x], h))
            quantiles[i], mean[i] = fitted
        if failed:
            log.warning(
                "%s could not fit %d of %d series; used seasonal naive for them",
                self.name,
                failed,
                len(context),
            )
        return quantiles, mean

    def __repr__(self) -> str:
        return f"StatsForecastBaseline({self.name!r}, season={self.season})"


register_baseline("naive", NaiveForecaster)
register_baseline("seasonal_naive", SeasonalNaiveForecaster)
register_baseline("auto_ets", lambda **kw: StatsForecastBaseline("auto_ets", **kw))
register_baseline("auto_theta", lambda **kw: StatsForecastBaseline("auto_theta", **kw))
register_baseline("auto_arima", lambda **kw: StatsForecastBaseline("auto_arima", **kw))
