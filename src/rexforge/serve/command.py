"""``rexforge serve``: load a model once and serve its forecasts over HTTP (see ``serve.app``).

FastAPI and uvicorn are imported when the command runs, not when the CLI lists its commands, so
``rexforge serve --help`` works without the extra and running it without says to install
``rexforge[serve]`` in one line.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Literal

from rexforge.cli_parser import Spelling
from rexforge.errors import ConfigError
from rexforge.serve.limits import ServeLimits

logger = logging.getLogger(__name__)

SPELLINGS = {
    "max_series_per_request": Spelling(flags=("--max-series",)),
    "max_prediction_length": Spelling(flags=("--max-horizon",)),
}


def serve(
    *,
    model: str = "starter",
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    limits: ServeLimits,
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info",
) -> int:
    """Serve forecasts over HTTP (JSON, batched requests).

    Args:
        model: checkpoint file/folder, hub id or 'starter'
        host: address to listen on (0.0.0.0: all interfaces)
        port: TCP port to listen on
        device: torch device of the model
        limits: what one request may ask for, and how requests are batched
        log_level: uvicorn's log level
    """
    # Imported first so a missing extra is reported before minutes of model loading.
    import fastapi  # noqa: F401
    import uvicorn

    from rexforge import load_model
    from rexforge.serve.app import create_app

    _check_port_free(host, port)
    forecaster = load_model(model, device=device)  # any registered family (see serve.app)
    app = create_app(forecaster, limits, model_name=str(model))
    logger.info("serving %s on http://%s:%d (docs at /docs)", model, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A one-line error now for a port that is taken, rather than uvicorn's after loading."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As uvicorn binds: a port left in TIME_WAIT by an earlier server is usable.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc}"
        raise ConfigError(f"{host}:{port} {reason}") from None
