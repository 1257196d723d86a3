"""The in-memory form every part of rexforge exchanges: a list of ``TimeSeries``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class TimeSeries:
    """One univariate series.

    ``target`` is a 1-D float array in time order; NaN marks a missing observation.
    ``timestamps`` (same length) is a ``pd.DatetimeIndex`` or an integer ``pd.Index`` of steps,
    or None when unknown; ``freq`` is a pandas frequency string (``"h"``, ``"D"``, ``"MS"``, ...)
    when it could be inferred, else None.
    """

    item_id: str
    target: np.ndarray
    timestamps: pd.Index | None = None
    freq: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_id = str(self.item_id)
        self.target = np.asarray(self.target, dtype=np.float64).reshape(-1)
        if self.timestamps is not None and len(self.timestamps) != len(self.target):
            raise ValueError(
                f"series {self.item_id}: {len(self.timestamps)} timestamps for "
                f"{len(self.target)} values"
            )

    def __len__(self) -> int:
        return len(self.target)

    def slice(self, start: int | None = None, stop: int | None = None) -> TimeSeries:
        """Positional slice ``[start:stop]`` keeping item_id, freq and meta."""
        ts = None if self.timestamps is None else self.timestamps[start:stop]
        return TimeSeries(self.item_id, self.target[start:stop], ts, self.freq, dict(self.meta))
