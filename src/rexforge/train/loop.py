"""``fit`` (``from rexforge.train import fit``): the one training loop of every mode, command
and model family (TiRex, TiRex-2: what differs between them are the family's training hooks,
``train.family``).

    fit(base, series, mode=...) ->
        runs/<name>/config.yaml         resolved options (model, train, data, trainer)
        runs/<name>/metrics.csv         CSVLogger (plus tb/ when tensorboard is installed)
        runs/<name>/checkpoints/        Lightning .ckpt: step-*, last.ckpt, best.ckpt
        runs/<name>/final/              the family's export: TiRex a rexforge folder
                                        (config.json + model.safetensors + NOTICE) and the
                                        official model.ckpt; TiRex-2 the official folder
                                        (config.json + model.safetensors, rexforge's
                                        metadata in the weights' header [+ NOTICE]);
                                        adapter.safetensors for LoRA

The base model is never modified: training works on a fresh network loaded from the base
weights, and the result is a new forecaster loaded from ``final/`` (Chronos' ``fit``).

Every file is written atomically (``.ckpt`` through ``AtomicCheckpointIO``), so a run killed
at any point resumes (``resume="auto"``) from its last complete checkpoint, and with the same
seed ends with the same weights, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from rexforge.data.series import TimeSeries
from rexforge.errors import CheckpointError, ConfigError, InputError, TrainingInterrupted
from rexforge.io.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from rexforge.io.checkpoint import (
    Checkpoint,
    read_checkpoint,
    state_dict_digest,
)
from rexforge.io.hub import resolve_model_source
from rexforge.train.family import training_family
from rexforge.train.guard import (
    METRICS,
    FinetuneReport,
    keep_fine_tuned,
    wql_ratio_bound,
    write_report,
)
from rexforge.train.settings import TrainConfig, round_up

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    run_dir: Path
    final_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    forecaster: Any = None  # the family's forecaster, loaded from final_dir
    report: Any = None  # train.guard.FinetuneReport of a guarded fine-tune, else None

    @property
    def model(self):
        return self.forecaster.model


# -- inputs ----------------------------------------------------------------------------------
def resolve_base(model: Any, mode: str) -> tuple[Any, dict | None, dict[str, Any]]:
    """``model`` (checkpoint path or folder, ``"starter"``, preset name, a config of any
    registered family, or a forecaster) -> (config, base state dict or None, provenance)."""
    from rexforge.registry import list_models, resolve_config

    if _is_config(model) or (
        isinstance(model, str) and model in list_models() and not Path(model).exists()
    ):
        config = model if _is_config(model) else resolve_config(model)[1]
        if mode != "scratch":
            raise ConfigError(f"mode {mode!r} needs base weights (a checkpoint), got only a config")
        return config, None, {"base_checkpoint": None, "derived_from_nxai_weights": False}
    if _is_forecaster(model):
        state = {k: v.detach().cpu() for k, v in model.model.state_dict().items()}
        ckpt = Checkpoint(model.config, state, dict(model.metadata), model.source)
        sha = state_dict_digest(ckpt.state_dict)
    else:
        path = resolve_model_source(model)  # "starter" or a hub id -> its local path
        ckpt = read_checkpoint(path)
        sha = _file_sha(path)
    derived = bool(ckpt.metadata.get("derived_from_nxai_weights", False)) and mode != "scratch"
    meta = {
        "base_checkpoint": ckpt.source or "<in-memory model>",
        "base_sha256": sha,
        "derived_from_nxai_weights": derived,
    }
    if mode != "scratch" and "default_rollout" in ckpt.metadata:
        # A fine-tune (or the base the guard keeps) forecasts as its base does by default.
        meta["default_rollout"] = ckpt.metadata["default_rollout"]
    return ckpt.config, (None if mode == "scratch" else ckpt.state_dict), meta


def _is_config(model: Any) -> bool:
    from rexforge.registry import family_of

    if isinstance(model, str | Path | dict) or _is_forecaster(model):
        return False
    try:
        family_of(model)
    except ConfigError:
        return False
    return True


def _is_forecaster(model: Any) -> bool:
    """A loaded forecaster of any family (a network, its config and its metadata)."""
    return all(hasattr(model, name) for name in ("model", "config", "metadata", "source"))


def _file_sha(path: Path) -> str:
    if path.is_dir():
        for name in ("model.safetensors", "model.ckpt"):
            if (path / name).is_file():
                return sha256_file(path / name)
    return sha256_file(path)


def as_arrays(series: Sequence) -> tuple[list[np.ndarray], list[str]]:
    """TimeSeries or 1-D arrays -> (float64 arrays, names); non-finite values are refused."""
    if len(series) == 0:
        raise InputError("no training series given")
    from rexforge.data.multivariate import VariateSeries

    arrays, names, bad = [], [], []
    for i, s in enumerate(series):
        if isinstance(s, VariateSeries):
            if s.rows().shape[0] > 1:
                raise InputError(
                    f"series {s.item_id} has covariates or several targets, which a TiRex "
                    "model cannot take: train a TiRex-2 model on it"
                )
            s = TimeSeries(s.item_id, s.target[0])
        name = s.item_id if isinstance(s, TimeSeries) else f"#{i}"
        x = np.asarray(s.target if isinstance(s, TimeSeries) else s, dtype=np.float64).reshape(-1)
        if np.isinf(x).any():
            bad.append(name)
        arrays.append(x)
        names.append(name)
    if bad:
        raise InputError(f"series {', '.join(bad[:10])} contain infinite values")
    return arrays, names


def check_lengths(
    arrays,
    names,
    horizon: int,
    train_future: int,
    validation: bool,
    skip_short: bool = False,
    partial_future: bool = False,
) -> tuple[list, list]:
    """Every series must leave at least one step of history and a whole training window (with
    ``partial_future``: one future step) after the validation hold-out. Name every series that
    does not, or with ``skip_short`` drop them (logged; a pretraining corpus mixes lengths) as
    long as some series remain."""
    from rexforge.train.auto import shortest_trainable

    need = shortest_trainable(horizon, train_future, validation, partial_future)
    short = [i for i, x in enumerate(arrays) if len(x) < need]
    if short and (not skip_short or len(short) == len(arrays)):
        listed = [f"'{names[i]}' ({len(arrays[i])})" for i in short[:10]]
        more = f" and {len(short) - 10} more" if len(short) > 10 else ""
        raise InputError(
            f"series too short for prediction_length={horizon}"
            f"{' plus a validation hold-out' if validation else ''} (need >= {need} steps): "
            f"{', '.join(listed)}{more}; --partial-future trains short series, --skip-short "
            "leaves them out"
        )
    if short:
        logger.warning("skipping %d series shorter than %d steps", len(short), need)
        keep = sorted(set(range(len(arrays))) - set(short))
        arrays, names = [arrays[i] for i in keep], [names[i] for i in keep]
    return arrays, names


# -- the loop ------------------------------------------------------------------------------
def _interrupted(step: int, saved: Path) -> TrainingInterrupted:
    return TrainingInterrupted(
        f"training interrupted at step {step}; saved {saved}; run the same command again to resume"
    )


def fit(
    model: Any,
    train_series: Sequence,
    *,
    output_dir: str | Path,
    mode: str = "full",
    validation: bool = True,
    resume: str | Path | None = "auto",
    accelerator: str = "cpu",
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str | None = None,
    keep_checkpoints: int = 3,
    data_description: str = "",
    progress_bar: bool | None = None,
    skip_short: bool = False,
    command_record: dict | None = None,
    on_start: Callable[[TrainConfig], None] | None = None,
    auto: bool = True,
    **options: Any,
) -> FitResult:
    """Train ``model`` on ``train_series`` and export the result; see the module docstring.

    model: checkpoint path or folder / ``"starter"`` / preset name or config of any family
        (scratch) / a forecaster. train_series: ``TimeSeries`` or 1-D arrays (NaN = missing);
        for TiRex-2 also ``VariateSeries`` (several targets, covariates).
    options: any ``TrainConfig`` field (``prediction_length``, ``max_steps``, ``num_nodes``...).
    accelerator, devices, strategy, precision: Lightning's (precision: 32-true on CPU,
        bf16-mixed on GPU). A multi-process run started by torchrun, srun or by hand passes
        its environment to Lightning once ``train.launch`` has checked its size.
    validation: hold out each series' last horizon. resume: ``"auto"`` (``last.ckpt`` when
        present), a ``.ckpt`` path, or None; a checkpoint of other settings is refused.
    command_record / on_start: saved as ``command.yaml`` / called with the settings once the
        inputs and the resume check have passed (never for a run that did not start).
    auto: fine-tuning modes choose the options left out from the data (``train.auto``) and
        run the zero-shot guard (``train.guard``): if the best checkpoint does not beat the base
        on the held-out tail, ``final/`` is the base. Such runs write finetune_report.md/.json.
    Returns a ``FitResult`` whose ``forecaster`` is loaded from ``final/``. Raises
    ``InputError`` (data, divergence), ``ConfigError``, ``CheckpointError`` (the previous
    checkpoint stays) and, after Ctrl-C, ``TrainingInterrupted`` once ``last.ckpt`` is saved.
    """
    from rexforge.train.launch import check_launch
    from rexforge.train.progress import quiet_lightning

    guarded = auto and validation and mode != "scratch"
    settings, config, base_state, provenance, chosen, base_config = _resolve_settings(
        model, train_series, mode, options, guarded, devices
    )
    check_launch(settings.num_nodes, devices)
    hooks = training_family(config)
    base = _GuardBase(base_config, base_state) if guarded else None
    tail_context = base.tail_context(settings) if base is not None else None
    windows = hooks.windows(train_series, settings, config, validation, skip_short, tail_context)
    run_dir = Path(output_dir)
    ckpt_path = _prepare_run_folder(run_dir, resume, config, settings)
    if on_start is not None:
        on_start(settings)
    module, data = _build_module(settings, config, base_state, windows)
    trainer_options = _trainer_options(accelerator, devices, strategy, precision, settings)
    _write_run_config(run_dir, config, settings, data_description, trainer_options, validation)
    _write_command_record(run_dir, command_record)
    with quiet_lightning(resuming=ckpt_path is not None):
        trainer, on_interrupt = _trainer(
            run_dir, settings, trainer_options, validation, keep_checkpoints, progress_bar, guarded
        )
        started = time.perf_counter()
        module, metrics, report = _train_and_guard(
            trainer, module, data, ckpt_path, on_interrupt, run_dir, base
        )
    exported, provenance = _exported_config(report, config, base_config, provenance)
    result = _export(
        trainer, module, settings, exported, provenance, data_description, run_dir, metrics, hooks
    )
    if report is not None:
        seconds = time.perf_counter() - started
        _file_report(report, result, seconds, settings, chosen, trainer.is_global_zero)
    return result


# -- the steps of fit (with _windows, _trainer, _train and _export below) ----------------------
def _resolve_settings(model, train_series, mode: str, options: dict, guarded: bool, devices):
    """(settings, training config, base weights or None, provenance, automatic choices or
    None, the base's own config): the caller's options validated, the base resolved, and in a
    guarded fine-tune the options left out chosen from the data (for ``devices`` processes on
    each of the nodes)."""
    settings = TrainConfig.from_dict({"mode": mode, **options}).validate()
    config, base_state, provenance, base_config = _resolve_model(model, settings)
    chosen = None
    if guarded:
        processes = settings.num_nodes * (devices if isinstance(devices, int) else 1)
        settings, chosen = _auto_settings(train_series, settings, config, options, processes)
    return settings, config, base_state, provenance, chosen, base_config


def _trainer_options(accelerator, devices, strategy, precision, settings: TrainConfig) -> dict:
    """Lightning's Trainer arguments of a run (precision: 32-true on CPU, else bf16-mixed)."""
    return {
        "accelerator": accelerator,
        "devices": devices,
        "strategy": strategy,
        "num_nodes": settings.num_nodes,
        "precision": precision or ("32-true" if accelerator == "cpu" else "bf16-mixed"),
    }


def _exported_config(report, config, base_config, provenance: dict) -> tuple[Any, dict]:
    """(config, provenance) that final/ is written with: the run's, or, when the guard kept the
    base, the base as it was (its own context), saying so in its metadata."""
    if report is not None and report.kept == "base":
        return base_config, {**provenance, "finetune_kept": "base"}
    return config, provenance


def _prepare_run_folder(run_dir: Path, resume, config, settings: TrainConfig) -> str | None:
    """The checkpoint to resume from (None: start over), once it is known to match the run's
    config and settings."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = _resume_path(resume, ckpt_dir)
    for stale in ckpt_dir.glob(".*.ckpt.*.tmp"):
        # Left by a process killed while saving (atomic writes never leave a partial .ckpt).
        stale.unlink(missing_ok=True)
    if ckpt_path is not None:
        step = _check_resume_matches(ckpt_path, config, settings, run_dir, resume)
        logger.info("resuming from %s (step %d)", ckpt_path, step)
    return ckpt_path


def _build_module(settings: TrainConfig, config, base_state, windows):
    """(training module, data module), seeded: the same seed builds the same run."""
    import lightning as L

    from rexforge.train.datamodule import WindowDataModule
    from rexforge.train.module import TrainingModule

    L.seed_everything(settings.seed, workers=True, verbose=False)
    module = TrainingModule(config.to_dict(), settings.to_dict(), base_state)
    logger.info(
        "mode %s: %d trainable / %d frozen parameters; %d training windows in %d series",
        settings.mode,
        module.param_counts["trainable"],
        module.param_counts["frozen"],
        windows.sampler.num_windows,
        windows.num_series,
    )
    data = WindowDataModule(
        windows.sampler,
        windows.validation,
        batch_size=settings.batch_size,
        seed=settings.seed,
        num_workers=settings.num_workers,
        make_stream=windows.make_stream,
        collate=windows.collate,
        val_collate=windows.val_collate,
    )
    return module, data


def _write_command_record(run_dir: Path, command_record: dict | None) -> None:
    if command_record is not None:
        import yaml

        atomic_write_text(run_dir / "command.yaml", yaml.safe_dump(command_record, sort_keys=False))


class _GuardBase(NamedTuple):
    """The base model as the guard compares with it: its own config (context included) and
    weights."""

    config: Any
    state: dict | None

    def tail_context(self, settings: TrainConfig) -> int:
        """Steps of the held-out windows: enough for the training context and the base's own,
        so that the base is scored as it forecasts untouched."""
        own = training_family(self.config).default_context(self.config)
        return max(settings.context_length, own)

    def module(self, settings: TrainConfig):
        from rexforge.train.module import TrainingModule

        return TrainingModule(self.config.to_dict(), settings.to_dict(), self.state)


def _train_and_guard(trainer, module, data, ckpt_path, on_interrupt, run_dir, base):
    """Train; in a guarded fine-tune (``base`` given), score the base on the held-out tail
    first and keep the better of it and the best checkpoint. Returns (module to export,
    metrics, report or None)."""
    zero_shot = None
    if base is not None:
        zero_shot = _tail_scores(trainer, base.module(module.settings), data)
    _train(trainer, module, data, ckpt_path, on_interrupt, run_dir)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if base is None:
        return module, metrics, None
    module, report = _guard(trainer, module, data, zero_shot, base, run_dir)
    kept = report.fine_tuned if report.kept == "fine-tuned" else report.zero_shot
    metrics.update({f"val_{k}": v for k, v in kept.items()})  # the exported model's
    return module, metrics, report


def _file_report(report, result: FitResult, seconds: float, settings, chosen, is_global_zero):
    """Complete the guard's report, write finetune_report.md/.json (rank zero), log its
    summary and attach it to ``result``."""
    report.seconds = seconds
    report.settings, report.chosen = settings.to_dict(), chosen
    if is_global_zero:
        write_report(result.run_dir, report)
    logger.info(report.summary())
    result.report = report


def _auto_settings(train_series, settings: TrainConfig, config, options: dict, processes: int = 1):
    """``settings`` with the options the caller left out chosen by ``train.auto``."""
    from rexforge.train.auto import choose_settings

    hooks = training_family(config)
    chosen = choose_settings(
        settings.mode,
        hooks.series_lengths(train_series),
        settings.prediction_length,
        num_blocks=hooks.num_blocks(config),
        patch_size=hooks.patch_size(config),
        explicit={k: v for k, v in options.items() if v is not None},
        processes=processes,
    )
    if chosen.values:
        logger.info("automatic settings: %s", chosen.describe())
    values = {**settings.to_dict(), **chosen.values}
    return TrainConfig.from_dict(values).validate(), dict(chosen.reasons)


def _tail_scores(trainer, module, data) -> tuple[dict[str, float], np.ndarray | None]:
    """WQL, MASE and 80% coverage of ``module``'s model on the held-out tail, and the pinball
    loss of each held-out forecast [N]."""
    module.val_unit_losses = None
    results = trainer.validate(module, datamodule=data, verbose=False)
    logged = results[0] if results else {}
    scores = {m: float(logged.get(f"val_{m}", float("nan"))) for m in METRICS}
    return scores, module.val_unit_losses


def _guard(trainer, module, data, zero_shot_tail, base: _GuardBase, run_dir: Path):
    """Load the best checkpoint into ``module`` and score it; when it does not beat
    ``zero_shot``, return a fresh module holding the base (its weights and context; LoRA
    adapters at zero add nothing) instead. Returns (module to export, report)."""
    best = run_dir / "checkpoints" / "best.ckpt"
    best_step = None
    if best.exists():
        ckpt = torch.load(best, map_location="cpu", weights_only=False)
        module.load_state_dict(ckpt["state_dict"], strict=module.strict_loading)
        best_step = int(ckpt.get("global_step", 0))
    tuned, tuned_units = _tail_scores(trainer, module, data)
    zero_shot, base_units = zero_shot_tail  # what _tail_scores gave for the base model
    upper = math.nan
    if base_units is not None and tuned_units is not None:
        upper = wql_ratio_bound(base_units, tuned_units)
    report = FinetuneReport(zero_shot, tuned, "fine-tuned", best_step, int(trainer.global_step), 0)
    report.tail_forecasts = 0 if base_units is None else int(base_units.size)
    report.wql_ratio_upper = upper
    if keep_fine_tuned(zero_shot, tuned, upper):
        return module, report
    report.kept = "base"
    return base.module(module.settings), report


def _resolve_model(model, settings: TrainConfig) -> tuple[Any, dict | None, dict, Any]:
    """The base's config with its context set to the training context by the family's hooks,
    its weights, provenance and own config; fills the provenance and the context length into
    ``settings``.
    The one writer of a trained model's context; exports store it once, in the model config."""
    config, base_state, provenance = resolve_base(model, settings.mode)
    hooks = training_family(config)
    settings.base_checkpoint = provenance.get("base_checkpoint")
    settings.base_sha256 = provenance.get("base_sha256")
    settings.derived_from_nxai_weights = bool(provenance.get("derived_from_nxai_weights"))
    settings.rollout = provenance.get("default_rollout", "exact")
    P = hooks.patch_size(config)
    default = hooks.default_context(config)
    settings.context_length = round_up(settings.context_length or default, P)
    if default != settings.context_length:
        logger.info(
            "model context %d -> %d: the trained model pads or cuts contexts to the length it "
            "trains on (--context-length)",
            default,
            settings.context_length,
        )
    return hooks.training_config(config, settings), base_state, provenance, config


def _trainer(
    run_dir, settings, trainer_options, validation, keep_checkpoints, progress_bar, guarded=False
):
    """The Lightning Trainer of a run and its Ctrl-C checkpoint callback.

    The best checkpoint and early stopping follow the validation loss, or, in a guarded
    fine-tune, the tail's WQL that the guard judges: the loss scores every position of the
    held-out windows, most of which lie inside the training data, and it kept falling on
    Tourism monthly while the tail's forecasts got worse."""
    import lightning as L

    from rexforge.train.checkpointing import AtomicCheckpointIO

    callbacks, on_interrupt = _callbacks(
        run_dir / "checkpoints", settings, validation, keep_checkpoints, progress_bar, guarded
    )
    loggers = _loggers(run_dir)
    accumulate = settings.accumulate_grad_batches
    trainer = L.Trainer(
        **trainer_options,
        max_steps=settings.max_steps,
        max_time=_max_time(settings.time_budget),
        gradient_clip_val=settings.grad_clip or None,
        accumulate_grad_batches=accumulate,
        # The training stream is endless: validate every N optimizer steps (in micro-batches).
        val_check_interval=settings.val_every_n_steps * accumulate,
        check_val_every_n_epoch=None,
        limit_val_batches=None if validation else 0,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=loggers,
        log_every_n_steps=min(50, settings.val_every_n_steps),
        enable_progress_bar=False,  # ProgressLine instead: one line, with an ETA
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    return trainer, on_interrupt


def _callbacks(ckpt_dir, settings, validation, keep_checkpoints, progress_bar, guarded):
    """(Lightning callbacks, the Ctrl-C checkpoint callback among them); see ``_trainer`` for
    what the best checkpoint and early stopping monitor."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from rexforge.train.checkpointing import InterruptCheckpoint
    from rexforge.train.progress import ProgressLine, show_progress

    every = settings.checkpoint_every_n_steps or settings.val_every_n_steps
    monitor = "val_wql" if guarded else "val_loss"
    on_interrupt = InterruptCheckpoint(ckpt_dir / "last.ckpt")
    callbacks = [
        on_interrupt,
        # Keep the newest ``keep_checkpoints`` step-* files (monitor "step", mode max).
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="step-{step:06d}",
            every_n_train_steps=every,
            monitor="step",
            mode="max",
            save_top_k=keep_checkpoints,
            save_last=True,
            auto_insert_metric_name=False,
        ),
    ]
    if validation:
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="best",
                monitor=monitor,
                mode="min",
                save_top_k=1,
                enable_version_counter=False,
            )
        )
        if settings.early_stopping_patience:
            callbacks.append(EarlyStopping(monitor, patience=settings.early_stopping_patience))
    if show_progress(progress_bar):
        callbacks.append(ProgressLine())
    return callbacks, on_interrupt


def _loggers(run_dir: Path) -> list:
    """CSV metrics, plus TensorBoard when it is installed."""
    from lightning.pytorch.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=run_dir, name="", version="")]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tb", version=""))
    return loggers


def _max_time(budget: str | None):
    import datetime as dt

    from rexforge.train.settings import parse_duration

    return None if budget is None else dt.timedelta(seconds=parse_duration(budget))


def _train(trainer, module, data, ckpt_path, on_interrupt, run_dir: Path) -> None:
    """``trainer.fit``, with Ctrl-C and divergence turned into one clear error each."""
    last = run_dir / "checkpoints" / "last.ckpt"
    # CSVLogger deletes an existing metrics.csv; keep the rows of the earlier segment.
    metrics_csv = run_dir / "metrics.csv"
    earlier = metrics_csv.read_text() if ckpt_path and metrics_csv.is_file() else None
    # exp() of very negative gate pre-activations gives denormal floats, on which x86
    # arithmetic is ~25x slower (measured: 205 us vs 8 us per small op); they are far below
    # anything that changes a result, so flush them to zero while training. The switch is
    # process-wide, hence restored below.
    torch.set_flush_denormal(True)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    except SystemExit:
        # Lightning answers a KeyboardInterrupt it catches (a second Ctrl-C, or one before
        # training started) with sys.exit(1); a library call raises instead.
        if not trainer.interrupted:
            raise
        on_interrupt.restore()
        if on_interrupt.saved_step is not None:  # Ctrl-C during validation: saved, then left
            raise _interrupted(on_interrupt.saved_step, last) from None
        kept = f"{last} holds the last saved step" if last.exists() else "no checkpoint was saved"
        raise TrainingInterrupted(f"training aborted; {kept}") from None
    finally:
        torch.set_flush_denormal(False)
        if earlier is not None and trainer.is_global_zero:
            _merge_metrics(metrics_csv, earlier)

    if on_interrupt.saved_step is not None:
        raise _interrupted(on_interrupt.saved_step, last)
    diverged = trainer.callback_metrics.get("nonfinite_step")
    if diverged is not None:
        batch = int(trainer.callback_metrics["nonfinite_batch"])
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was saved"
        raise InputError(
            f"training diverged: the loss became non-finite at step {int(diverged)} "
            f"(batch {batch} of the training stream); {kept}; "
            "try a lower --lr or check the data for extreme values"
        )
    trainer.save_checkpoint(last, weights_only=False)


def _export(
    trainer, module, settings, config, provenance, data_description, run_dir: Path, metrics, hooks
):
    """Write ``final/`` (rank zero, in the family's layout) and return the run's ``FitResult``."""
    from rexforge.forecast.api import load_model
    from rexforge.io.checkpoint import distinct_tensors
    from rexforge.train.lora import lora_state_dict, merge_lora

    last = run_dir / "checkpoints" / "last.ckpt"
    best = run_dir / "checkpoints" / "best.ckpt"
    final_dir = run_dir / "final"
    if trainer.is_global_zero:
        trained = copy.deepcopy(module.model).cpu().float()
        if settings.mode == "lora":
            from safetensors.torch import save

            adapters = distinct_tensors(lora_state_dict(trained))
            atomic_write_bytes(final_dir / "adapter.safetensors", save(adapters))
            merge_lora(trained)
        metadata = {
            **provenance,
            "mode": settings.mode,
            "data": data_description,
            "train_config": settings.to_dict(),
            "steps": int(trainer.global_step),
            "metrics": metrics,
        }
        state = {k: v.detach().clone() for k, v in trained.state_dict().items()}
        official = hooks.export(final_dir, config, state, metadata)
        logger.info("exported %s (official file: %s)", final_dir, official)
    forecaster = load_model(final_dir) if (final_dir / "config.json").exists() else None
    return FitResult(
        run_dir,
        final_dir,
        last if last.exists() else None,
        best if best.exists() else None,
        metrics,
        forecaster,
    )


def _merge_metrics(path: Path, earlier: str) -> None:
    import io

    import pandas as pd

    frames = [pd.read_csv(io.StringIO(earlier))]
    if path.is_file():
        frames.append(pd.read_csv(path))
    atomic_write_text(path, pd.concat(frames, ignore_index=True).to_csv(index=False))


def _resume_path(resume, ckpt_dir: Path) -> str | None:
    if resume is None or resume is False or resume == "never":
        return None
    if resume == "auto":
        last = ckpt_dir / "last.ckpt"
        return str(last) if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} does not exist")
    return str(path)


# Settings that may change between the segments of one run: they decide how it is watched,
# saved or computed, not what it learns. Every other training setting must match the
# checkpoint's (the optimizer and lr schedule state inside it were made with those).
RESUMABLE_CHANGES = frozenset(
    {
        "num_workers",
        "kernel",
        "compile",
        "val_every_n_steps",
        "checkpoint_every_n_steps",
        "early_stopping_patience",
        "time_budget",
        "base_checkpoint",  # a path; the base's sha256 is compared
        "derived_from_nxai_weights",
        "rollout",  # only how the tail is forecast, not how the weights train
    }
)


def _check_resume_matches(path, config, settings, run_dir: Path, resume) -> int:
    """Refuse, in one line naming every difference, to resume a checkpoint trained with
    another architecture or other training settings; returns its global step."""
    from rexforge.io.training_checkpoint import read_training_checkpoint

    try:
        checkpoint = read_training_checkpoint(path)
        saved = checkpoint["hyper_parameters"]
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume: {exc}") from None
    except KeyError:
        saved = None
    if not isinstance(saved, dict) or not {"model_config", "train_config"} <= set(saved):
        raise CheckpointError(
            f"cannot resume from {path}: not a rexforge training checkpoint (no model_config "
            "and train_config); to start from a model's weights, fine-tune it with --model"
        )
    # The context follows --context-length (see fit), so runs saved before it did resume.
    saved_config = _saved_config(saved["model_config"], config, settings)
    # A setting the checkpoint lacks did not exist when it was saved: it trained as the default.
    old_settings = {**TrainConfig().to_dict(), **saved["train_config"]}
    if old_settings.get("lora_targets") == list(training_family(config).lora_targets):
        old_settings["lora_targets"] = None  # saved before None meant the family's default
    new_settings = settings.to_dict()
    changed = [
        key
        for key in new_settings
        if key not in RESUMABLE_CHANGES and old_settings.get(key) != new_settings[key]
    ]
    same_model = saved_config is not None and saved_config.to_dict() == config.to_dict()
    if not changed and same_model:
        return int(checkpoint.get("global_step", 0))
    was = ", ".join(f"{key} {old_settings.get(key)!r}" for key in changed)
    asks = ", ".join(f"{key} {new_settings[key]!r}" for key in changed)
    if not same_model:
        was, asks = ", ".join(filter(None, ["another model config", was])), asks or "this one"
    if resume == "auto":
        raise CheckpointError(
            f"--output-dir {run_dir} holds a run with {was}; this command asks {asks}: use "
            "--resume never (start over) or a new --output-dir"
        )
    raise CheckpointError(
        f"cannot resume from {path}: it was trained with {was}; this command asks {asks}"
    )


def _saved_config(model_config: dict, config, settings: TrainConfig):
    """The config a checkpoint was trained with, its context set as this run sets it (None:
    a config no registered family reads, which then differs from any)."""
    from rexforge.registry import family_of

    try:
        family = family_of(model_config)
        saved = family.config_class.from_dict(model_config)
    except ConfigError:
        return None
    if type(saved) is not type(config):
        return None
    return family.training_hooks.training_config(saved, settings)


def _write_run_config(run_dir, config, settings, data_description, trainer_options, validation):
    import yaml

    from rexforge import __version__

    document = {
        "rexforge_version": __version__,
        "model": config.to_dict(),
        "train": settings.to_dict(),
        "data": data_description,
        "validation": validation,
        "trainer": trainer_options,
    }
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(document, sort_keys=False))
