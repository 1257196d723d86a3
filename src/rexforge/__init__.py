"""rexforge: recreate, forecast with, fine-tune, pretrain and evaluate TiRex models.

Built with technology from NXAI (see NOTICE): TiRex's architecture and weights are NXAI's,
under the NXAI Community License.
"""

__version__ = "0.1.0"

NXAI_NOTICE = (
    "Built with technology from NXAI. The TiRex architecture (and the official TiRex weights) "
    "are NXAI GmbH's, licensed under the NXAI Community License Agreement."
)

from rexforge.config import TiRexConfig, list_presets  # noqa: E402
from rexforge.errors import CheckpointError, ConfigError, InputError, RexforgeError  # noqa: E402

__all__ = [
    "__version__",
    "NXAI_NOTICE",
    "TiRexConfig",
    "list_presets",
    "load_model",
    "TiRexForecaster",
    "TiRexEmbedding",
    "RexforgeError",
    "ConfigError",
    "CheckpointError",
    "InputError",
]


def __getattr__(name):
    # The forecasting API imports torch; keep ``import rexforge`` (configs, errors) light.
    if name in ("load_model", "TiRexForecaster"):
        from rexforge.forecast import api

        return getattr(api, name)
    if name == "TiRexEmbedding":
        from rexforge.embedding import TiRexEmbedding

        return TiRexEmbedding
    raise AttributeError(f"module 'rexforge' has no attribute {name!r}")
