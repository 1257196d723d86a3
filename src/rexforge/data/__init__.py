"""Data layer: load tables and sequence files into ``TimeSeries``, split, window, synthesise.

Loading and transforms need only numpy/pandas (pyarrow for Parquet/Arrow); the training
streams (``WindowDataset``, synthetic datasets) import torch. ``DataMix`` and
``build_training_series`` (``data.mix``) assemble a training set from files and synthetic
families.
"""

# name -> module. Every name is imported on first use: loading pulls in pandas, the training
# streams torch, and the command-line parser reads the synthetic families of ``data.mix``
# without wanting either (``rexforge --help`` stays fast).
_LAZY = {
    "TimeSeries": "rexforge.data.series",
    "LoadReport": "rexforge.data.problems",
    "SeriesProblem": "rexforge.data.problems",
    "read_table": "rexforge.data.sources",
    "load_series": "rexforge.data.sources",
    "load_series_report": "rexforge.data.sources",
    "series_to_frame": "rexforge.data.sources",
    "load_arrow_dataset": "rexforge.data.records",
    "iter_arrow_dataset": "rexforge.data.records",
    "load_gluonts": "rexforge.data.records",
    "interpolate_gaps": "rexforge.data.transforms",
    "left_pad": "rexforge.data.transforms",
    "train_val_split": "rexforge.data.transforms",
    "holdout": "rexforge.data.transforms",
    "filter_min_length": "rexforge.data.transforms",
    "DataMix": "rexforge.data.mix",
    "build_training_series": "rexforge.data.mix",
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

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rexforge.data' has no attribute {name!r}")
