"""TiRex-2 architecture configuration and named presets.

``TiRex2Config`` is plain data (no torch; JSON round trip through ``to_dict``/``from_dict``).
The official ``config.json`` nests its block stack as named templates plus a per-block
recipe; ``from_official``/``to_official`` translate that layout to and from our flat one.
All official templates share their widths and head counts, so one value each suffices
here, and a block's recipe entry reduces to its time mixer: ``"mlstm"`` or ``"slstm"``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from rexforge.config import DEFAULT_QUANTILES
from rexforge.errors import ConfigError, collect_problems

TIME_MIXERS = ("mlstm", "slstm")
STACK_OUT_NORMS = ("layernorm", "rmsnorm", "none")
# The official template names map to our time-mixer names ("bi-mlstm" -> "mlstm").
OFFICIAL_MODEL_TYPE = {"mlstm": "bi-mlstm", "slstm": "bi-slstm"}


@dataclass
class TiRex2Config:
    """Architecture of a TiRex-2 network; the defaults are the released model's."""

    embedding_dim: int = 512
    num_blocks: int = 12
    # Per block, the time mixer that precedes the shared attention variate mixer.
    time_mixers: list[str] = field(default_factory=lambda: ["mlstm", "slstm"] * 6)
    num_heads: int = 4  # mLSTM heads and attention heads
    num_slstm_heads: int = 4
    input_patch_size: int = 32
    output_patch_size: int = 32
    quantiles: list[float] = field(default_factory=lambda: list(DEFAULT_QUANTILES))
    input_ff_dim: int = 2048
    # Output head hidden width = int(embedding_dim * h_expand).
    h_expand: float = 4.0
    context_len: int = 2048
    future_len: int = 320
    act_func: str = "SiLU"  # a torch.nn activation class name
    dropout: float = 0.1
    use_qk_norm: bool = True
    stack_out_norm: str = "layernorm"  # T5-style (no mean subtraction), or "rmsnorm", "none"
    stack_out_norm_eps: float = 1e-7
    scaler_eps: float = 1e-8
    scaler_arcsinh: bool = True
    scaler_binaryaware: bool = True
    # Stored in each official template, but the official network never reads it (its norms
    # use the xLSTM default 1e-6); kept so a config written back holds what it held.
    template_eps: float = 1e-7
    # Forecast-time defaults the checkpoint carries; the network ignores them.
    tta_sign_flip: bool = False
    tta_diff: bool = True

    def __post_init__(self) -> None:
        self.time_mixers = list(self.time_mixers)
        self.quantiles = [float(q) for q in self.quantiles]
        self.validate()

    # -- derived sizes -----------------------------------------------------------------------
    @property
    def num_quantiles(self) -> int:
        return len(self.quantiles)

    @property
    def ffn_dim(self) -> int:
        """The xLSTM gated feed-forward width: 512 * 2.6667 = 1365.3 -> 1408.

        The official rounding is floor((x + 63) / 64) * 64, not ceil(x / 64) * 64: the two differ
        when x lies just above a multiple of 64 (48 * 2.6667 = 128.002 -> 128, not 192)."""
        return int((self.embedding_dim * 2.6667 + 63) // 64) * 64

    @property
    def head_hidden_dim(self) -> int:
        return int(self.embedding_dim * self.h_expand)

    def validate(self) -> None:
        problems = []
        E = self.embedding_dim
        if len(self.time_mixers) != self.num_blocks:
            problems.append(
                f"time_mixers has {len(self.time_mixers)} entries, not {self.num_blocks}"
            )
        unknown = sorted(set(self.time_mixers) - set(TIME_MIXERS))
        if unknown:
            problems.append(f"unknown time mixer(s) {unknown}; known: {list(TIME_MIXERS)}")
        for name in ("num_heads", "num_slstm_heads"):
            heads = getattr(self, name)
            if heads < 1 or E % heads:
                problems.append(f"{name}={heads} does not divide embedding_dim={E}")
        if E % (2 * self.num_heads):
            problems.append(f"embedding_dim={E} / 2 (the mLSTM query width) is not split by heads")
        if self.input_patch_size != self.output_patch_size:
            problems.append("input_patch_size must equal output_patch_size")
        if self.future_len % self.input_patch_size:
            problems.append(f"future_len={self.future_len} is not a multiple of the patch size")
        if self.stack_out_norm not in STACK_OUT_NORMS:
            problems.append(f"stack_out_norm must be one of {STACK_OUT_NORMS}")
        collect_problems(problems, ConfigError, "invalid TiRex-2 config")

    # -- our flat form ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TiRex2Config:
        """Inverse of ``to_dict``; also accepts an official ``config.json`` document."""
        if not isinstance(data, dict):
            raise ConfigError(f"a TiRex-2 config must be a mapping, got {type(data).__name__}")
        if "stack_config" in data:
            return cls.from_official(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown TiRex-2 config key(s): {', '.join(unknown)}")
        return cls(**copy.deepcopy(data))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> TiRex2Config:
        if name not in PRESETS:
            raise ConfigError(
                f"'{name}' is not a known TiRex-2 preset; known: {', '.join(PRESETS)}"
            )
        return cls.from_dict({**copy.deepcopy(PRESETS[name]), **overrides})

    # -- the official config.json ------------------------------------------------------------
    def to_official(self) -> dict[str, Any]:
        """The official ``config.json`` document (what ``tirex2.TiRex2(**doc)`` takes)."""
        templates = {
            f"{mixer}_attn": _official_template(self, mixer)
            for mixer in dict.fromkeys(self.time_mixers)
        }
        P = self.input_patch_size
        doc = {
            "stack_config": {
                "templates": templates,
                "recipe": [f"{m}_attn" for m in self.time_mixers],
            },
            "num_blocks": self.num_blocks,
            "embedding_dim": self.embedding_dim,
            "input_patch_size": P,
            "output_patch_size": self.output_patch_size,
            "quantiles": list(self.quantiles),
            "tokenizer_cfg": {
                "output_patch_size": P,
                "input_patch_size": P,
                "input_patch_stride": P,
            },
            "scaler_cfg": {
                "eps": self.scaler_eps,
                "use_arcsinh": self.scaler_arcsinh,
                "binaryaware": self.scaler_binaryaware,
            },
            "h_expand": self.h_expand,
            "context_len": self.context_len,
            "future_len": self.future_len,
            "input_ff_dim": self.input_ff_dim,
            "act_func": self.act_func,
            "dropout": self.dropout,
            "use_qk_norm": self.use_qk_norm,
            "tta_sign_flip": self.tta_sign_flip,
            "tta_diff": self.tta_diff,
        }
        if self.stack_out_norm != "none":
            doc["stack_out_norm_config"] = {
                "eps": self.stack_out_norm_eps,
                "use_rmsnorm": self.stack_out_norm == "rmsnorm",
            }
        return doc

    @classmethod
    def from_official(cls, doc: dict[str, Any]) -> TiRex2Config:
        """Read an official ``config.json`` document; every problem is named in one error."""
        return cls(**_fields_from_official(doc))


def _official_template(config: TiRex2Config, mixer: str) -> dict[str, Any]:
    E = config.embedding_dim
    return {
        "time_mixer": {
            "model_type": OFFICIAL_MODEL_TYPE[mixer],
            "embedding_dim": E,
            "num_heads": config.num_heads,
            "num_slstm_heads": config.num_slstm_heads,
        },
        "variate_mixer": {"embedding_dim": E, "num_heads": config.num_heads},
        "dropout": config.dropout,
        "eps": config.template_eps,
    }


# Keys an official document must hold (the official constructor requires them too).
_OFFICIAL_REQUIRED = (
    "stack_config",
    "num_blocks",
    "embedding_dim",
    "input_patch_size",
    "output_patch_size",
    "quantiles",
    "h_expand",
    "context_len",
    "future_len",
    "input_ff_dim",
    "act_func",
    "dropout",
)


def _fields_from_official(doc: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in _OFFICIAL_REQUIRED if key not in doc]
    collect_problems(
        [f"missing key(s) {', '.join(missing)}"] if missing else [],
        ConfigError,
        "TiRex-2 config.json",
    )
    problems: list[str] = []
    mixers, sizes = _read_recipe(doc.get("stack_config") or {}, problems)
    if len(set(sizes)) > 1:
        problems.append("templates differ in width or heads, which TiRex2Config cannot describe")
    width, heads, slstm_heads, attn_heads = sizes[0] if sizes else (None, 4, 4, 4)
    if heads != attn_heads:
        problems.append(f"mLSTM heads ({heads}) differ from attention heads ({attn_heads})")
    if width is not None and doc.get("embedding_dim") != width:
        problems.append(f"templates have width {width}, the model {doc.get('embedding_dim')}")
    tokenizer = doc.get("tokenizer_cfg", {})
    if tokenizer.get("input_patch_stride", doc.get("input_patch_size")) != doc.get(
        "input_patch_size"
    ):
        problems.append("patch stride differs from the patch size (overlapping patches)")
    collect_problems(problems, ConfigError, "unsupported TiRex-2 config.json")

    stack = doc["stack_config"]
    first = stack["templates"][stack["recipe"][0]] if stack.get("recipe") else {}
    scaler = doc.get("scaler_cfg", {})
    out_norm = doc.get("stack_out_norm_config")
    return {
        "embedding_dim": doc["embedding_dim"],
        "num_blocks": doc["num_blocks"],
        "time_mixers": mixers,
        "num_heads": heads,
        "num_slstm_heads": slstm_heads,
        "input_patch_size": doc["input_patch_size"],
        "output_patch_size": doc["output_patch_size"],
        "quantiles": list(doc["quantiles"]),
        "input_ff_dim": doc["input_ff_dim"],
        "h_expand": doc["h_expand"],
        "context_len": doc["context_len"],
        "future_len": doc["future_len"],
        "act_func": doc["act_func"],
        "dropout": doc["dropout"],
        "use_qk_norm": doc.get("use_qk_norm", True),
        "stack_out_norm": _stack_out_norm_name(out_norm),
        "stack_out_norm_eps": (out_norm or {}).get("eps", 1e-7),
        "scaler_eps": scaler.get("eps", 1e-8),
        "scaler_arcsinh": scaler.get("use_arcsinh", False),
        "scaler_binaryaware": scaler.get("binaryaware", False),
        "template_eps": first.get("eps", 1e-6),
        "tta_sign_flip": doc.get("tta_sign_flip", False),
        "tta_diff": doc.get("tta_diff", True),
    }


def _read_recipe(stack: dict[str, Any], problems: list[str]) -> tuple[list, list]:
    """Per recipe entry: our time-mixer name, and (width, mLSTM heads, sLSTM heads, attention
    heads) of its template. Appends what it cannot read to ``problems``."""
    templates, recipe = stack.get("templates") or {}, list(stack.get("recipe") or [])
    by_model_type = {official: ours for ours, official in OFFICIAL_MODEL_TYPE.items()}
    mixers, sizes = [], []
    for name in recipe:
        template = templates.get(name)
        if template is None:
            problems.append(f"recipe names unknown template '{name}'")
            continue
        time_mixer = template.get("time_mixer", {})
        mixer = by_model_type.get(time_mixer.get("model_type"))
        if mixer is None:
            problems.append(
                f"template '{name}' has unknown time mixer {time_mixer.get('model_type')!r}"
            )
        mixers.append(mixer)
        heads = time_mixer.get("num_heads", 4)
        sizes.append(
            (
                time_mixer.get("embedding_dim"),
                heads,
                time_mixer.get("num_slstm_heads") or heads,
                template.get("variate_mixer", {}).get("num_heads", 4),
            )
        )
    return mixers, sizes


def _stack_out_norm_name(out_norm: dict[str, Any] | None) -> str:
    if out_norm is None:
        return "none"
    return "rmsnorm" if out_norm.get("use_rmsnorm", False) else "layernorm"


def _preset(E: int, num_blocks: int, input_ff_dim: int, patch: int, context: int, future: int):
    return {
        "embedding_dim": E,
        "num_blocks": num_blocks,
        "time_mixers": ["mlstm", "slstm"] * (num_blocks // 2),
        "input_ff_dim": input_ff_dim,
        "input_patch_size": patch,
        "output_patch_size": patch,
        "context_len": context,
        "future_len": future,
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The released NX-AI/TiRex-2: 82,501,744 parameters, of which 38,449,264 run on a
    # univariate series (README: "38.4M ... and an additional 44.1M for multivariate").
    "tirex2-82m": _preset(512, 12, 2048, 32, 2048, 320),
    "tirex2-small": _preset(128, 4, 512, 32, 1024, 320),  # for CPU experiments
    "tirex2-test": _preset(32, 2, 64, 4, 32, 8),  # tiny, for tests
}
