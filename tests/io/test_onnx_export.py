"""ONNX export: the file's forecasts in onnxruntime against rexforge's own fp32 forecasts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rexforge.errors import InputError
from tests.conftest import make_context, tolerance_scale

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rexforge.forecast.api import load_model  # noqa: E402
from rexforge.io.onnx_export import export_onnx, onnx_session, rollout_onnx  # noqa: E402

TOLERANCE = 1e-4  # of each series' std


@pytest.fixture(scope="module")
def exported_file(tiny_ckpt, tmp_path_factory):
    # From a loaded forecaster; the CLI test below exports from a checkpoint path.
    return export_onnx(load_model(tiny_ckpt), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def exported(exported_file, tiny_ckpt):
    return onnx_session(exported_file), load_model(tiny_ckpt, numerics="fp32")


def batch_of(batch: int, length: int) -> np.ndarray:
    """[batch, length]: sine series, a NaN gap in the first, a constant last series."""
    series = make_context(
        [length] * batch,
        seed=batch + length,
        nan_gap_in=0 if length >= 8 else None,
        constant_in=batch - 1 if batch > 1 else None,
    )
    return np.stack(series)


def relative_error(ours: np.ndarray, reference: np.ndarray, context: np.ndarray) -> float:
    """Largest |difference| per series, in units of that series' std."""
    scale = tolerance_scale(list(context))
    return float((np.abs(ours - reference).max(axis=(1, 2)) / scale).max())


# tirex-test windows are 256 steps (8 patches of 32).
@pytest.mark.parametrize("batch", [1, 3, 17])
@pytest.mark.parametrize("length", [1, 5, 45, 256, 300])
def test_one_patch_matches_fp32_forecast(exported, batch, length):
    session, model = exported
    context = batch_of(batch, length)
    (ours,) = session.run(["quantiles"], {"context": context})
    reference, _ = model.forecast(context, prediction_length=32, output_type="numpy")
    assert ours.shape == (batch, 32, 9)
    assert relative_error(ours, reference, context) < TOLERANCE


def test_all_nan_and_extreme_rows(exported):
    """An all-NaN row (loc 0, scale 1) and rows whose float32 squares overflow / underflow
    (statistics in float64) follow the forecaster's scaling rules."""
    session, model = exported
    t = np.arange(100, dtype=np.float64)
    context = np.stack(
        [np.full(100, np.nan), 3e19 * np.sin(t / 5), 1e-21 * np.sin(t / 7) + 1e-20, np.cos(t)]
    ).astype(np.float32)
    (ours,) = session.run(["quantiles"], {"context": context})
    reference, _ = model.forecast(context, prediction_length=32, output_type="numpy")
    assert np.isfinite(ours).all()
    scale = np.array([1.0, *tolerance_scale(list(context[1:]))])
    assert (np.abs(ours - reference).max(axis=(1, 2)) / scale).max() < TOLERANCE


@pytest.mark.parametrize("length", [45, 300])
def test_official_rollout_loop_matches_96_steps(exported, length):
    session, model = exported
    context = batch_of(3, length)
    ours = rollout_onnx(session, context, 96)
    reference, _ = model.forecast(context, prediction_length=96, output_type="numpy")
    assert ours.shape == reference.shape == (3, 96, 9)
    assert relative_error(ours, reference, context) < TOLERANCE


def test_file_describes_itself(exported_file):
    import onnx

    proto = onnx.load(str(exported_file))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["train_ctx_len"] == "256" and props["patch_size"] == "32"
    assert "NXAI" in props["notice"]
    assert [i.name for i in proto.graph.input] == ["context"]
    assert [o.name for o in proto.graph.output] == ["quantiles"]
    # Written atomically: nothing left behind.
    assert not list(exported_file.parent.glob(".*.tmp"))


def test_bad_output_suffix_is_refused(tiny_ckpt, tmp_path):
    with pytest.raises(InputError, match=r"\.onnx"):
        export_onnx(tiny_ckpt, tmp_path / "model.bin")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rexforge.cli", "export", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_exports_a_file_that_forecasts(tiny_ckpt, tmp_path):
    out = tmp_path / "cli.onnx"
    result = run_cli(tiny_ckpt, "--format", "onnx", "--output", out)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.is_file()
    context = batch_of(2, 70)
    (ours,) = onnx_session(out).run(["quantiles"], {"context": context})
    reference, _ = load_model(tiny_ckpt, numerics="fp32").forecast(context, output_type="numpy")
    assert relative_error(ours, reference, context) < TOLERANCE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite", "--output", "m.onnx"], "unknown export format"),
        (["--output", "m.txt"], "must end in .onnx"),
        (["--output", "/proc/forbidden/m.onnx"], "could not write"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tiny_ckpt, tmp_path, args, message):
    args = [a if not a.startswith("m.") else tmp_path / a for a in args]
    result = run_cli(tiny_ckpt, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_cli_missing_model_is_one_line_exit_2(tmp_path):
    result = run_cli(tmp_path / "nope.ckpt", "--output", tmp_path / "m.onnx")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
