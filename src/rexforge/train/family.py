"""What the one training loop asks a model family: ``TrainingFamily``, the family's hooks.

``train.loop.fit``, ``train.module.TrainingModule``, ``train.modes`` and the guard never name a
family; they ask the hooks of the family the base model belongs to
(``training_family(config)``, through ``rexforge.registry``). A family's hooks say

* how its training data are cut into windows and held-out tails (``windows``),
* how a batch becomes a loss (``loss_function``) and a held-out batch forecasts
  (``validation_forecasts``, through the family's own forecasting code, so that the guard
  judges the forecasts the exported model will make),
* which parameters the modes touch (``embedding_prefixes``, ``block_prefix``,
  ``head_prefixes``, ``lora_targets``),
* how a trained model is written (``export``).

The TiRex hooks are ``train.tirex_family``, the TiRex-2 hooks ``train.tirex2_family``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset


@dataclass(frozen=True)
class RankShare:
    """The part of a global training batch that one of ``world`` processes trains on.

    Every rank draws the same global batch (``train.datamodule``) and masks it as one process
    would, then keeps its own contiguous share of the windows (``rank_rows``). DDP averages the
    ranks' gradients, so each rank's mean loss is weighted by ``world x its valid targets /
    the batch's`` (``weight``): the average is then the gradient of the global batch's mean
    loss, as in one process, also when missing targets are spread unevenly."""

    rank: int
    world: int

    def rows(self, windows: int) -> slice:
        from rexforge.train.datamodule import rank_rows

        return rank_rows(windows, self.rank, self.world)

    def weight(self, own_valid: torch.Tensor, all_valid: torch.Tensor) -> torch.Tensor:
        return self.world * own_valid / all_valid.clamp(min=1)


@dataclass
class TrainingWindows:
    """A run's data, as the loop needs it.

    sampler: the training windows (``num_windows`` of them; the datamodule draws from it).
    validation: the held-out tail's windows, or None without validation.
    num_series: series (items) used for training.
    make_stream: ``(*, seed, batch_size) -> IterableDataset``, the endless stream of training
        batches (in a distributed run, of global batches: every rank draws the same ones).
    collate / val_collate: the data loaders' collate functions (None: torch's default).
    """

    sampler: Any
    validation: Dataset | None
    num_series: int
    make_stream: Callable[..., IterableDataset]  # called with seed=, batch_size=
    collate: Callable | None = None
    val_collate: Callable | None = None


@dataclass
class ValidationForecasts:
    """One held-out batch, forecast: ``y`` [N, H] the truth (NaN past a short tail), ``q``
    [N, H, Q] the quantile forecasts, ``scale`` [N] each forecast's MASE scale, ``loss`` the
    batch's validation loss (a scalar tensor)."""

    y: torch.Tensor
    q: torch.Tensor
    scale: torch.Tensor
    loss: torch.Tensor


class TrainingFamily(abc.ABC):
    """The training hooks of one model family; subclasses fill every abstract method (a
    family missing one cannot be instantiated).

    Stateless: the registry makes a fresh instance whenever one is asked for.
    """

    name: str = ""
    # Parameter-name prefixes of the input embedding and of the output head (mode freeze).
    embedding_prefixes: tuple[str, ...] = ()
    head_prefixes: tuple[str, ...] = ()
    # Glob patterns of the modules LoRA adapts when the run names none.
    lora_targets: tuple[str, ...] = ()

    # -- the model -------------------------------------------------------------------------
    @abc.abstractmethod
    def block_prefix(self, index: int) -> str:
        """Parameter-name prefix of block ``index`` (freeze the first k)."""
        raise NotImplementedError

    @abc.abstractmethod
    def num_blocks(self, config) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    def patch_size(self, config) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    def default_context(self, config) -> int:
        """The context a run trains on when none is given: the model's own."""
        raise NotImplementedError

    @abc.abstractmethod
    def training_config(self, config, settings):
        """``config`` as the trained model stores it (e.g. its context set to the training
        windows'); checks the settings against the architecture (``ConfigError``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def build(self, config, settings) -> torch.nn.Module:
        """A randomly initialised network in training numerics (fp32)."""
        raise NotImplementedError

    @abc.abstractmethod
    def reinitialise(self, model: torch.nn.Module, seed: int) -> None:
        """Fresh random weights from ``seed`` (mode scratch)."""
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------------
    @abc.abstractmethod
    def series_lengths(self, train_series: Sequence) -> list[int]:
        """Steps of every training series or item (the automatic settings read them)."""
        raise NotImplementedError

    @abc.abstractmethod
    def windows(
        self,
        train_series,
        settings,
        config,
        validation: bool,
        skip_short: bool,
        validation_context: int | None = None,
    ):
        """-> ``TrainingWindows``: training windows and the held-out tail (never trained on).
        The tail's contexts have ``validation_context`` steps (default: the training context);
        each model scored on them cuts them to its own context."""
        raise NotImplementedError

    # -- objective -------------------------------------------------------------------------
    @abc.abstractmethod
    def loss_function(self, model: torch.nn.Module, settings) -> Callable:
        """``loss(batch, masking, generator, share) -> (loss, weight)`` for training batches:
        the mean loss of the batch (one process, ``share`` None; weight None), or of this
        rank's share of the global batch and the weight of that mean (``RankShare``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def validation_forecasts(self, model, batch, horizon: int, rollout: str) -> ValidationForecasts:
        raise NotImplementedError

    @abc.abstractmethod
    def batch_size_of(self, batch) -> int:
        """Windows in a training batch (a global one in a distributed run)."""
        raise NotImplementedError

    # -- export ----------------------------------------------------------------------------
    def export(self, folder: Path, config, state_dict: dict, metadata: dict) -> Path:
        """Write the trained model to ``folder`` in its family's layout (``write_export``:
        TiRex's rexforge folder plus its official file, TiRex-2's official folder); returns
        the official file (or folder) written."""
        from rexforge.io.checkpoint import Checkpoint, write_export

        return write_export(folder, Checkpoint(config, state_dict, metadata))


def training_family(config_or_model: Any) -> TrainingFamily:
    """The training hooks of the family a config (or a network with ``.config``) belongs to."""
    from rexforge.registry import family_of

    config = getattr(config_or_model, "config", config_or_model)
    return family_of(config).training_hooks
