"""Forecasting many series on a cluster: Ray Data (``ray_data``) and Spark (``spark``).

Both forecast a long table (one row per series and step) grouped into *forecast batches*:
the series are numbered in sorted order of their ids and batch ``k`` holds series
``k * batch_size ... (k + 1) * batch_size - 1`` (``batching.batch_keys``). That is how
``forecast_df`` itself splits a table whose items appear in sorted order, so each forward pass
sees the same series beside the same neighbours as in one process, and the forecasts are the
same numbers (a forward pass's rounding depends on its batch; see ``batching``). Nothing here
imports Ray or Spark at package import.
"""
