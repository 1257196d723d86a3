"""``rexforge pretrain`` and ``rexforge finetune``: argparse front ends of ``fit``.

Both print the resolved options and save them (``command.yaml``) beside the run's
``config.yaml``; every option can also come from ``--config recipe.yaml`` (see configs/).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import types
import typing
from pathlib import Path

from rexforge.data.mix import SYNTHETIC_FAMILIES, DataMix, build_training_series
from rexforge.errors import ConfigError
from rexforge.train.auto import AUTO_OPTIONS
from rexforge.train.settings import TrainConfig, cli_fields, field_default

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """The flags of ``rexforge <name>`` (pretrain or finetune): the model, data and run flags
    written here, the training options generated from ``TrainConfig``."""
    model = parser.add_argument_group("model")
    _add_model_arguments(model, name)
    add_train_options(model, name, "model")
    add_train_options(parser, name, None)
    _add_data_arguments(parser.add_argument_group("data"), name)
    add_train_options(parser.add_argument_group("training"), name, "training")
    _add_run_arguments(parser.add_argument_group("run"))


def add_train_options(parser, command: str, group: str | None) -> None:
    """Add a flag for every ``TrainConfig`` option of ``command`` in help section ``group``."""
    hints = typing.get_type_hints(TrainConfig)
    for f in cli_fields():
        if command in f.metadata["commands"] and f.metadata["group"] == group:
            flags = f.metadata["flags"] or ("--" + f.name.replace("_", "-"),)
            parser.add_argument(*flags, dest=f.name, **_flag_settings(f, hints[f.name], command))


def _flag_settings(f: dataclasses.Field, annotation, command: str) -> dict:
    """argparse keywords of the flag of field ``f`` (type from its annotation)."""
    default = cli_default(f, command)
    help_text = f.metadata["help"].format(default=_shown_default(f, command))
    kind = _without_none(annotation)
    if kind is bool:
        # A switch train.auto may turn on needs its --no- form to be turned off again.
        action = argparse.BooleanOptionalAction if f.name in AUTO_OPTIONS else "store_true"
        return {"action": action, "default": default, "help": help_text}
    keywords = {"type": kind, "default": default, "help": help_text}
    if typing.get_origin(kind) is list:
        keywords.update(type=typing.get_args(kind)[0], nargs="+")
    if f.metadata["choices"]:
        keywords["choices"] = f.metadata["choices"]
    return keywords


def cli_default(f: dataclasses.Field, command: str):
    """The flag's default: None (unset) where fine-tuning leaves the option to train.auto, and
    for switches train.auto may set (unset then means the ``TrainConfig`` default); otherwise
    the command's own default."""
    switch = isinstance(field_default(f), bool)
    if f.name in AUTO_OPTIONS and (command == "finetune" or switch):
        return None
    if command == "pretrain" and "pretrain_default" in f.metadata:
        return f.metadata["pretrain_default"]
    return field_default(f)


def _shown_default(f: dataclasses.Field, command: str) -> str:
    """What ``{default}`` in a help text says."""
    if command == "finetune" and f.name in AUTO_OPTIONS:
        return "default: chosen from the data"
    value = field_default(f)
    if command == "pretrain":
        value = f.metadata.get("pretrain_default", value)
    if isinstance(value, bool):
        return "default " + ("on" if value else "off")
    return f"default {value:g}" if isinstance(value, float) else f"default {value}"


def _without_none(annotation):
    """``X`` for ``X | None``, else the annotation itself."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        (kind,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kind
    return annotation


def _add_model_arguments(model, name: str) -> None:
    if name == "pretrain":
        model.add_argument(
            "--preset",
            default="tirex-1m",
            help="architecture preset of any family (default tirex-1m; tirex2-test, ...)",
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


def _add_data_arguments(data, name: str) -> None:
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
    data.add_argument(
        "--target",
        default="target",
        help="long layout: value column(s) to learn (a,b: several targets, TiRex-2 models)",
    )
    for kind, known in (("past", "up to now"), ("future", "ahead as well")):
        data.add_argument(
            f"--{kind}-covariates",
            nargs="+",
            default=None,
            help=f"long layout, TiRex-2 models: input columns known {known} (a b, or a,b)",
        )
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


def _add_run_arguments(run) -> None:
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


def train_options(args) -> dict:
    """The training options set in ``args`` (None = unset: train.auto's rule when fine-tuning,
    else the ``TrainConfig`` default). ``mode`` is not among them: pretrain has no --mode flag
    and ``run`` passes it by itself."""
    names = (f.name for f in cli_fields() if f.name != "mode")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


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
        past_covariates=getattr(args, "past_covariates", None),
        future_covariates=getattr(args, "future_covariates", None),
        synthetic=counts,
        synthetic_length=args.synthetic_length,
        tsmixup=getattr(args, "tsmixup", 0) or 0,
        aggregate=list(getattr(args, "aggregate", None) or []),
        seed=args.seed,
    )


def run(args) -> int:
    from rexforge.config import TiRexConfig
    from rexforge.registry import resolve_config
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
            else resolve_config(args.preset)[1]
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
    options = train_options(args)
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
