"""``rexforge serve``: load a model once and serve its forecasts over HTTP (see ``serve.app``).

FastAPI and uvicorn are imported when the command runs, not when the CLI lists its commands, so
``rexforge serve --help`` works without the extra and running it without says to install
``rexforge[serve]`` in one line.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket

from rexforge.errors import ConfigError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rexforge.serve.limits import ServeLimits

    defaults = ServeLimits()
    parser.add_argument(
        "--model", default="starter", help="checkpoint file/folder, hub id or 'starter' (default)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all interfaces)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu", help="torch device of the model")
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long a request may wait for others to share its forward pass",
    )
    parser.add_argument(
        "--max-batch-series",
        type=int,
        default=defaults.max_batch_series,
        help="a batch stops gathering requests once it holds this many series",
    )
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument(
        "--max-series", type=int, default=defaults.max_series_per_request, help="per request"
    )
    parser.add_argument("--max-series-length", type=int, default=defaults.max_series_length)
    parser.add_argument(
        "--max-horizon",
        type=int,
        default=defaults.max_prediction_length,
        help="the largest prediction_length a request may ask for",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )


def run(args: argparse.Namespace) -> int:
    # Imported first so a missing extra is reported before minutes of model loading.
    import fastapi  # noqa: F401
    import uvicorn

    from rexforge import load_model
    from rexforge.forecast.api import TiRexForecaster
    from rexforge.serve.app import create_app
    from rexforge.serve.limits import ServeLimits

    limits = ServeLimits(
        max_body_bytes=args.max_body_bytes,
        max_series_per_request=args.max_series,
        max_series_length=args.max_series_length,
        max_prediction_length=args.max_horizon,
        max_wait_ms=args.max_wait_ms,
        max_batch_series=args.max_batch_series,
    )
    _check_port_free(args.host, args.port)
    forecaster = load_model(args.model, device=args.device)
    if not isinstance(forecaster, TiRexForecaster):
        raise ConfigError(
            f"rexforge serve serves TiRex models; {args.model} is a {type(forecaster).__name__}"
        )
    app = create_app(forecaster, limits, model_name=str(args.model))
    logger.info("serving %s on http://%s:%d (docs at /docs)", args.model, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
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
