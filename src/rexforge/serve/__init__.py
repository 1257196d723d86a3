"""``rexforge serve``: forecasts over HTTP (FastAPI + uvicorn, the ``serve`` extra).

``app.create_app`` builds the application around a loaded forecaster, ``batching`` merges
concurrent requests into one forward pass, ``command`` is the CLI entry point. Nothing here
imports FastAPI at package import, so the CLI can list the command without the extra.
"""
