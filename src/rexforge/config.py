"""TiRex architecture configuration and named presets.

``TiRexConfig`` holds exactly what an official TiRex checkpoint keeps under
``hyper_parameters``: ``model_config`` (patch sizes, quantiles, ``block_kwargs``,
``input_ff_dim``) and ``train_ctx_len``. It is plain data: it imports no torch, and it
round-trips through JSON and YAML.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rexforge.errors import ConfigError

DEFAULT_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# Keys the official checkpoint stores in ``block_kwargs`` although its code never reads them
# (the official loader drops every key its block dataclass lacks). We keep them verbatim so
# that a checkpoint written back in the official layout holds what it held when read, but
# they change nothing: in particular the official RMSNorm uses eps 1e-6 whatever
# ``norm_eps`` says, and so do we.
OFFICIAL_UNUSED_BLOCK_KEYS = (
    "all_slstm",
    "return_last_states",
    "vocab_size",
    "norm_eps",
    "use_bias",
    "norm_reduction_force_float32",
    "add_out_norm",
)


def round_up_to_multiple(value: float, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value`` (the feed-forward width rule)."""
    return int(math.ceil(value / multiple) * multiple)


@dataclass
class BlockConfig:
    """The sLSTM block stack, as the official ``block_kwargs`` describes it."""

    embedding_dim: int = 512
    num_blocks: int = 12
    num_heads: int = 4
    # 512 * 2.6667 = 1365.3 -> rounded up to a multiple of 64 = 1408, the official FFN width.
    ffn_proj_factor: float = 2.6667
    # Fixed by the sLSTM cell (states y, c, n, m and gates i, f, z, o); stored for fidelity.
    num_states: int = 4
    num_gates: int = 4
    # Official keys with no effect on the architecture (see OFFICIAL_UNUSED_BLOCK_KEYS) and any
    # other key found in a foreign checkpoint: carried, never interpreted.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.embedding_dim // self.num_heads

    @property
    def ffn_dim(self) -> int:
        return round_up_to_multiple(self.embedding_dim * self.ffn_proj_factor, 64)


@dataclass
class TiRexConfig:
    """Architecture of a TiRex model, field for field as the official checkpoint holds it."""

    input_patch_size: int = 32
    output_patch_size: int = 32
    quantiles: list[float] = field(default_factory=lambda: list(DEFAULT_QUANTILES))
    block_kwargs: BlockConfig = field(default_factory=BlockConfig)
    input_ff_dim: int = 2048
    # Context the model was trained on; the official forecaster pads or cuts every series to it.
    train_ctx_len: int = 2048

    def __post_init__(self) -> None:
        if isinstance(self.block_kwargs, dict):
            self.block_kwargs = _block_from_dict(self.block_kwargs)
        self.quantiles = [float(q) for q in self.quantiles]
        self.validate()

    # -- derived sizes -------------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        return self.input_patch_size

    @property
    def num_quantiles(self) -> int:
        return len(self.quantiles)

    @property
    def median_index(self) -> int:
        return self.quantiles.index(0.5)

    # -- checks ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise one ConfigError naming every impossible value."""
        b = self.block_kwargs
        problems = []
        if self.input_patch_size != self.output_patch_size:
            problems.append(
                f"input_patch_size ({self.input_patch_size}) must equal output_patch_size "
                f"({self.output_patch_size})"
            )
        for name in ("input_patch_size", "input_ff_dim", "train_ctx_len"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1")
        for name in ("embedding_dim", "num_blocks", "num_heads"):
            if int(getattr(b, name)) < 1:
                problems.append(f"block_kwargs.{name} must be >= 1")
        if b.num_heads >= 1 and b.embedding_dim % b.num_heads:
            problems.append(
                f"block_kwargs.embedding_dim ({b.embedding_dim}) must be a multiple of "
                f"num_heads ({b.num_heads})"
            )
        if b.num_states != 4 or b.num_gates != 4:
            problems.append("block_kwargs.num_states and num_gates must be 4 (sLSTM cell)")
        if not self.quantiles or any(not 0.0 < q < 1.0 for q in self.quantiles):
            problems.append("quantiles must be a non-empty list of levels in (0, 1)")
        elif 0.5 not in self.quantiles:
            problems.append("quantiles must contain 0.5 (the median is the returned mean)")
        if self.input_patch_size >= 1 and self.train_ctx_len % self.input_patch_size:
            problems.append(
                f"train_ctx_len ({self.train_ctx_len}) must be a multiple of the patch size "
                f"({self.input_patch_size})"
            )
        if problems:
            raise ConfigError("invalid TiRex config: " + "; ".join(problems))

    # -- conversions -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat rexforge form: the fields above, ``block_kwargs`` as a plain dict."""
        return {
            "input_patch_size": self.input_patch_size,
            "output_patch_size": self.output_patch_size,
            "quantiles": list(self.quantiles),
            "block_kwargs": _block_to_dict(self.block_kwargs),
            "input_ff_dim": self.input_ff_dim,
            "train_ctx_len": self.train_ctx_len,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TiRexConfig:
        """Inverse of ``to_dict``; also accepts the official ``hyper_parameters`` layout."""
        if not isinstance(data, dict):
            raise ConfigError(f"a TiRex config must be a mapping, got {type(data).__name__}")
        if "model_config" in data:
            return cls.from_hyper_parameters(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown TiRex config key(s): {', '.join(unknown)}")
        return cls(**copy.deepcopy(data))

    def to_hyper_parameters(self) -> dict[str, Any]:
        """The official checkpoint's ``hyper_parameters`` dict."""
        model_config = self.to_dict()
        train_ctx_len = model_config.pop("train_ctx_len")
        return {"model_config": model_config, "train_ctx_len": train_ctx_len}

    @classmethod
    def from_hyper_parameters(cls, hyper_parameters: dict[str, Any]) -> TiRexConfig:
        if not isinstance(hyper_parameters, dict) or "model_config" not in hyper_parameters:
            raise ConfigError("hyper_parameters lack 'model_config'")
        unknown = sorted(set(hyper_parameters) - {"model_config", "train_ctx_len"})
        if unknown:
            raise ConfigError(f"unknown hyper_parameters key(s): {', '.join(unknown)}")
        model_config = dict(hyper_parameters["model_config"])
        if "train_ctx_len" in hyper_parameters:
            model_config["train_ctx_len"] = hyper_parameters["train_ctx_len"]
        return cls.from_dict(model_config)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_file(cls, path: str | Path) -> TiRexConfig:
        """Read a config from a ``.json`` or ``.yaml``/``.yml`` file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # parser errors differ by format; report them alike
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"config file {path} is not valid: {first_line}") from None
        return cls.from_dict(data)

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> TiRexConfig:
        """A preset by name (see ``list_presets``), with optional field overrides."""
        if name not in PRESETS:
            raise ConfigError(
                f"'{name}' is not a known TiRex preset; known: {', '.join(list_presets())}"
            )
        data = copy.deepcopy(PRESETS[name])
        block_overrides = overrides.pop("block_kwargs", None) or {}
        data.update(overrides)
        data["block_kwargs"].update(block_overrides)
        return cls.from_dict(data)


def _block_from_dict(data: dict[str, Any]) -> BlockConfig:
    data = dict(data)
    typed = {f.name for f in dataclasses.fields(BlockConfig)} - {"extra"}
    extra = dict(data.pop("extra", {}) or {})
    # Foreign keys are kept in ``extra``: the official loader ignores them too, and refusing
    # them would refuse real checkpoints. They are reported by ``rexforge info``.
    for key in list(data):
        if key not in typed:
            extra[key] = data.pop(key)
    missing = [k for k in ("embedding_dim", "num_blocks", "num_heads") if k not in data]
    if missing:
        raise ConfigError(f"block_kwargs lack required key(s): {', '.join(missing)}")
    try:
        return BlockConfig(**data, extra=extra)
    except TypeError as exc:
        raise ConfigError(f"invalid block_kwargs: {exc}") from None


def _block_to_dict(block: BlockConfig) -> dict[str, Any]:
    out = {
        "embedding_dim": block.embedding_dim,
        "num_blocks": block.num_blocks,
        "num_heads": block.num_heads,
        "ffn_proj_factor": block.ffn_proj_factor,
        "num_states": block.num_states,
        "num_gates": block.num_gates,
    }
    out.update(copy.deepcopy(block.extra))
    return out


def _preset(embedding_dim, num_blocks, num_heads, input_ff_dim, train_ctx_len, extra=None):
    return {
        "input_patch_size": 32,
        "output_patch_size": 32,
        "quantiles": list(DEFAULT_QUANTILES),
        "block_kwargs": {
            "embedding_dim": embedding_dim,
            "num_blocks": num_blocks,
            "num_heads": num_heads,
            "ffn_proj_factor": 2.6667,
            **(extra or {}),
        },
        "input_ff_dim": input_ff_dim,
        "train_ctx_len": train_ctx_len,
    }


# The official block_kwargs, including the keys its code ignores (see above).
_OFFICIAL_EXTRA = {
    "all_slstm": True,
    "return_last_states": True,
    "vocab_size": 0,
    "norm_eps": 1e-5,
    "use_bias": False,
    "norm_reduction_force_float32": True,
    "add_out_norm": True,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The released TiRex: 35,291,200 parameters.
    "tirex-35m": _preset(512, 12, 4, 2048, 2048, _OFFICIAL_EXTRA),
    # Smaller members of the family for CPU pretraining and experiments.
    "tirex-6m": _preset(256, 8, 4, 1024, 2048),  # 6,366,528 parameters
    "tirex-1m": _preset(128, 6, 4, 512, 1024),  # 1,445,056
    "tirex-300k": _preset(64, 4, 4, 256, 512),  # 328,704
    # Tests only: a few thousand parameters, two blocks, two heads.
    "tirex-test": _preset(16, 2, 2, 32, 256),
}


def list_presets() -> list[str]:
    return list(PRESETS)
