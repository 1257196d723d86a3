"""rexforge: recreate, forecast with, fine-tune, pretrain and evaluate TiRex models.

Built with technology from NXAI (see NOTICE): TiRex's architecture and weights are NXAI's,
under the NXAI Community License.
"""

__version__ = "0.1.0"

NXAI_NOTICE = (
    "Built with technology from NXAI. The TiRex architecture (and the official TiRex weights) "
    "are NXAI GmbH's, licensed under the NXAI Community License Agreement."
)

from rexforge.config import TiRexConfig  # noqa: E402
from rexforge.errors import CheckpointError, ConfigError, InputError, RexforgeError  # noqa: E402
from rexforge.registry import create_model, list_models  # noqa: E402

# Presets are listed by the model-family registry, the one list across families; the older
# name stays for existing code.
list_presets = list_models

__all__ = [
    "__version__",
    "NXAI_NOTICE",
    "TiRexConfig",
    "list_presets",
    "list_models",
    "create_model",
    "load_model",
    "fit",
    "TiRexForecaster",
    "TiRex2Forecaster",
    "TiRexEmbedding",
    "RexforgeError",
    "ConfigError",
    "CheckpointError",
    "InputError",
]


def __getattr__(name):
    # The forecasting API imports torch; keep ``import rexforge`` (configs, errors) light.
    if name in ("load_model", "fit", "TiRexForecaster"):
        from rexforge.forecast import api

        return getattr(api, name)
    if name == "TiRex2Forecaster":
        from rexforge.forecast.tirex2_api import TiRex2Forecaster

        return TiRex2Forecaster
    if name == "TiRexEmbedding":
        from rexforge.embedding import TiRexEmbedding

        return TiRexEmbedding
    raise AttributeError(f"module 'rexforge' has no attribute {name!r}")
