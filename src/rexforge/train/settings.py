"""``TrainConfig``: every resolved training option in one plain dataclass, plus the schedule.

It is what a run's ``config.yaml`` holds under ``train`` and what the LightningModule saves as
hyper-parameters, so a Lightning checkpoint alone says how it was trained.

Defaults (the TiRex paper publishes no optimizer settings; these are our choices): AdamW
(betas 0.9/0.95, weight decay 0.01 on >=2-D weights only), linear warmup then cosine decay to
10% of the peak, gradient clipping at norm 1. Fine-tuning uses a lower peak lr (1e-4) than
pretraining (1e-3, ``rexforge pretrain``'s default); LoRA adapters tolerate a higher one.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from rexforge.errors import ConfigError, collect_problems

# Defined here, without torch, so that building the CLI parser imports no torch (``lora`` and
# ``modes`` use them from here).
Mode = Literal["scratch", "full", "freeze", "lora"]
MODES = typing.get_args(Mode)
# LoRA on TiRex: the sLSTM gate projections and the feed-forward projections of every block
# (each family's default: ``train.family.TrainingFamily.lora_targets``).
DEFAULT_TARGETS = (
    "blocks.*.slstm_layer.fgate",
    "blocks.*.slstm_layer.igate",
    "blocks.*.slstm_layer.zgate",
    "blocks.*.slstm_layer.ogate",
    "blocks.*.ffn.proj_*",
)


# Defaults that helpers outside ``TrainConfig`` share (``masking``, ``lora``, ``modes``), so
# that each is written once.
MASK_MAX_START_PROB = 0.15
MASK_MAX_RUN = 8
LORA_RANK = 8
LORA_ALPHA = 16.0

# Which subcommands take an option (``rexforge pretrain`` trains from scratch: no mode options).
BOTH = ("pretrain", "finetune")
FINETUNE = ("finetune",)


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    default_factory: Any = dataclasses.MISSING,
    flags: tuple[str, ...] = (),
    commands: tuple[str, ...] = BOTH,
    pretrain_default: Any = dataclasses.MISSING,
) -> Any:
    """A ``TrainConfig`` field that is also a ``rexforge pretrain/finetune`` flag.

    help: the flag's help; ``{default}`` in it becomes the default the command shows (a
    fixed value, or "chosen from the data" where ``train.auto`` chooses it). flags: the
    spellings, when not just ``--<name-with-dashes>``. pretrain_default: what ``rexforge
    pretrain`` uses instead of the field default (a run from scratch wants more steps and a
    higher lr than a fine-tune). The type and the choices (``Literal``) are the field's.
    """
    metadata = {
        "help": help,
        "flags": flags,
        "commands": commands,
    }
    if pretrain_default is not dataclasses.MISSING:
        metadata["pretrain_default"] = pretrain_default
    return field(default=default, default_factory=default_factory, metadata=metadata)


def cli_fields() -> list[dataclasses.Field]:
    """The ``TrainConfig`` fields that are command-line options, in ``--help`` order."""
    return [f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata]


def field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


@dataclass
class TrainConfig:
    """Every training option. The fields made with ``option`` are also the flags of
    ``rexforge pretrain/finetune`` (``cli_parser`` adds them as one option group, through
    ``train.command``); the field order is the ``--help`` order."""

    mode: Mode = option("full", help="which parameters train", commands=FINETUNE)
    # Horizon H the run is validated on; training windows use H rounded up to whole patches.
    prediction_length: int = option(
        64,
        flags=("--horizon", "--prediction-length"),
        help="forecast horizon H (validation; windows use whole patches)",
    )
    # Context C of every training window (rounded up to whole patches); None = train_ctx_len.
    context_length: int | None = option(
        None, help="context of each training window (default: the model's train_ctx_len)"
    )
    max_steps: int = option(1000, pretrain_default=20000, help="optimizer steps ({default})")
    # Wall-time limit of the training ("90s", "10m", "2h"; None = none): training stops at the
    # first step past it, and the best checkpoint so far is what the guard compares.
    time_budget: str | None = option(
        None,
        help="stop training after this wall time (90s, 10m, 2h); the best checkpoint so far "
        "is kept",
    )
    batch_size: int = option(32, help="windows per optimizer step ({default})")
    lr: float = option(1e-4, pretrain_default=1e-3, help="peak learning rate ({default})")
    weight_decay: float = option(0.01, help="AdamW weight decay of the >=2-D weights")
    beta1: float = 0.9
    beta2: float = 0.95
    # None = min(100, max_steps // 10): a short run (a demo's 80 steps) is not all warmup.
    warmup_steps: int | None = option(
        None, help="linear lr warmup (default: min(100, max-steps / 10))"
    )
    min_lr_ratio: float = option(0.1, help="final lr / peak lr")
    grad_clip: float = option(1.0, help="max gradient norm (0 = off)")
    accumulate_grad_batches: int = option(
        1, help="batches whose gradients add up to one optimizer step"
    )
    # Contiguous patch masking; max_start_prob 0 turns it off.
    mask_max_start_prob: float = option(
        MASK_MAX_START_PROB,
        help="contiguous patch masking: max per-patch run-start probability (0 = off)",
    )
    mask_max_run: int = option(MASK_MAX_RUN, help="masking: max run length")
    # Share of training windows whose future inputs are all masked, as a multi-patch forecast
    # feeds them (objective.mask_future; 0 = off). Only windows with a future longer than one
    # patch are affected. TiRex only: TiRex-2 forecasts its whole window in one pass and never
    # sees its own forecasts as inputs, so there is nothing to mask.
    future_mask_prob: float = option(
        0.5,
        help="TiRex: share of windows whose future inputs are all masked, as a forecast past "
        "one patch feeds them (0 = teacher forcing only; TiRex-2 has no such inputs)",
    )
    # Share of training windows whose context is cut to a random shorter length (0 = off).
    context_truncation_prob: float = option(
        0.0,
        help="share of windows whose context is cut to a random shorter length (0 = off)",
    )
    # Shortest kept context (None = one patch); log-uniform kept lengths favour short ones.
    context_truncation_min_length: int | None = option(
        None, help="shortest context kept by truncation (default: one patch)"
    )
    context_truncation_log_uniform: bool = option(
        False, help="draw truncated context lengths log-uniformly (more very short contexts)"
    )
    # Share of training batches whose contexts lose a random number of leading patches
    # (objective.drop_leading_patches; 0 = off).
    context_shorten_prob: float = option(
        0.0,
        help="share of batches whose contexts lose 1..N-1 leading patches (fewer empty patches "
        "before short series, shorter contexts of long ones): the model learns to forecast at "
        "any context length, not only the one it trains at (0 = off)",
    )
    # Share of training windows whose inputs get one-off outliers the targets do not have
    # (objective.inject_outliers; 0 = off).
    context_outlier_prob: float = option(
        0.0,
        help="share of windows whose inputs get one-off outliers (1-3 steps, 2-8 stds) that "
        "the targets do not have: teaches looking through one-off events (0 = off)",
    )
    # Series drawn with probability ~ (its window count) ** power: 1 = every window equally
    # likely (long series dominate), 0.5 = square root, 0 = every series equally likely.
    series_weight_power: float = option(
        1.0,
        help="draw series with probability ~ windows**p: 1 = uniform over windows (default), "
        "0.5 = more weight to short series, 0 = uniform over series",
    )
    # Windows whose future runs past a series' end (NaN-padded, ignored by the loss): lets
    # series shorter than context + prediction window train, as short yearly data needs.
    partial_future: bool = option(
        False,
        help="also train on windows whose future runs past a series' end (short series); {default}",
    )
    freeze_blocks: int = option(
        0,
        commands=FINETUNE,
        help="mode freeze: freeze the input embedding and the first K blocks (default: half of "
        "them)",
    )
    head_only: bool = option(
        False,
        commands=FINETUNE,
        help="mode freeze: train only out_norm and the output head",
    )
    lora_rank: int = option(
        LORA_RANK, commands=FINETUNE, help="mode lora: adapter rank (default: auto)"
    )
    lora_alpha: float = option(LORA_ALPHA, commands=FINETUNE, help="mode lora: scaling alpha")
    # None: the model family's projections (TiRex: sLSTM gates and feed-forward; TiRex-2:
    # mLSTM/sLSTM gates and projections, attention, feed-forward).
    lora_targets: list[str] | None = option(
        None,
        commands=FINETUNE,
        help="mode lora: glob patterns of adapted module names (default: the family's projections)",
    )
    seed: int = option(
        0,
        help="seed of the initialisation, the window sampling, the masking and the synthetic "
        "series",
    )
    # sLSTM kernel, fp32 numerics (the bf16 rounding emulation exists to reproduce official
    # inference, not to train). "auto" = the fastest eager kernel (cpu_fused: hand-written
    # backward, gradients tested against torch_ref); "cpu_compiled" is faster per step on CPU
    # after a compilation per window shape (~1 min), worth it for long runs.
    kernel: str = option(
        "auto",
        help="sLSTM kernel for training: auto (cpu_fused), torch_ref, cpu_compiled (compiles "
        "once per window shape, ~1 min; fastest for long CPU runs)",
    )
    # torch.compile the whole training loss (embedding, blocks with the reference recurrence,
    # head, pinball loss; forward and backward) instead of running it eagerly. The first step
    # compiles (~40 s for tirex-test, ~2 min for tirex-1m, ~3.5 min for tirex-35m on 2 cores;
    # Inductor's disk cache makes later runs start in seconds); after it a step is 3.3-3.9x
    # faster than the plain autograd reference at tirex-test size, 2-3.3x at tirex-1m, 1.6x at
    # tirex-35m (benchmarks/bench_train.py). The kernel setting then applies to validation only.
    compile: bool = option(
        False,
        help="torch.compile the whole model and loss for training (the first step compiles: "
        "~1-4 min by model size; faster steps after, most for small models)",
    )
    val_every_n_steps: int = option(100, help="validate every N optimizer steps ({default})")
    # Validation windows held out at the end of every series, one horizon apart (rolling
    # origins; series too short for all of them keep fewer, and at most a quarter of their
    # length, but always one). None = 1, or chosen from the data when fine-tuning (train.auto):
    # a few series give a one-window tail too noisy to choose a checkpoint or judge a gain on.
    validation_windows: int | None = option(
        None,
        help="held-out windows at the end of each series, one horizon apart (default 1; "
        "fine-tuning: chosen from the data)",
    )
    checkpoint_every_n_steps: int | None = option(
        None, help="save a step checkpoint every N optimizer steps (default: at each validation)"
    )
    early_stopping_patience: int | None = option(
        None,
        help="stop after this many validations without improvement (fine-tuning default: 3; "
        "0 = never)",
    )
    num_workers: int = option(0, help="data-loader worker processes")
    # Machines of a distributed run, each running --devices processes (Lightning's num_nodes):
    # start one `rexforge pretrain/finetune` per process with torchrun or srun, which set the
    # ranks (train.launch checks that they match). batch_size stays per process: an optimizer
    # step trains batch_size x devices x num_nodes windows, the same ones as one process with
    # that batch (the datamodule draws the global batch, each rank keeps its rows).
    num_nodes: int = option(
        1,
        help="machines of a distributed run, each with --devices processes (launch one "
        "process per device with torchrun or srun); batch-size is per process",
    )
    # Filled in by ``fit``: where the starting weights came from, and whether they are (or
    # descend from) NXAI's, so that a training checkpoint read as a model keeps the notice.
    base_checkpoint: str | None = None
    base_sha256: str | None = None
    derived_from_nxai_weights: bool = False
    # Also filled in by ``fit``: the base's default rollout, which the held-out tail's
    # forecasts use, so that the guard judges the forecasts the exported model will make.
    rollout: str = "exact"

    def validate(self) -> TrainConfig:
        """Raise one ConfigError naming every bad option (by its CLI flag)."""
        problems = []
        if self.mode not in MODES:
            problems.append(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in (
            "prediction_length",
            "max_steps",
            "batch_size",
            "accumulate_grad_batches",
            "mask_max_run",
            "lora_rank",
            "val_every_n_steps",
            "num_nodes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}"
                )
        if self.warmup_steps is None and isinstance(self.max_steps, int):
            self.warmup_steps = default_warmup_steps(self.max_steps)
        if self.lora_targets is not None:  # a b, a,b or a list of either, as other lists
            parts = [
                str(t)
                for t in (
                    [self.lora_targets] if isinstance(self.lora_targets, str) else self.lora_targets
                )
            ]
            self.lora_targets = [p.strip() for t in parts for p in t.split(",") if p.strip()]
        if self.validation_windows is not None and (
            isinstance(self.validation_windows, bool)
            or not isinstance(self.validation_windows, int)
            or self.validation_windows < 1
        ):
            problems.append(
                f"--validation-windows must be an integer >= 1, got {self.validation_windows!r}"
            )
        if self.context_length is not None and self.context_length < 1:
            problems.append(f"--context-length must be >= 1, got {self.context_length}")
        for name in (  # lr: "> 0" below
            "weight_decay",
            "grad_clip",
            "warmup_steps",
            "freeze_blocks",
            "num_workers",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be >= 0")
        if self.time_budget is not None:
            try:
                parse_duration(self.time_budget)
            except ValueError as exc:
                problems.append(f"--time-budget: {exc}")
        if self.lr <= 0:
            problems.append("--lr must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append("--min-lr-ratio must be in [0, 1]")
        if (
            self.context_truncation_min_length is not None
            and self.context_truncation_min_length < 1
        ):
            raise ConfigError(
                "--context-truncation-min-length must be >= 1, got "
                f"{self.context_truncation_min_length}"
            )
        if not 0 <= self.series_weight_power <= 1:
            problems.append("--series-weight-power must be in [0, 1]")
        if not 0 <= self.context_truncation_prob <= 1:
            problems.append("--context-truncation-prob must be in [0, 1]")
        if not 0 <= self.context_shorten_prob <= 1:
            problems.append("--context-shorten-prob must be in [0, 1]")
        if not 0 <= self.future_mask_prob <= 1:
            problems.append("--future-mask-prob must be in [0, 1]")
        if not 0 <= self.context_outlier_prob <= 1:
            problems.append("--context-outlier-prob must be in [0, 1]")
        if not 0 <= self.mask_max_start_prob <= 1:
            problems.append("--mask-max-start-prob must be in [0, 1]")
        collect_problems(problems, ConfigError, "invalid training options")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**data)


def default_warmup_steps(max_steps: int) -> int:
    """Warmup when none is given: 100 steps, but at most a tenth of the run."""
    return min(100, max(0, max_steps) // 10)


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (pure function of the step):
    linear warmup from 1/warmup to 1, then cosine decay to ``min_ratio`` at ``max_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``"90s"``, ``"10m"``, ``"1.5h"`` or ``"600"`` (seconds)."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in _DURATION_UNITS else "s"
    number = value[:-1] if value[-1:] in _DURATION_UNITS else value
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise ValueError(f"expected a duration such as 90s, 10m or 2h, got {text!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"the duration must be > 0, got {text!r}")
    return seconds


def round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple
