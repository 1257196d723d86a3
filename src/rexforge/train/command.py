"""``rexforge pretrain`` and ``rexforge finetune``: argparse front ends of ``fit``.

Both print the resolved options and save them (``command.yaml``) beside the run's
``config.yaml``; every option can also come from ``--config recipe.yaml`` (see configs/).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rexforge.data.mix import SYNTHETIC_FAMILIES, DataMix, build_training_series
from rexforge.errors import ConfigError
from rexforge.train.settings import DEFAULT_TARGETS, MODES, TrainConfig

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    model = parser.add_argument_group("model")
    if name == "pretrain":
        model.add_argument(
            "--preset", default="tirex-1m", help="architecture preset (default tirex-1m)"
        )
        model.add_argument(
            "--model-config",
            type=Path,
            default=None,
            help="architecture from a JSON/YAML TiRexConfig file (overrides --preset)",
        )
    else:
        model.add_argument(
            "--model",
            default="starter",
            help="base checkpoint: official model.ckpt, rexforge folder, or 'starter' (default)",
        )
        model.add_argument("--mode", choices=MODES, default="full", help="which parameters train")
        model.add_argument(
            "--freeze-blocks",
            type=int,
            default=None,
            help="mode freeze: freeze the input embedding and the first K blocks (default: "
            "half of them)",
        )
        model.add_argument(
            "--head-only",
            action="store_true",
            help="mode freeze: train only out_norm and the output head",
        )
        model.add_argument(
            "--lora-rank", type=int, default=None, help="mode lora: adapter rank (default: auto)"
        )
        model.add_argument(
            "--lora-alpha", type=float, default=16.0, help="mode lora: scaling alpha"
        )
        model.add_argument(
            "--lora-targets",
            nargs="+",
            default=list(DEFAULT_TARGETS),
            help="mode lora: glob patterns of adapted module names",
        )
    model.add_argument(
        "--kernel",
        default="auto",
        help="sLSTM kernel for training: auto (cpu_fused), torch_ref, cpu_compiled (compiles "
        "once per window shape, ~1 min; fastest for long CPU runs)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the whole model and loss for training (the first step compiles: "
        "~1-4 min by model size; faster steps after, most for small models)",
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        nargs="+",
        type=Path,
        default=[] if name == "pretrain" else None,
        required=name == "finetune",
        help="CSV/Parquet/Arrow file(s) of series",
    )
    data.add_argument("--layout", choices=("auto", "long", "wide"), default="auto")
    data.add_argument("--id-column", default="item_id", help="long layout: series id column")
    data.add_argument("--timestamp-column", default="timestamp", help="long layout: time column")
    data.add_argument("--target", default="target", help="long layout: value column to learn")
    data.add_argument(
        "--columns", nargs="+", default=None, help="wide layout: the series columns (a b, or a,b)"
    )
    # Synthetic series augment fine-tuning (continued pretraining) as well as pretraining.
    for family in SYNTHETIC_FAMILIES.values():
        data.add_argument(family.flag, type=int, default=0, help=family.help)
    data.add_argument(
        "--synthetic-length", type=int, default=1024, help="length of each synthetic series"
    )
    data.add_argument(
        "--tsmixup",
        type=int,
        default=0,
        help="add this many TSMixup series (convex mixtures of the --data series)",
    )
    data.add_argument(
        "--aggregate",
        type=int,
        nargs="+",
        default=[],
        metavar="K",
        help="also train on temporal aggregates of every --data series: the mean of each K "
        "consecutive steps (3 12: monthly series also as quarterly and yearly ones)",
    )
    data.add_argument(
        "--no-validation",
        action="store_true",
        help="do not hold out the last horizon of each series for validation",
    )
    if name == "finetune":
        data.add_argument(
            "--no-auto",
            action="store_true",
            help="fixed defaults instead of settings chosen from the data, and no zero-shot "
            "guard (for long continued-pretraining runs such as the starter's stages)",
        )
    data.add_argument(
        "--skip-short",
        action="store_true",
        help="drop series too short for a training window (logged) instead of failing",
    )

    train = parser.add_argument_group("training")
    train.add_argument(
        "--horizon",
        "--prediction-length",
        dest="prediction_length",
        type=int,
        default=64,
        help="forecast horizon H (validation; windows use whole patches)",
    )
    train.add_argument(
        "--context-length",
        type=int,
        default=None,
        help="context of each training window (default: the model's train_ctx_len)",
    )
    # Fine-tuning leaves these unset: fit chooses them from the data (train.auto), and says so.
    auto = "default: chosen from the data" if name == "finetune" else None
    train.add_argument(
        "--max-steps", type=int, default=None if auto else 20000, help=auto or "default 20000"
    )
    train.add_argument(
        "--time-budget",
        default=None,
        help="stop training after this wall time (90s, 10m, 2h); the best checkpoint so far "
        "is kept",
    )
    train.add_argument(
        "--batch-size", type=int, default=None if auto else 32, help=auto or "default 32"
    )
    train.add_argument(
        "--lr",
        type=float,
        default=None if auto else 1e-3,
        help="peak learning rate (" + (auto or "default 1e-3") + ")",
    )
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="linear lr warmup (default: min(100, max-steps / 10))",
    )
    train.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    train.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0 = off)")
    train.add_argument("--accumulate-grad-batches", type=int, default=1)
    train.add_argument(
        "--mask-max-start-prob",
        type=float,
        default=0.15,
        help="contiguous patch masking: max per-patch run-start probability (0 = off)",
    )
    train.add_argument("--mask-max-run", type=int, default=8, help="masking: max run length")
    train.add_argument(
        "--future-mask-prob",
        type=float,
        default=0.5,
        help="share of windows whose future inputs are all masked, as a forecast past one patch "
        "feeds them (0 = teacher forcing only)",
    )
    train.add_argument(
        "--context-truncation-prob",
        type=float,
        default=0.0,
        help="share of windows whose context is cut to a random shorter length (0 = off)",
    )
    train.add_argument(
        "--context-truncation-min-length",
        type=int,
        default=None,
        help="shortest context kept by truncation (default: one patch)",
    )
    train.add_argument(
        "--context-truncation-log-uniform",
        action="store_true",
        help="draw truncated context lengths log-uniformly (more very short contexts)",
    )
    train.add_argument(
        "--context-outlier-prob",
        type=float,
        default=0.0,
        help="share of windows whose inputs get one-off outliers (1-3 steps, 2-8 stds) that "
        "the targets do not have: teaches looking through one-off events (0 = off)",
    )
    train.add_argument(
        "--series-weight-power",
        type=float,
        default=1.0,
        help="draw series with probability ~ windows**p: 1 = uniform over windows (default), "
        "0.5 = more weight to short series, 0 = uniform over series",
    )
    train.add_argument(
        "--partial-future",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also train on windows whose future runs past a series' end (short series); "
        + (auto or "default off"),
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--val-every-n-steps", type=int, default=None if auto else 100, help=auto or "default 100"
    )
    train.add_argument(
        "--validation-windows",
        type=int,
        default=None,
        help="held-out windows at the end of each series, one horizon apart (default 1; "
        "fine-tuning: chosen from the data)",
    )
    train.add_argument("--checkpoint-every-n-steps", type=int, default=None)
    train.add_argument(
        "--early-stopping-patience",
        type=int,
        default=None,
        help="stop after this many validations without improvement (fine-tuning default: 3; "
        "0 = never)",
    )
    train.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")

    run = parser.add_argument_group("run")
    run.add_argument("--output-dir", type=Path, required=True, help="run folder, e.g. runs/my-run")
    run.add_argument(
        "--resume",
        default="auto",
        help="'auto' (continue from checkpoints/last.ckpt), a .ckpt path, or 'never'",
    )
    run.add_argument("--accelerator", default="cpu", help="cpu, gpu, auto")
    run.add_argument("--devices", default="1", help="devices per node (int or 'auto')")
    run.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, ...")
    run.add_argument("--num-nodes", type=int, default=1)
    run.add_argument("--precision", default=None, help="default 32-true on CPU, bf16-mixed on GPU")
    run.add_argument(
        "--keep-checkpoints",
        type=int,
        default=3,
        help="newest step-* checkpoints kept in <output-dir>/checkpoints (-1 = all)",
    )
    run.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress line (steps, loss, val metric, ETA); default: only in a terminal "
        "outside CI",
    )


TRAIN_KEYS = (
    "prediction_length",
    "context_length",
    "max_steps",
    "time_budget",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_steps",
    "min_lr_ratio",
    "grad_clip",
    "accumulate_grad_batches",
    "mask_max_start_prob",
    "mask_max_run",
    "future_mask_prob",
    "context_truncation_prob",
    "context_truncation_min_length",
    "context_truncation_log_uniform",
    "context_outlier_prob",
    "partial_future",
    "series_weight_power",
    "seed",
    "val_every_n_steps",
    "validation_windows",
    "checkpoint_every_n_steps",
    "early_stopping_patience",
    "num_workers",
    "kernel",
    "compile",
    "freeze_blocks",
    "head_only",
    "lora_rank",
    "lora_alpha",
    "lora_targets",
)


def load_training_series(args) -> tuple[list, str]:
    """Series from ``--data`` and the synthetic generators, plus a one-line description."""
    return build_training_series(data_mix(args))


def data_mix(args) -> DataMix:
    """The ``DataMix`` of the data options (a namespace may lack those added since it was
    made, as tests' do: they count as unset)."""
    counts = {
        name: getattr(args, family.option, 0) or 0 for name, family in SYNTHETIC_FAMILIES.items()
    }
    return DataMix(
        files=list(args.data or []),
        layout=args.layout,
        id_column=args.id_column,
        timestamp_column=args.timestamp_column,
        target=args.target,
        columns=args.columns,
        synthetic=counts,
        synthetic_length=args.synthetic_length,
        tsmixup=getattr(args, "tsmixup", 0) or 0,
        aggregate=list(getattr(args, "aggregate", None) or []),
        seed=args.seed,
    )


def run(args) -> int:
    from rexforge.config import TiRexConfig
    from rexforge.train.loop import fit

    if args.keep_checkpoints < -1:
        raise ConfigError(
            f"--keep-checkpoints must be -1 (all) or >= 0, got {args.keep_checkpoints}"
        )
    if args.command == "pretrain":
        mode = "scratch"
        base = (
            TiRexConfig.from_file(args.model_config)
            if args.model_config
            else TiRexConfig.from_name(args.preset)
        )
    else:
        mode, base = args.mode, args.model
    resolved = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if not k.startswith("_") and k not in ("verbose",)
    }
    resolved["data"] = [str(p) for p in args.data or []]
    resolved["mode"] = mode
    # Unset options (None) are left to the rule of train.auto (fine-tuning) or the defaults.
    options = {k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k, None) is not None}
    # Bad options and bad data are reported before anything is said to run.
    TrainConfig.from_dict({"mode": mode, **options}).validate()
    series, description = load_training_series(args)
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    resume = None if args.resume == "never" else args.resume
    result = fit(
        base,
        series,
        output_dir=args.output_dir,
        mode=mode,
        validation=not args.no_validation,
        auto=not getattr(args, "no_auto", False),
        resume=resume,
        accelerator=args.accelerator,
        devices=devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        precision=args.precision,
        data_description=description,
        progress_bar=args.progress_bar,
        skip_short=args.skip_short,
        keep_checkpoints=args.keep_checkpoints,
        command_record=resolved,
        on_start=lambda resolved: print(run_header(args, resolved, len(series)), flush=True),
        **options,
    )
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items()))
    if result.report is not None:  # its one-line summary was logged by fit
        print(f"report: {Path(args.output_dir) / 'finetune_report.md'}")
    print(f"done: {result.final_dir} ({shown})")
    return 0


def run_header(args, settings, n_series: int) -> str:
    """Two lines on what will run (every option goes to <output-dir>/command.yaml)."""
    mode = settings.mode
    if args.command == "pretrain":
        what = f"pretrain {args.model_config or args.preset} from scratch"
    else:
        detail = {"lora": f", rank {settings.lora_rank}"}.get(mode, "")
        what = f"finetune {args.model} ({mode}{detail})"
    length = settings.context_length
    context = f"context {length}" if length else "the model's context"
    validation = (
        "no validation"
        if args.no_validation
        else f"validation every {settings.val_every_n_steps} steps on the last "
        f"{_tail_text(settings.validation_windows or 1, settings.prediction_length)} of each series"
    )
    return (
        f"{what} on {n_series} series: {settings.max_steps} steps (warmup "
        f"{settings.warmup_steps}), batch {settings.batch_size}, lr {settings.lr:g}, horizon "
        f"{settings.prediction_length}, {context}, seed {settings.seed}\n"
        f"{validation}; run folder {args.output_dir} (all options: command.yaml there)"
    )


def _tail_text(windows: int, horizon: int) -> str:
    if windows == 1:
        return str(horizon)
    return f"{windows} x {horizon} (fewer in short series)"
