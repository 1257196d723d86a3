"""ONNX export with NXAI's published ``tirex.onnx`` interface.

The file maps one input to one output, for the next patch only:

    context    float32 [batch, length]       NaN marks missing values; any batch, any length
    quantiles  float32 [batch, 32, 9]        the model's quantile levels of the next 32 steps

The graph does everything ``TiRexForecaster.forecast`` does for one patch: left-pad with NaN or
cut to the model's ``train_ctx_len``, per-series scaling (the rules of
``rexforge.model.tokenizer.standard_scale``), patching with the NaN mask, the network in fp32
numerics (the plain torch recurrence, unrolled over the window's patches by tracing), the head
and the unscaling. Longer horizons roll out as the official notebook does: append one patch of
NaN per further patch to the context and run the file again (``rollout_onnx`` below).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from rexforge.errors import CheckpointError, InputError, RexforgeError
from rexforge.model.tirex import TiRexModel
from rexforge.model.tokenizer import CONSTANT_SERIES_EPS, Scale, patch_tokens, unscale

logger = logging.getLogger(__name__)

INPUT_NAME = "context"
OUTPUT_NAME = "quantiles"
FORMATS = ("onnx",)
OPSET = 18
ONNX_EXTRA_HINT = "install the ONNX extra: pip install 'rexforge[onnx]'"


class MissingDependencyError(RexforgeError):
    """An optional package this feature needs is not installed."""


def _masked_mean(values: torch.Tensor, observed: torch.Tensor, count: torch.Tensor):
    """Mean over the observed entries of each row: values, observed [B, L], count [B, 1]."""
    total = torch.where(observed, values, torch.zeros_like(values)).sum(dim=-1, keepdim=True)
    return total / count  # NaN where count is 0 (an all-NaN row)


def _row_statistics(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, variance) [B, 1] over the non-NaN values of ``window`` [B, L], in its dtype."""
    observed = ~torch.isnan(window)
    count = observed.sum(dim=-1, keepdim=True).to(window.dtype)
    loc = torch.nan_to_num(_masked_mean(window, observed, count), nan=0.0)
    var = _masked_mean((window - loc).square(), observed, count)
    return loc, var


def graph_standard_scale(window: torch.Tensor) -> Scale:
    """``tokenizer.standard_scale`` without data-dependent control flow, so it exports.

    Same rules: population mean/std over the non-NaN values; rows whose float32 square
    overflows or underflows get their statistics in float64 (here always computed, then
    selected per row); all-NaN rows loc 0, scale 1; constant rows scale |mean| + 1e-5.
    """
    loc, var = _row_statistics(window)  # [B, 1] float32
    loc64, var64 = _row_statistics(window.double())  # [B, 1] float64
    std64 = var64.sqrt()
    overflow = torch.isinf(var) | torch.isinf(loc)
    underflow = var < torch.finfo(torch.float32).tiny  # NaN (all-NaN rows) compares False
    redo = overflow | (underflow & (std64 > 0))
    loc = torch.where(redo, loc64.float(), loc)
    scale = torch.where(redo, std64.float(), var.sqrt())
    scale = torch.nan_to_num(scale, nan=1.0)
    scale = torch.where(scale == 0, loc.abs() + CONSTANT_SERIES_EPS, scale)
    return Scale(loc, scale)


class OnnxForecastModule(nn.Module):
    """context [B, T] (NaN = missing) -> quantiles [B, P, Q] of the next patch, in the data's
    units. ``model`` must run the fp32 numerics with a traceable kernel (``torch_ref``)."""

    def __init__(self, model: TiRexModel):
        super().__init__()
        self.model = model
        self.window_length = model.config.train_ctx_len
        self.patch_size = model.config.input_patch_size

    def fit_window(self, context: torch.Tensor) -> torch.Tensor:
        """Left-pad with NaN or cut to exactly ``window_length`` steps: [B, T] -> [B, L].

        Always prepending L NaN and keeping the last L steps does both without a branch on T,
        so the length stays a dynamic dimension of the graph."""
        L = self.window_length
        pad = torch.full_like(context[:, :1], float("nan")).expand(-1, L)  # [B, L]
        return torch.cat((pad, context), dim=1)[:, -L:]

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        window = self.fit_window(context.float())  # [B, L]
        B, L, P = window.shape[0], self.window_length, self.patch_size
        scale = graph_standard_scale(window)
        patches = ((window - scale.loc) / scale.scale).reshape(B, L // P, P)
        quantiles = self.model(patch_tokens(patches), last_n=1).quantiles  # [B, 1, Q, P]
        return unscale(quantiles[:, 0].transpose(1, 2), scale)  # [B, P, Q]


def fp32_network(model_or_path) -> TiRexModel:
    """A fresh fp32, ``torch_ref`` copy of the network of a forecaster, a network, or a model
    path (anything ``load_model`` takes); the caller's model is left as it is."""
    from rexforge.forecast.api import TiRexForecaster, load_model

    if isinstance(model_or_path, (str, Path)):
        loaded = load_model(model_or_path, kernel="torch_ref", numerics="fp32")
        if not isinstance(loaded, TiRexForecaster):
            raise InputError(
                f"{model_or_path} is a {type(loaded.model).__name__}; ONNX export supports "
                "TiRex models only (export it with --format folder)"
            )
        return loaded.model
    source = model_or_path.model if isinstance(model_or_path, TiRexForecaster) else model_or_path
    if not isinstance(source, TiRexModel):
        raise InputError(
            f"export needs a model path, a TiRexForecaster or a TiRexModel, got {type(source)}"
        )
    network = TiRexModel(source.config, kernel="torch_ref", numerics="fp32")
    network.load_state_dict(source.state_dict())
    return network.eval()


def check_output_path(path: str | Path) -> Path:
    """``path`` if an ONNX file can be written there; checked before the (slow) export."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(f"ONNX output file must end in .onnx, got {path}")
    if path.is_dir():
        raise InputError(f"ONNX output {path} is a folder; give a file name ending in .onnx")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"could not write {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise CheckpointError(f"could not write {path}: folder {path.parent} is not writable")
    return path


def _require_onnx_packages() -> None:
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise MissingDependencyError(
                f"ONNX export needs the {package!r} package; {ONNX_EXTRA_HINT}"
            ) from None


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's own warnings and log lines (skipped torchvision ops, deprecations
    inside torch and onnx_ir): they are about its internals, not about the exported model."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def trace_to_onnx(module: OnnxForecastModule, example_length: int, optimize: bool = False):
    """``module`` as an onnx ``ModelProto`` with dynamic batch and length.

    ``optimize`` runs the exporter's graph optimiser: a smaller file (starter: 11 vs 19 MB) at
    3x the export time (104 vs 31 s); on tirex-35m, whose 12 x 64 unrolled recurrent steps make
    a large graph, it did not finish within 11 minutes on 2 cores, where the plain export takes
    ~4 minutes (236 MB). Both give the same forecasts (within 1e-5 of a series' std).
    """
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    example = torch.randn(2, example_length)
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"context": {0: batch, 1: length}},
            opset_version=OPSET,
            dynamo=True,
            optimize=optimize,
            verbose=False,
        )
    return program.model_proto


def _describe(model: TiRexModel) -> dict[str, str]:
    """Metadata stored in the file: what a reader needs to roll out and to credit NXAI."""
    from rexforge import NXAI_NOTICE, __version__

    cfg = model.config
    return {
        "producer": f"rexforge {__version__}",
        "train_ctx_len": str(cfg.train_ctx_len),
        "patch_size": str(cfg.output_patch_size),
        "quantile_levels": ",".join(f"{q:g}" for q in cfg.quantiles),
        "numerics": "fp32",
        "rollout": "append output_patch_size NaN to the context per further patch, rerun",
        "notice": NXAI_NOTICE,
    }


def export_onnx(
    model_or_path, path: str | Path, example_length: int | None = None, optimize: bool = False
) -> Path:
    """Write ``model_or_path`` (a path ``load_model`` takes, a forecaster or a network) to the
    ONNX file ``path`` (atomically). Inputs of any batch size and context length are accepted.
    ``optimize``: see ``trace_to_onnx``. Returns the path."""
    from rexforge.io.atomic import atomic_write_bytes

    path = check_output_path(path)
    _require_onnx_packages()
    import onnx

    network = fp32_network(model_or_path)
    # The trace example is longer than the window, so that the cut is part of the graph.
    length = example_length or network.config.train_ctx_len + network.config.input_patch_size
    start = time.perf_counter()
    proto = trace_to_onnx(OnnxForecastModule(network).eval(), length, optimize)
    onnx.helper.set_model_props(proto, _describe(network))
    buffer = io.BytesIO()
    onnx.save_model(proto, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    logger.debug("exported %s in %.1f s", path, time.perf_counter() - start)
    return path


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session for an exported file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError(
            f"running ONNX files needs onnxruntime; {ONNX_EXTRA_HINT}"
        ) from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rollout_onnx(session, context: np.ndarray, prediction_length: int) -> np.ndarray:
    """The official notebook's rollout on an exported file: context [B, T] (NaN = missing)
    -> quantiles [B, prediction_length, Q]. Each run predicts one patch; the context then grows
    by one patch of NaN (the predictions are not fed back) and the file runs again."""
    context = np.asarray(context, dtype=np.float32)
    pieces, steps = [], 0
    while steps < prediction_length:
        patch = session.run([OUTPUT_NAME], {INPUT_NAME: context})[0]  # [B, P, Q]
        pieces.append(patch)
        steps += patch.shape[1]
        nan_patch = np.full((context.shape[0], patch.shape[1]), np.nan, dtype=np.float32)
        context = np.concatenate((context, nan_patch), axis=1)
    return np.concatenate(pieces, axis=1)[:, :prediction_length]
