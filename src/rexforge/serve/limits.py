"""What one request to ``rexforge serve`` may ask for, and how long requests wait to be batched.

Kept free of FastAPI so the command line can build and check it before the extra is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from rexforge.errors import ConfigError


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for, and how requests are batched.

    Args:
        max_body_bytes: a request body larger than this is refused (413) before it is parsed
        max_series_per_request: series per request
        max_series_length: values per series
        max_prediction_length: the largest prediction_length a request may ask for
        max_wait_ms: how long a request may wait for others to share its forward pass
        max_batch_series: a batch stops gathering requests once it holds this many series
    """

    # A request body larger than this is refused (413) before it is parsed.
    max_body_bytes: int = 8_000_000
    max_series_per_request: int = 1024
    max_series_length: int = 16_384
    max_prediction_length: int = 1024
    # Batching: a batch closes after this wait or once it holds this many series.
    max_wait_ms: float = 5.0
    max_batch_series: int = 256

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            smallest = 0 if field.name == "max_wait_ms" else 1
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < smallest:
                raise ConfigError(f"serve limit {field.name} must be >= {smallest}, got {value!r}")
