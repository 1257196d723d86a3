"""Model families: one record per family, and the factory that builds any registered model.

A family (TiRex today, TiRex-2 next) is a ``ModelFamily``: its config class, its named
presets, a builder (config -> network), a pure ``checkpoint_filter`` (a raw state dict in
any layout the family knows -> our key names), a ``detect`` rule that recognises the family's
checkpoints and configs, and its forecaster class. Generic code asks the registry instead
of naming a family:

    create_model("tirex-1m")             # a preset of any family
    family_of(raw_checkpoint).name       # which family wrote this file
    list_models()                        # every preset of every family

This module imports no torch: families import their networks inside their builders, so
``import rexforge`` and preset listing stay cheap. The built-in families register
themselves when their module (``BUILTIN_FAMILY_MODULES``) is first imported, which the
query functions below do lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rexforge.errors import ConfigError

# Modules whose import registers a built-in family; imported on the first registry query.
BUILTIN_FAMILY_MODULES = ("rexforge.families.tirex", "rexforge.families.tirex2")


@dataclass(frozen=True)
class ModelFamily:
    """Everything generic code needs to know about one model family.

    name: the family's name (``"tirex"``), unique among families.
    config_class: the family's config dataclass; instances identify the family.
    presets: preset name -> zero-argument factory returning a fresh config.
    build: ``build(config, **kwargs) -> nn.Module``, a randomly initialised network.
    checkpoint_filter: ``filter(state_dict, config) -> state_dict``: pure; renames a raw state
        dict (any layout the family knows, e.g. an official release) to the builder's names.
    detect: ``detect(raw: dict) -> bool``: whether a raw checkpoint payload or config document
        belongs to this family. Must not raise.
    forecaster: the forecaster class, or its dotted path (``"pkg.module:Class"``) so that
        registering a family does not import torch; None for a family that has a network
        but no forecaster yet.
    describe: optional ``describe(config) -> [(label, text), ...]``: the rows on the
        architecture that ``rexforge info`` prints.
    write_folder: optional ``write_folder(path, checkpoint) -> path``: saves a
        ``rexforge.io.checkpoint.Checkpoint`` of this family in its official layout; None
        uses ``rexforge.io.checkpoint``'s TiRex writers.
    training: the family's training hooks (a ``rexforge.train.family.TrainingFamily``
        subclass), or its dotted path; None for a family that cannot train yet. The one
        training loop asks them for everything that differs between families.
    notice_metadata: ``notice_metadata(derived_from_nxai_weights) -> dict``, or its dotted
        path: the licence and notice metadata a model of this family carries; None gives
        TiRex's (``rexforge.io.checkpoint.nxai_metadata``).
    """

    name: str
    config_class: type
    presets: Mapping[str, Callable[[], Any]]
    build: Callable[..., Any]
    checkpoint_filter: Callable[[dict, Any], dict]
    detect: Callable[[dict], bool]
    forecaster: type | str | None
    describe: Callable[[Any], list[tuple[str, str]]] | None = field(default=None)
    write_folder: Callable[[Any, Any], Any] | None = field(default=None)
    training: type | str | None = field(default=None)
    notice_metadata: Callable[[bool], dict] | str | None = field(default=None)

    @property
    def forecaster_class(self) -> type:
        """The forecaster class, imported now if it was registered by its dotted path."""
        if self.forecaster is None:
            raise ConfigError(f"model family '{self.name}' has no forecaster yet")
        if not isinstance(self.forecaster, str):
            return self.forecaster
        return _import_dotted(self.forecaster)

    @property
    def training_hooks(self) -> Any:
        """An instance of the family's training hooks (imported now if registered by path)."""
        if self.training is None:
            raise ConfigError(f"model family '{self.name}' cannot be trained yet")
        hooks = self.training if not isinstance(self.training, str) else None
        return (hooks or _import_dotted(self.training))()

    def notice(self, derived_from_nxai_weights: bool) -> dict:
        """The licence and notice metadata of a model of this family."""
        if self.notice_metadata is None:
            from rexforge.io.checkpoint import nxai_metadata

            return nxai_metadata(derived_from_nxai_weights)
        make = self.notice_metadata
        return (_import_dotted(make) if isinstance(make, str) else make)(derived_from_nxai_weights)


def _import_dotted(path: str) -> Any:
    """``"pkg.module:Name"`` -> the object."""
    module_name, _, name = path.partition(":")
    return getattr(importlib.import_module(module_name), name)


_FAMILIES: dict[str, ModelFamily] = {}
_builtins_loaded = False


def _load_builtin_families() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    # Set first: a built-in module's import calls register_family, which must not recurse here.
    _builtins_loaded = True
    for module_name in BUILTIN_FAMILY_MODULES:
        importlib.import_module(module_name)


def register_family(family: ModelFamily) -> ModelFamily:
    """Add ``family``; refuses a family name or preset name that is already taken, since
    either would make ``create_model`` or ``get_family`` ambiguous."""
    _load_builtin_families()
    if family.name in _FAMILIES:
        raise ConfigError(f"model family '{family.name}' is already registered")
    owners = _preset_owners()
    taken = sorted(p for p in family.presets if p in owners)
    if taken:
        described = ", ".join(f"'{p}' (family '{owners[p]}')" for p in taken)
        raise ConfigError(
            f"model family '{family.name}' reuses preset name(s) already registered: {described}"
        )
    _FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> ModelFamily:
    """Remove and return a registered family (for plugins and tests that add one briefly)."""
    family = get_family(name)
    del _FAMILIES[name]
    return family


def list_families() -> list[str]:
    """Names of the registered families, in registration order."""
    _load_builtin_families()
    return list(_FAMILIES)


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``, or a ``ConfigError`` listing the known ones."""
    _load_builtin_families()
    if name not in _FAMILIES:
        raise ConfigError(
            f"'{name}' is not a known model family; known: {', '.join(_FAMILIES) or 'none'}"
        )
    return _FAMILIES[name]


def list_models() -> list[str]:
    """Every preset name of every family (family by family, in each family's order)."""
    _load_builtin_families()
    return [preset for family in _FAMILIES.values() for preset in family.presets]


def _preset_owners() -> dict[str, str]:
    return {preset: family.name for family in _FAMILIES.values() for preset in family.presets}


def family_of(config_or_checkpoint: Any) -> ModelFamily:
    """The family a config instance, raw checkpoint payload or config document belongs to.

    A config instance is matched by its class; a dict by the families' ``detect`` rules, of
    which exactly one must accept it. Raises ``ConfigError`` otherwise.
    """
    _load_builtin_families()
    if not isinstance(config_or_checkpoint, Mapping):
        for family in _FAMILIES.values():
            if isinstance(config_or_checkpoint, family.config_class):
                return family
        raise ConfigError(
            f"no registered model family has config type "
            f"{type(config_or_checkpoint).__name__}; known families: {', '.join(_FAMILIES)}"
        )
    matches = [family for family in _FAMILIES.values() if family.detect(config_or_checkpoint)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(
            "no registered model family recognises this checkpoint or config; "
            f"known families: {', '.join(_FAMILIES)}"
        )
    names = ", ".join(family.name for family in matches)
    raise ConfigError(f"checkpoint or config is claimed by several model families: {names}")


def require_family(config: Any, name: str, what: str, source: str) -> None:
    """One ``ConfigError`` when ``config`` is not of family ``name``: for the commands that
    work on one family only (``what``: "rexforge grow"; ``source``: the model as given)."""
    family = family_of(config)
    if family.name != name:
        raise ConfigError(f"{what} works on {name} models; {source} is a {family.name} model")


def resolve_config(spec: Any) -> tuple[ModelFamily, Any]:
    """``spec`` (a preset name, a family name, or a config instance) -> (family, config).

    A family name gives that family's default config (its config class without arguments).
    """
    _load_builtin_families()
    if not isinstance(spec, str):
        return family_of(spec), spec
    owners = _preset_owners()
    if spec in owners:
        family = _FAMILIES[owners[spec]]
        return family, family.presets[spec]()
    if spec in _FAMILIES:
        family = _FAMILIES[spec]
        return family, family.config_class()
    raise ConfigError(
        f"'{spec}' is not a known model preset or family; known presets: "
        f"{', '.join(owners) or 'none'}; known families: {', '.join(_FAMILIES) or 'none'}"
    )


def create_model(spec: Any, state_dict: dict | None = None, **build_kwargs: Any) -> Any:
    """Build the network ``spec`` names (a preset, a family name or a config instance).

    build_kwargs go to the family's builder (for TiRex: ``kernel``, ``numerics``). With
    ``state_dict`` (raw, in any layout the family's ``checkpoint_filter`` knows) the weights
    are renamed by the filter and loaded strictly: every missing, unexpected or mis-shaped
    key is named in one ``CheckpointError``.
    """
    family, config = resolve_config(spec)
    model = family.build(config, **build_kwargs)
    if state_dict is not None:
        # Imported here: loading weights needs torch, listing and resolving configs does not.
        from rexforge.io.checkpoint import load_state_dict_strict

        filtered = family.checkpoint_filter(state_dict, config)
        load_state_dict_strict(model, filtered, f"{family.name} state dict")
    return model
