"""The names of TiRex's rollouts (how horizons past one patch are forecast), in one place and
without importing torch, so that the command line can offer them as choices at start-up.
``rexforge.forecast.engine.forecast_quantiles`` says what each one does."""

from __future__ import annotations

from typing import Literal, get_args

Rollout = Literal["exact", "stateful", "median", "paths"]
ROLLOUTS: tuple[str, ...] = get_args(Rollout)
