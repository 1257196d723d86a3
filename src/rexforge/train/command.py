"""``rexforge pretrain`` and ``rexforge finetune``: command-line front ends of ``fit``.

Both print the resolved options and save them (``command.yaml``) beside the run's
``config.yaml``; every option can also come from ``--config recipe.yaml`` (see configs/).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Literal, NewType

from rexforge.cli_parser import CommandParser, Spelling, register_group
from rexforge.data.mix import SYNTHETIC_FAMILIES, DataMix, build_training_series
from rexforge.errors import ConfigError
from rexforge.train.auto import AUTO_OPTIONS
from rexforge.train.settings import TrainConfig, cli_fields, field_default

logger = logging.getLogger(__name__)

# The values of the ``TrainConfig`` options of a command (None: unset, so train.auto's rule
# when fine-tuning, else the ``TrainConfig`` default), and the series count of each synthetic
# family: option groups whose flags ``cli_parser`` adds from ``TrainConfig`` and the registry.
TrainOptions = NewType("TrainOptions", dict)
SyntheticCounts = NewType("SyntheticCounts", dict)


@dataclasses.dataclass
class MixOptions:
    """Training data: how to read --data, and what else joins it.

    Args:
        layout: long (item_id, timestamp, target) or wide (a time column and one column per
            series); auto tells them apart
        id_column: long layout: series id column
        timestamp_column: long layout: time column
        target: long layout: value column(s) to learn (a,b: several targets, TiRex-2 models)
        past_covariates: long layout, TiRex-2 models: input columns known up to now (a b, or
            a,b)
        future_covariates: long layout, TiRex-2 models: input columns known ahead as well
        columns: wide layout: the series columns (a b, or a,b)
        synthetic_length: length of each synthetic series
        tsmixup: add this many TSMixup series (convex mixtures of the --data series)
        aggregate: also train on temporal aggregates of every --data series: the mean of each K
            consecutive steps (3 12: monthly series also as quarterly and yearly ones)
        no_validation: do not hold out the last horizon of each series for validation
        skip_short: drop series too short for a training window (logged) instead of failing
    """

    layout: Literal["auto", "long", "wide"] = "auto"
    id_column: str = "item_id"
    timestamp_column: str = "timestamp"
    target: str = "target"
    past_covariates: list[str] | None = None
    future_covariates: list[str] | None = None
    columns: list[str] | None = None
    synthetic_length: int = 1024
    tsmixup: int = 0
    aggregate: list[int] = dataclasses.field(default_factory=list)
    no_validation: bool = False
    skip_short: bool = False


@dataclasses.dataclass
class RunOptions:
    """Where and how the run goes.

    Args:
        resume: 'auto' (continue from checkpoints/last.ckpt), a .ckpt path, or 'never'
        accelerator: cpu, gpu, auto
        devices: devices per node (an integer or 'auto')
        strategy: auto, ddp, ddp_spawn, ...
        precision: default 32-true on CPU, bf16-mixed on GPU
        keep_checkpoints: newest step-* checkpoints kept in <output-dir>/checkpoints (-1 = all)
        progress_bar: a progress line (steps, loss, val metric, ETA); default: only in a
            terminal outside CI
    """

    resume: str = "auto"
    accelerator: str = "cpu"
    devices: str = "1"
    strategy: str = "auto"
    precision: str | None = None
    keep_checkpoints: int = 3
    progress_bar: bool | None = None


def pretrain(
    *,
    output_dir: Path,
    data: list[Path] | None = None,
    preset: str = "tirex-1m",
    model_config: Path | None = None,
    mix: MixOptions,
    synthetic: SyntheticCounts,
    run: RunOptions,
    train: TrainOptions,
) -> int:
    """Pretrain a TiRex or TiRex-2 model from scratch.

    Args:
        output_dir: run folder, e.g. runs/my-run
        data: CSV/Parquet/Arrow file(s) of series
        preset: architecture preset of any family (tirex-1m, tirex2-test, ...)
        model_config: architecture from a JSON/YAML TiRexConfig file (overrides --preset)
        mix: training data options
        synthetic: synthetic series counts
        run: run options
        train: training options
    """
    base = {"output_dir": output_dir, "data": data, "preset": preset, "model_config": model_config}
    return run_command("pretrain", base, mix, synthetic, run, train)


def finetune(
    *,
    data: list[Path],
    output_dir: Path,
    model: str = "starter",
    no_auto: bool = False,
    mix: MixOptions,
    synthetic: SyntheticCounts,
    run: RunOptions,
    train: TrainOptions,
) -> int:
    """Fine-tune a TiRex or TiRex-2 model on your data.

    Args:
        data: CSV/Parquet/Arrow file(s) of series
        output_dir: run folder, e.g. runs/my-run
        model: base checkpoint: official model.ckpt or folder (TiRex or TiRex-2), rexforge
            folder, hub id, or 'starter'
        no_auto: fixed defaults instead of settings chosen from the data, and no zero-shot
            guard (for long continued-pretraining runs such as the starter's stages)
        mix: training data options
        synthetic: synthetic series counts
        run: run options
        train: training options
    """
    base = {"output_dir": output_dir, "data": data, "model": model, "no_auto": no_auto}
    return run_command("finetune", base, mix, synthetic, run, train)


def run_command(command: str, base: dict, mix, synthetic: dict, run, train: dict) -> int:
    """Run pretrain/finetune from the values of its options (one namespace, as ``run`` and
    the run record read them)."""
    counts = {SYNTHETIC_FAMILIES[name].option: n for name, n in synthetic.items()}
    args = SimpleNamespace(
        command=command,
        **base,
        **dataclasses.asdict(mix),
        **counts,
        **dataclasses.asdict(run),
        **train,
    )
    return _run(args)


@register_group(TrainOptions)
def _add_train_options(parser: CommandParser, command: str):
    """A flag for every ``TrainConfig`` option of ``command``: the field's type, help and
    default (None where fine-tuning leaves it to train.auto; pretrain's own where it has one)."""
    fields = [f for f in cli_fields() if command in f.metadata["commands"]]
    hints = typing.get_type_hints(TrainConfig)
    for f in fields:
        parser.hints[f.name] = hints[f.name]
        parser.spellings[f.name] = Spelling(
            flags=f.metadata["flags"],
            help=f.metadata["help"].format(default=_shown_default(f, command)),
            # A switch train.auto may turn on needs its --no- form to be turned off again.
            negatable=f.name in AUTO_OPTIONS,
            default=cli_default(f, command),
        )
    names = {f.name for f in fields}
    skip = {f.name for f in dataclasses.fields(TrainConfig)} - names
    parser.add_class_arguments(TrainConfig, nested_key=None, as_group=True, skip=skip)
    return lambda values: TrainOptions(values)


@register_group(SyntheticCounts)
def _add_synthetic_counts(parser: CommandParser, command: str):
    """A series-count flag per registered synthetic family (``data.mix.register_synthetic``)."""
    group = parser.add_argument_group("synthetic series (counts; 0 = none)")
    option_of = {family.option: name for name, family in SYNTHETIC_FAMILIES.items()}
    for option, name in option_of.items():
        parser.hints[option] = int
        group.add_argument(f"--{option}", type=int, default=0, help=SYNTHETIC_FAMILIES[name].help)
    return lambda values: SyntheticCounts({option_of[k]: n for k, n in values.items()})


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


def _run(args) -> int:
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
