"""``rexforge serve``: forecasts over HTTP equal ``load_model(...).forecast``, concurrent requests
share forward passes, every bad request gets a 4xx ``{"error": ...}`` and the server survives.

FastAPI's TestClient needs httpx, which the ``dev`` extra does not install, so the app runs in
a real uvicorn server on a thread (loopback, an ephemeral port) and is called with urllib; one
test starts ``rexforge serve`` itself as a separate process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from rexforge import load_model  # noqa: E402
from rexforge.cli import main  # noqa: E402
from rexforge.errors import ConfigError, InputError  # noqa: E402
from rexforge.serve.app import create_app  # noqa: E402
from rexforge.serve.batching import ForecastBatcher, ForecastKey  # noqa: E402
from rexforge.serve.limits import ServeLimits  # noqa: E402
from tests.conftest import tolerance_scale  # noqa: E402

# Small limits so the limit tests send small bodies; a long wait so that concurrent test
# requests reliably land in one batch.
TEST_LIMITS = ServeLimits(
    max_body_bytes=200_000,
    max_series_per_request=8,
    max_series_length=600,
    max_prediction_length=128,
    max_wait_ms=100,
    max_batch_series=64,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerThread:
    """``app`` served by uvicorn on a thread at 127.0.0.1:<free port>, for a ``with`` block."""

    def __init__(self, app):
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc_info):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def call(url: str, body=None, timeout: float = 30) -> tuple[int, dict]:
    """(status, parsed JSON body) of a GET (body None) or a POST of ``body`` (bytes are sent
    as they are, anything else as JSON)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def as_json_series(series: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in series]


def example_series(lengths=(48, 100, 333), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    series = [10 + rng.normal(size=n).cumsum() for n in lengths]
    series[0][5:9] = np.nan  # missing values, sent as null
    return series


@pytest.fixture(scope="module")
def starter():
    return load_model("starter")


@pytest.fixture(scope="module")
def served(starter):
    app = create_app(starter, TEST_LIMITS, model_name="starter")
    with ServerThread(app) as url:
        yield url, app


def test_health_and_openapi_docs(served):
    url, _ = served
    status, health = call(f"{url}/health")
    assert status == 200 and health["status"] == "ok" and health["model"] == "starter"
    status, schema = call(f"{url}/openapi.json")
    assert status == 200 and "/forecast" in schema["paths"]
    with urllib.request.urlopen(f"{url}/docs", timeout=10) as docs:
        assert docs.status == 200 and b"swagger" in docs.read().lower()


def test_forecast_equals_load_model_forecast(served, starter):
    url, _ = served
    series = example_series()
    for rollout in (None, "exact"):
        payload = {"series": [as_json_series(s) for s in series], "prediction_length": 40}
        if rollout:
            payload["rollout"] = rollout
        status, body = call(f"{url}/forecast", payload)
        assert status == 200, body
        quantiles, mean = starter.forecast(series, 40, output_type="numpy", rollout=rollout)
        # float32 -> JSON -> float32 is lossless, so the numbers must be identical.
        np.testing.assert_array_equal(np.array(body["quantiles"], dtype=np.float32), quantiles)
        np.testing.assert_array_equal(np.array(body["mean"], dtype=np.float32), mean)
        assert body["quantile_levels"] == starter.quantiles


def test_quantile_levels_follow_predict_quantiles(served, starter):
    url, _ = served
    series = example_series(lengths=(64, 90))
    levels = [0.1, 0.25, 0.5, 0.85]
    payload = {"series": [as_json_series(s) for s in series], "prediction_length": 12}
    status, body = call(f"{url}/forecast", {**payload, "quantile_levels": levels})
    assert status == 200, body
    quantiles, mean = starter.predict_quantiles(series, 12, quantile_levels=levels)
    np.testing.assert_array_equal(np.array(body["quantiles"], dtype=np.float32), quantiles.numpy())
    np.testing.assert_array_equal(np.array(body["mean"], dtype=np.float32), mean.numpy())
    assert body["quantile_levels"] == levels


def test_concurrent_requests_are_batched_with_the_same_numbers(served, starter):
    url, app = served
    requests = [example_series(lengths=(40 + 30 * i,), seed=i) for i in range(6)]
    before = app.state.batcher.forward_passes

    def post(series):
        payload = {"series": [as_json_series(s) for s in series], "prediction_length": 20}
        return call(f"{url}/forecast", payload)

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(post, requests))
    passes = app.state.batcher.forward_passes - before
    assert passes < len(requests), "concurrent requests did not share a forward pass"
    for series, (status, body) in zip(requests, answers):
        assert status == 200, body
        alone, _ = starter.forecast(series, 20, output_type="numpy")
        # rexforge's forecast is not bit-invariant to what else is in the batch (padding to
        # the longest series and other BLAS shapes shift float32 sums, which can flip the
        # emulated bf16 roundings, ~2e-3 of the scale seen here): equal within the 1e-2 of a
        # series' scale that load_model documents for bf16 numerics, not bit for bit.
        scale = tolerance_scale(series)[0]
        np.testing.assert_allclose(np.array(body["quantiles"]), alone, rtol=0, atol=1e-2 * scale)


def test_batcher_groups_by_key_and_isolates_a_failing_request():
    calls = []

    def forecast(series, key):
        calls.append(len(series))
        if any(np.any(s == 666) for s in series):
            raise InputError("series holds the number of the beast")
        values = np.stack([np.full((key.prediction_length, 1), s[-1]) for s in series])
        return values.astype(np.float32), values[..., 0].astype(np.float32)

    async def scenario():
        batcher = ForecastBatcher(forecast, max_wait_s=0.2, max_batch_series=100)
        await batcher.start()
        short, long_ = ForecastKey(3, "exact", None), ForecastKey(5, "exact", None)
        jobs = [
            batcher.submit([np.array([1.0]), np.array([2.0])], short),
            batcher.submit([np.array([3.0])], long_),
            batcher.submit([np.array([666.0])], short),
            batcher.submit([np.array([4.0])], short),
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert results[0][1][:, 0].tolist() == [1.0, 2.0] and results[0][1].shape == (2, 3)
    assert results[1][1].shape == (1, 5) and results[1][1][0, 0] == 3.0
    assert isinstance(results[2], InputError)
    assert results[3][1][0, 0] == 4.0
    # One pass for the 5-step key; for the 3-step key a failed pass of all 4 series, then
    # each of its requests alone.
    assert sorted(calls) == sorted([4, 1, 2, 1, 1])


BAD_REQUESTS = [
    (b"this is not json", 400, "not valid JSON"),
    (b'{"series": [[1, 2, 3]]}', 422, "prediction_length"),
    (b'{"prediction_length": 3}', 422, "series"),
    (b'{"series": [[1, "two", 3]], "prediction_length": 3}', 422, "series.0.1"),
    (b'{"series": [[1, 2, 3]], "prediction_length": 0}', 422, "prediction_length"),
    (b'{"series": [[1, 2, 3]], "prediction_length": -4}', 422, "prediction_length"),
    (b'{"series": [[1, 2, 3]], "prediction_length": "3"}', 422, "prediction_length"),
    (b'{"series": [[1, 2, 3]], "prediction_length": 129}', 413, "prediction_length"),
    (b'{"series": [[1, 2, 3]], "prediction_length": 3, "rollout": "fast"}', 422, "rollout"),
    (b'{"series": [[1, 2, 3]], "prediction_length": 3, "quantile_levels": [0.99]}', 422, "range"),
    (b'{"series": [[1, 2, 3]], "prediction_length": 3, "quantile_levels": []}', 422, "level"),
    (b'{"series": [[1, 2, Infinity]], "prediction_length": 3}', 422, "Infinity"),
    (b'{"series": [[]], "prediction_length": 3}', 422, "empty"),
    (b'{"series": [], "prediction_length": 3}', 422, "at least one"),
    (b'{"series": [1, 2, 3], "prediction_length": 3}', 422, "series.0"),
    (b'{"series": [[1]], "prediction_length": 3, "horizon": 3}', 422, "horizon"),
    (b'{"series": ' + b"[[1]]," * 9 + b'[[1]], "prediction_length": 3}', 400, "JSON"),
    (json.dumps({"series": [[1.0]] * 9, "prediction_length": 3}).encode(), 413, "9 series"),
    (json.dumps({"series": [[1.0] * 601], "prediction_length": 3}).encode(), 413, "601"),
    (json.dumps({"series": [[1.0] * 50_000], "prediction_length": 3}).encode(), 413, "bytes"),
]


@pytest.mark.parametrize(("body", "status", "says"), BAD_REQUESTS)
def test_bad_request_gets_a_one_line_json_error(served, body, status, says):
    url, _ = served
    got_status, answer = call(f"{url}/forecast", body)
    assert got_status == status, answer
    assert set(answer) == {"error"} and says in answer["error"] and "\n" not in answer["error"]


def test_unknown_path_and_method_answer_json_errors(served):
    url, _ = served
    assert call(f"{url}/nowhere") == (404, {"error": "Not Found"})
    assert call(f"{url}/forecast")[0] == 405


class BrokenForecaster:
    """Forecasts until told to break, then raises what a bug would."""

    quantiles = [0.1, 0.5, 0.9]
    default_rollout = "exact"
    broken = True

    def predict_quantiles(self, series, prediction_length, rollout):
        if self.broken:
            raise RuntimeError("the model fell over")
        shape = (len(series), prediction_length)
        return np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32)


def test_a_failing_forecast_is_a_500_and_the_server_keeps_serving():
    forecaster = BrokenForecaster()
    with ServerThread(create_app(forecaster, ServeLimits(max_wait_ms=0))) as url:
        payload = {"series": [[1.0, 2.0]], "prediction_length": 2}
        status, answer = call(f"{url}/forecast", payload)
        assert status == 500 and "the model fell over" in answer["error"]
        assert call(f"{url}/health")[0] == 200
        forecaster.broken = False
        status, answer = call(f"{url}/forecast", payload)
        assert status == 200 and answer["mean"] == [[0.0, 0.0]]


def test_real_server_process_answers_and_survives_bad_requests(starter):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rexforge.cli", "serve", "--model", "starter"]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        series = example_series(lengths=(70,))
        payload = {"series": [as_json_series(s) for s in series], "prediction_length": 8}
        status, body = call(f"{url}/forecast", payload)
        assert status == 200, body
        quantiles, _ = starter.forecast(series, 8, output_type="numpy")
        np.testing.assert_array_equal(np.array(body["quantiles"], dtype=np.float32), quantiles)
        assert call(f"{url}/forecast", b"{broken")[0] == 400
        status, health = call(f"{url}/health")  # still serving after the bad request
        assert status == 200 and health["status"] == "ok"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rexforge serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            if call(f"{url}/health", timeout=2)[0] == 200:
                return
        except OSError:  # not listening yet: the model is still loading
            time.sleep(0.2)
    pytest.fail(f"rexforge serve did not answer /health within {seconds} s")


def test_serve_on_a_taken_port_is_a_one_line_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code = main(["serve", "--port", str(taken.getsockname()[1])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "in use" in err[0], err


def test_serve_without_the_extra_names_it(monkeypatch, capsys):
    for name in list(sys.modules):
        if name.split(".")[0] in ("fastapi", "uvicorn") or name.startswith("rexforge.serve.app"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    code = main(["serve", "--port", str(free_port())])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "install rexforge[serve]" in err[0], err


def test_limits_refuse_nonsense():
    with pytest.raises(ConfigError, match="max_series_per_request"):
        ServeLimits(max_series_per_request=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeLimits(max_wait_ms=-1)


def test_a_tirex2_model_is_served_through_predict_quantiles():
    """A second family needs no change to the service: its numbers are its
    ``predict_quantiles``; TiRex's rollouts and, without one of its own, horizons past the cap
    are 422s; with ``median`` or ``paths`` it forecasts past the cap."""
    import torch

    from rexforge.families.tirex2 import TIREX2
    from rexforge.forecast.tirex2_api import TiRex2Forecaster
    from rexforge.model.tirex2 import TiRex2Model

    torch.manual_seed(0)
    config = TIREX2.presets["tirex2-test"]()
    model = TiRex2Forecaster(TiRex2Model(config))
    series = example_series(lengths=(48, 70))
    with ServerThread(create_app(model, TEST_LIMITS)) as url:
        status, health = call(f"{url}/health")
        assert status == 200 and health["default_rollout"] is None
        payload = {"series": [as_json_series(s) for s in series], "prediction_length": 6}
        status, body = call(f"{url}/forecast", payload)
        assert status == 200, body
        quantiles, mean = model.predict_quantiles(series, 6)
        np.testing.assert_allclose(body["quantiles"], quantiles.numpy(), rtol=1e-6)
        np.testing.assert_allclose(body["mean"], mean.numpy(), rtol=1e-6)
        status, body = call(f"{url}/forecast", {**payload, "rollout": "exact"})
        assert (
            status == 422
            and body["error"] == "rollout: this model's rollouts are cut, median, paths"
        )
        too_far = {**payload, "prediction_length": config.future_len + 1}
        for rollout in (None, "cut"):
            request = too_far if rollout is None else {**too_far, "rollout": rollout}
            status, body = call(f"{url}/forecast", request)
            assert status == 422 and "rollout (median or paths)" in body["error"], body
        for rollout in ("median", "paths"):
            status, body = call(f"{url}/forecast", {**too_far, "rollout": rollout})
            assert status == 200, body
            quantiles, _ = model.predict_quantiles(series, config.future_len + 1, rollout=rollout)
            np.testing.assert_allclose(body["quantiles"], quantiles.numpy(), rtol=1e-5, atol=1e-6)
        assert call(f"{url}/health")[0] == 200
