"""The public forecasting API: ``load_model`` and ``TiRexForecaster``.

``forecast`` mirrors the official ``tirex`` signature so existing code switches by changing
the import; ``predict_quantiles`` and ``predict_df`` follow Chronos' verbs.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from rexforge.config import TiRexConfig
from rexforge.errors import InputError
from rexforge.forecast.engine import PadStateCache, forecast_quantiles
from rexforge.forecast.inputs import iter_series, left_pad_batch
from rexforge.forecast.mixture import check_paths_levels
from rexforge.forecast.resample import DEFAULT_HORIZON as DEFAULT_RESAMPLED_HORIZON
from rexforge.forecast.resample import downsample_batch, upsample_forecasts
from rexforge.forecast.rollouts import ROLLOUTS, Rollout
from rexforge.io.checkpoint import Checkpoint, load_state_dict_strict, read_checkpoint
from rexforge.model.tirex import TiRexModel, count_parameters
from rexforge.registry import family_of

logger = logging.getLogger(__name__)

RESAMPLE_STRATEGIES = (None, "frequency")

# Horizons longer than this are almost surely a mistake (and would run for hours).
MAX_PREDICTION_LENGTH = 100_000


def check_prediction_length(prediction_length, name: str = "prediction_length") -> int:
    """``prediction_length`` as an int in ``1 .. MAX_PREDICTION_LENGTH``, or an ``InputError``."""
    if isinstance(prediction_length, bool) or not isinstance(prediction_length, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {prediction_length!r}")
    if prediction_length <= 0:
        raise InputError(f"{name} must be > 0, got {prediction_length}")
    if prediction_length > MAX_PREDICTION_LENGTH:
        raise InputError(
            f"{name} {prediction_length} is larger than the supported maximum {MAX_PREDICTION_LENGTH}"
        )
    return int(prediction_length)


class TiRexForecaster:
    """A TiRex network plus everything needed to forecast with it.

    Results are float32 on the CPU: ``quantiles`` [B, H, Q] for the model's quantile levels
    (0.1 ... 0.9 for official models) and ``mean`` [B, H] (the 0.5 quantile, as officially).
    """

    def __init__(self, model: TiRexModel, metadata: dict | None = None, source: str = ""):
        self.model = model.eval()
        self.metadata = dict(metadata or {})
        self.source = source
        self._pad_cache = PadStateCache()
        # Set on the model that ``fit`` returns: its run folder and the guard's report.
        self.run_dir: Path | None = None
        self.fit_report = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, ckpt: Checkpoint, device: str = "cpu", kernel: str = "auto", numerics: str = "bf16"
    ) -> TiRexForecaster:
        model = TiRexModel(ckpt.config, kernel=kernel, numerics=numerics)
        load_state_dict_strict(model, ckpt.state_dict, ckpt.source or "checkpoint")
        return cls(model.to(device), ckpt.metadata, ckpt.source)

    @property
    def config(self) -> TiRexConfig:
        return self.model.config

    @property
    def quantiles(self) -> list[float]:
        return list(self.config.quantiles)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def default_rollout(self) -> str:
        """The rollout ``forecast`` uses when none is given: the checkpoint's
        ``default_rollout`` metadata, else ``"exact"`` (the official behaviour). A model
        trained on one-patch futures only, such as the bundled starter, never saw the masked
        patches the exact rollout feeds it, and forecasts later patches better from its own
        forecasts fed back (benchmarks/long_horizon.py); official checkpoints keep the official
        rollout."""
        rollout = self.metadata.get("default_rollout", "exact")
        return rollout if rollout in ROLLOUTS else "exact"

    @property
    def rollouts(self) -> tuple[str, ...]:
        """The names ``forecast(..., rollout=)`` takes."""
        return ROLLOUTS

    def fit(self, train_series, **options) -> TiRexForecaster:
        """Fine-tune a copy of this model on ``train_series``; see ``rexforge.fit``. Returns the
        new model; this one is left as it is."""
        return fit(self, train_series, **options)

    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def to_checkpoint(self) -> Checkpoint:
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return Checkpoint(self.config, state, dict(self.metadata), self.source)

    def save(self, path: str | Path) -> Path:
        """Save as an official ``.ckpt`` (path ends in .ckpt) or a rexforge folder."""
        from rexforge.io.checkpoint import save_checkpoint

        return save_checkpoint(path, self.to_checkpoint())

    # -- forecasting -----------------------------------------------------------------------
    def forecast(
        self,
        context,
        prediction_length: int | None = None,
        batch_size: int = 512,
        output_type: Literal["torch", "numpy", "gluonts"] = "torch",
        yield_per_batch: bool = False,
        max_accelerated_rollout_steps: int = 1,
        output_device: str = "cpu",
        resample_strategy: str | None = None,
        rollout: Rollout | None = None,
    ):
        """Quantile forecasts for each series of ``context``.

        context: 1-D or 2-D tensor/array (rows are series) or a list of 1-D series of any
            lengths; NaN marks missing values anywhere.
        prediction_length: steps to forecast (default one patch, 32).
        resample_strategy: ``"frequency"`` averages series with a long dominant period down
            so one period spans ~64 steps, forecasts them coarsely and interpolates back, as
            the official forecaster does (``rexforge.forecast.resample``; only horizons >= 100
            and series >= 2000 steps are resampled; without ``prediction_length`` the horizon
            is then 100, as officially).
        rollout: how horizons over one patch are computed (see
            ``rexforge.forecast.engine.forecast_quantiles``): ``"exact"`` reruns the model for
            every further patch as the official code does; ``"stateful"`` carries the recurrent
            state forward, O(context + horizon); ``"median"`` feeds each patch's median back
            (later bands too narrow); ``"paths"`` feeds back one quantile curve per path along
            Q paths and mixes them (Q times the cost of ``"median"``). None: the model's
            ``default_rollout``.
        Returns ``(quantiles [B, H, Q], mean [B, H])`` as torch tensors or numpy arrays, or
        with ``output_type="gluonts"`` a list of GluonTS ``QuantileForecast``; with
        ``yield_per_batch`` an iterator of such results, one per batch.
        """
        rollout = self.default_rollout if rollout is None else rollout
        if resample_strategy not in RESAMPLE_STRATEGIES:
            raise InputError(
                f"resample_strategy must be None or 'frequency', got {resample_strategy!r}"
            )
        if resample_strategy == "frequency" and prediction_length is None:
            prediction_length = DEFAULT_RESAMPLED_HORIZON  # the official default here
        if output_type == "gluonts":
            from rexforge.forecast.gluon import forecast_as_gluonts
            from rexforge.forecast.inputs import iter_series

            series = list(iter_series(context))
            # Plain arrays carry no time axis: every forecast starts at the official default
            # start (2000-01-01, hourly), as tirex-ts dates them; forecast_gluon dates properly.
            metas = [{} for _ in series]
            return forecast_as_gluonts(
                self,
                series,
                metas,
                yield_per_batch,
                batch_size,
                prediction_length=prediction_length,
                max_accelerated_rollout_steps=max_accelerated_rollout_steps,
                resample_strategy=resample_strategy,
                rollout=rollout,
            )
        if output_type not in ("torch", "numpy"):
            raise InputError(
                f"output_type must be 'torch', 'numpy' or 'gluonts', got {output_type!r}"
            )
        horizon = self._check_horizon(prediction_length)
        self._check_options(batch_size, max_accelerated_rollout_steps, rollout)
        batches = self._iter_batches(
            context, horizon, batch_size, max_accelerated_rollout_steps, rollout, resample_strategy
        )

        def convert(q: torch.Tensor, m: torch.Tensor):
            q, m = q.to(output_device), m.to(output_device)
            return (q.numpy(), m.numpy()) if output_type == "numpy" else (q, m)

        if yield_per_batch:
            return (convert(q, m) for q, m in batches)
        pairs = list(batches)
        return convert(torch.cat([q for q, _ in pairs]), torch.cat([m for _, m in pairs]))

    def _check_options(self, batch_size, max_accelerated_rollout_steps, rollout) -> None:
        """One ``InputError`` for the first of ``forecast``'s options that cannot be used."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_accelerated_rollout_steps < 1:
            raise InputError("max_accelerated_rollout_steps must be >= 1")
        if rollout not in ROLLOUTS:
            raise InputError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}")
        if rollout == "paths":
            check_paths_levels(self.quantiles)

    def forecast_gluon(
        self,
        gluon_dataset,
        output_type: Literal["torch", "numpy", "gluonts"] = "torch",
        batch_size: int = 512,
        yield_per_batch: bool = False,
        data_kwargs: dict | None = None,
        **predict_kwargs,
    ):
        """Forecast every entry (``{"target": ..., "start": ..., "item_id": ...}``) of a
        GluonTS dataset; ``data_kwargs`` may name the ``target_field``. Forecasts as gluonts
        objects start after each entry's last step."""
        from rexforge.forecast.gluon import dataset_entries, forecast_as_gluonts

        targets, metas = dataset_entries(gluon_dataset, **(data_kwargs or {}))
        if output_type == "gluonts":
            return forecast_as_gluonts(
                self, targets, metas, yield_per_batch, batch_size, **predict_kwargs
            )
        return self.forecast(
            targets,
            output_type=output_type,
            batch_size=batch_size,
            yield_per_batch=yield_per_batch,
            **predict_kwargs,
        )

    def predict_quantiles(
        self,
        context,
        prediction_length: int | None = None,
        quantile_levels: Sequence[float] | None = None,
        batch_size: int = 512,
        rollout: Rollout | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Chronos-style: ``(quantiles [B, H, len(levels)], mean [B, H])`` as torch tensors.

        ``quantile_levels`` may be any levels within the trained range (0.1 ... 0.9 for
        official models): a level between two trained ones is interpolated linearly between
        their forecasts (0.25 is the midpoint of the 0.2 and 0.3 forecasts), so increasing
        trained quantiles give increasing interpolated ones. Levels outside the trained
        range are not extrapolated: they raise an ``InputError``. ``rollout``: as in
        ``forecast`` (None: the model's default).
        """
        quantiles, mean = self.forecast(
            context, prediction_length, batch_size=batch_size, rollout=rollout
        )
        if quantile_levels is None:
            return quantiles, mean
        return interpolate_quantiles(quantiles, self.quantiles, quantile_levels), mean

    def forecast_df(self, df, prediction_length: int, **kwargs):
        """Forecast a long DataFrame; see ``rexforge.forecast.frames.forecast_df``."""
        from rexforge.forecast.frames import forecast_df

        return forecast_df(self, df, prediction_length, **kwargs)

    predict_df = forecast_df

    # -- internals -------------------------------------------------------------------------
    def _check_horizon(self, prediction_length) -> int:
        if prediction_length is None:
            return self.config.output_patch_size
        return check_prediction_length(prediction_length)

    def _iter_batches(
        self,
        context,
        horizon: int,
        batch_size: int,
        patches_per_step: int,
        rollout: str,
        resample_strategy: str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One ``(quantiles, mean)`` pair per ``batch_size`` series of ``context``.

        A batch that runs out of memory is split in halves and retried, down to single
        series; later batches then run in pieces of the size that worked.
        """
        series = iter_series(context)
        median = self.config.median_index
        limit = batch_size  # the largest piece that is known (or hoped) to fit in memory
        while chunk := list(itertools.islice(series, batch_size)):
            factors, chunk_horizon = None, horizon
            if resample_strategy == "frequency":
                chunk, factors, chunk_horizon = downsample_batch(chunk, horizon)
                logger.debug("mean resampling factor of the batch: %g", np.mean(factors))
            parts, start = [], 0
            while start < len(chunk):
                piece = chunk[start : start + limit]
                try:
                    batch = left_pad_batch(piece).to(self.device)
                    parts.append(
                        forecast_quantiles(
                            self.model,
                            batch,
                            chunk_horizon,
                            self._pad_cache,
                            patches_per_step,
                            rollout,
                        ).cpu()
                    )
                except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
                    if not _is_out_of_memory(exc):
                        raise
                    batch = None  # free it before retrying
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    if len(piece) == 1:
                        raise InputError(
                            f"out of memory on {self.device} even for a batch of 1 series "
                            f"(batch_size {batch_size} was split down to 1; series length "
                            f"{len(piece[0])}, horizon {horizon}): use a shorter context or "
                            "horizon, or a device with more memory"
                        ) from None
                    limit = len(piece) // 2
                    logger.warning(
                        "out of memory on a batch of %d series; retrying in batches of %d",
                        len(piece),
                        limit,
                    )
                    continue
                start += len(piece)
            quantiles = parts[0] if len(parts) == 1 else torch.cat(parts)
            if factors is not None:
                quantiles = upsample_forecasts(quantiles, factors, horizon)
            yield quantiles, quantiles[..., median].clone()


def interpolate_quantiles(
    quantiles: torch.Tensor, trained: Sequence[float], levels: Sequence[float]
) -> torch.Tensor:
    """[..., len(trained)] forecasts at increasing ``trained`` levels -> [..., len(levels)],
    linear in the level between the two trained levels around each requested one."""
    levels = [float(q) for q in levels]
    outside = [q for q in levels if not (trained[0] <= q <= trained[-1])]
    if outside:
        raise InputError(
            f"quantile level(s) {outside} are outside the trained range "
            f"[{trained[0]:g}, {trained[-1]:g}]; rexforge interpolates, it does not extrapolate"
        )
    columns = []
    for q in levels:
        upper = min(int(np.searchsorted(trained, q)), len(trained) - 1)
        if np.isclose(trained[upper], q, rtol=0, atol=1e-9):
            columns.append(quantiles[..., upper])  # a trained level: its forecast unchanged
            continue
        lower = upper - 1
        weight = (q - trained[lower]) / (trained[upper] - trained[lower])
        columns.append(
            quantiles[..., lower] + weight * (quantiles[..., upper] - quantiles[..., lower])
        )
    return torch.stack(columns, dim=-1)


# What torch's allocators say when memory runs out (CPU, CUDA, MPS).
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "failed to allocate")


def _is_out_of_memory(exc: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return any(message in text for message in _OOM_MESSAGES)


def fit(
    model,
    train_series,
    *,
    prediction_length: int = 64,
    mode: str = "full",
    output_dir: str | Path | None = None,
    **options,
) -> TiRexForecaster:
    """Fine-tune ``model`` on ``train_series`` and return the result as a new forecaster, as
    Chronos' ``fit`` does: the given model (a loaded forecaster, a checkpoint path, a hub id or
    ``"starter"``) is never changed.

    train_series: 1-D arrays (NaN = missing) or ``TimeSeries``. mode: full, freeze, lora (or
    scratch with a preset name). Every other option is a ``TrainConfig`` field or an argument
    of ``rexforge.train.fit``; left out, the fine-tuning options are chosen from the data and
    the zero-shot guard runs (``rexforge.train.auto``, ``rexforge.train.guard``).
    output_dir: the run folder (checkpoints, ``final/``, ``finetune_report.md``); default
    ``rexforge-finetuned/<UTC time>`` under the working folder.
    The returned forecaster carries ``fit_report`` (the guard's ``FinetuneReport``, or None)
    and ``run_dir``.
    """
    from datetime import datetime, timezone

    from rexforge.train.loop import fit as train

    if output_dir is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        output_dir = Path("rexforge-finetuned") / stamp
    result = train(
        model,
        train_series,
        output_dir=output_dir,
        mode=mode,
        prediction_length=prediction_length,
        **options,
    )
    trained = result.forecaster
    trained.fit_report, trained.run_dir = result.report, result.run_dir
    return trained


def load_model(
    path: str | Path,
    device: str = "cpu",
    kernel: str = "auto",
    numerics: Literal["official", "bf16", "fp32", "fast"] = "bf16",
) -> TiRexForecaster:
    """Load a model for forecasting, as the forecaster of its family (``rexforge.registry``;
    a TiRex checkpoint gives a ``TiRexForecaster``, a TiRex-2 folder in the official layout,
    ``config.json`` + ``model.safetensors``, a ``TiRex2Forecaster``).

    path: an official ``model.ckpt`` (torch file with ``hyper_parameters`` and ``state_dict``),
        a rexforge folder (``config.json`` + ``model.safetensors``), ``"starter"`` for the
        model bundled with rexforge, or a Hugging Face hub id (``"NX-AI/TiRex"``,
        ``"NX-AI/TiRex-2"``: fetched once into the hub cache, then read from it, also offline).
    numerics: ``"official"`` runs the official CPU operations themselves: tirex-ts' forecasts
        on any CPU, at its speed. ``"bf16"`` (default) emulates their bf16 rounding in fp32,
        many times faster: bit-exact where the CPU has native bf16 dot products (avx512_bf16),
        elsewhere ~1e-2 of a series' std away. ``"fp32"`` skips the rounding. ``"fast"``: the
        fastest path this CPU allows (fp32 recurrence; weight-only int8 or bf16 projections
        where they measure faster, ``rexforge.kernels.fast``), checked to keep WQL and MASE
        within 0.5% of the exact modes (benchmarks/numerics_accuracy.py).
    """
    ckpt = read_checkpoint(path)  # "starter" and hub ids resolve there
    # The checkpoint's family (by its config's type) picks the forecaster class, so another
    # registered family loads through this same entry point.
    forecaster_class = family_of(ckpt.config).forecaster_class
    return forecaster_class.from_checkpoint(ckpt, device=device, kernel=kernel, numerics=numerics)
