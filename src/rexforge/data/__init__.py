"""Data layer: load tables and sequence files into ``TimeSeries``, split, window, synthesise.

Loading and transforms need only numpy/pandas (pyarrow for Parquet/Arrow); the training
streams (``WindowDataset``, synthetic datasets) import torch and are loaded on first use.
"""

from rexforge.data.problems import LoadReport, SeriesProblem
from rexforge.data.records import iter_arrow_dataset, load_arrow_dataset, load_gluonts
from rexforge.data.series import TimeSeries
from rexforge.data.sources import load_series, load_series_report, read_table, series_to_frame
from rexforge.data.transforms import (
    filter_min_length,
    holdout,
    interpolate_gaps,
    left_pad,
    train_val_split,
)

# name -> module, imported lazily because these pull in torch.
_LAZY = {
    "WindowSampler": "rexforge.data.sampler",
    "WindowDataset": "rexforge.data.sampler",
    "ResumableStream": "rexforge.data.streams",
    "kernel_synth": "rexforge.data.synthetic",
    "tsmixup": "rexforge.data.synthetic",
    "iter_kernel_synth": "rexforge.data.synthetic",
    "iter_tsmixup": "rexforge.data.synthetic",
    "seasonal_trend": "rexforge.data.synthetic",
    "iter_seasonal_trend": "rexforge.data.synthetic",
    "persistent_trend": "rexforge.data.synthetic",
    "iter_persistent_trend": "rexforge.data.synthetic",
    "trend_cycle": "rexforge.data.synthetic",
    "iter_trend_cycle": "rexforge.data.synthetic",
    "stable_season": "rexforge.data.synthetic",
    "iter_stable_season": "rexforge.data.synthetic",
    "kernel_synth_dataset": "rexforge.data.synthetic",
    "tsmixup_dataset": "rexforge.data.synthetic",
}

__all__ = [
    "TimeSeries",
    "LoadReport",
    "SeriesProblem",
    "read_table",
    "load_series",
    "load_series_report",
    "series_to_frame",
    "load_arrow_dataset",
    "iter_arrow_dataset",
    "load_gluonts",
    "interpolate_gaps",
    "left_pad",
    "train_val_split",
    "holdout",
    "filter_min_length",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rexforge.data' has no attribute {name!r}")
