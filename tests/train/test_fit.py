"""End-to-end runs of ``fit`` on tirex-test (CPU, a few steps each)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from rexforge import load_model
from rexforge.errors import CheckpointError, ConfigError, InputError
from rexforge.io.checkpoint import Checkpoint, nxai_metadata, read_checkpoint, write_folder
from rexforge.train import fit

TINY = dict(
    prediction_length=40,
    context_length=96,
    batch_size=4,
    lr=3e-3,
    warmup_steps=1,
    val_every_n_steps=2,
    seed=0,
)


def series(n=3, length=220, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [np.sin(t / (5 + i)) + 0.02 * t + 0.1 * rng.standard_normal(length) for i in range(n)]


def test_resume_from_mid_run_checkpoint_matches_unbroken_run(tmp_path):
    opts = dict(
        TINY, max_steps=4, checkpoint_every_n_steps=2, validation=False, keep_checkpoints=-1
    )
    full = fit("tirex-test", series(), output_dir=tmp_path / "a", mode="scratch", **opts)
    mid = tmp_path / "a" / "checkpoints" / "step-000002.ckpt"
    assert mid.is_file()
    resumed = fit(
        "tirex-test", series(), output_dir=tmp_path / "b", mode="scratch", resume=mid, **opts
    )
    a = read_checkpoint(full.final_dir).state_dict
    b = read_checkpoint(resumed.final_dir).state_dict
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    # and the run actually trained: weights differ from the step-2 state
    step2 = torch.load(mid, map_location="cpu", weights_only=True)["state_dict"]
    assert not torch.equal(step2["model.out_norm.weight"], a["out_norm.weight"])
    # A training checkpoint reads as the model at its step (forecast, evaluate, fine-tune from
    # it before the run is exported); a run from scratch owes nothing to NXAI's weights.
    mid_model = read_checkpoint(mid)
    assert mid_model.metadata["steps"] == 2 and mid_model.metadata["mode"] == "scratch"
    assert mid_model.metadata["derived_from_nxai_weights"] is False
    assert torch.equal(mid_model.state_dict["out_norm.weight"], step2["model.out_norm.weight"])
    last = read_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt").state_dict
    assert all(torch.equal(last[k], a[k]) for k in a)
    # A flipped bit is refused, as resuming refuses it.
    payload = torch.load(mid, map_location="cpu", weights_only=True)
    payload["state_dict"]["model.out_norm.weight"][0] += 1.0
    torch.save(payload, mid)
    with pytest.raises(CheckpointError, match="recorded checksum"):
        load_model(mid)


def test_finetune_exports_loadable_checkpoints(tmp_path, tiny_ckpt):
    run = fit(tiny_ckpt, series(), output_dir=tmp_path / "ft", mode="full", max_steps=2, **TINY)
    assert {"val_loss", "val_wql", "val_mase", "val_mase_median", "train_loss"} <= set(run.metrics)
    assert 0 < run.metrics["val_mase_median"] < float("inf")
    for name in (
        "config.yaml",
        "metrics.csv",
        "final/config.json",
        "final/model.ckpt",
        "final/NOTICE",
    ):
        assert (run.run_dir / name).is_file(), name
    meta = read_checkpoint(run.final_dir).metadata
    assert meta["mode"] == "full" and meta["derived_from_nxai_weights"] is True
    assert meta["base_sha256"] and meta["base_checkpoint"].endswith("model.ckpt")
    ctx = series(2, 150, seed=3)
    q_folder, _ = load_model(run.final_dir).forecast(ctx, 40, output_type="numpy")
    q_ckpt, _ = load_model(run.final_dir / "model.ckpt").forecast(ctx, 40, output_type="numpy")
    np.testing.assert_array_equal(q_folder, q_ckpt)
    # The run's last training checkpoint forecasts as its export does, and keeps the notice of
    # the NXAI-format base it was fine-tuned from.
    last = load_model(run.run_dir / "checkpoints" / "last.ckpt")
    assert last.metadata["derived_from_nxai_weights"] is True and last.metadata["steps"] == 2
    np.testing.assert_array_equal(last.forecast(ctx, 40, output_type="numpy")[0], q_folder)
    # Checkpoints written before runs recorded the flag take it from their base, if readable.
    payload = torch.load(run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    del payload["hyper_parameters"]["train_config"]["derived_from_nxai_weights"]
    torch.save(payload, tmp_path / "old.ckpt")
    assert read_checkpoint(tmp_path / "old.ckpt").metadata["derived_from_nxai_weights"] is True
    payload["hyper_parameters"]["train_config"]["base_checkpoint"] = str(run.final_dir.parent)
    torch.save(payload, tmp_path / "old.ckpt")  # a base that is not a model: keep the notice
    assert read_checkpoint(tmp_path / "old.ckpt").metadata["derived_from_nxai_weights"] is True
    own = read_checkpoint(run.final_dir)
    write_folder(tmp_path / "own", Checkpoint(own.config, own.state_dict, nxai_metadata(False)))
    payload["hyper_parameters"]["train_config"]["base_checkpoint"] = str(tmp_path / "own")
    torch.save(payload, tmp_path / "old.ckpt")  # a base of rexforge's own: no NXAI weights
    assert read_checkpoint(tmp_path / "old.ckpt").metadata["derived_from_nxai_weights"] is False
    tirex = pytest.importorskip("tirex.models.tirex")
    official = tirex.TiRexZero.from_pretrained(
        str(run.final_dir / "model.ckpt"), backend="torch", device="cpu"
    )
    q_off, _ = official.forecast(ctx, prediction_length=40, output_type="numpy")
    np.testing.assert_allclose(q_off, q_ckpt, rtol=0.05, atol=0.05 * np.abs(q_ckpt).max())


def test_lora_checkpoints_hold_only_adapters_and_resume(tmp_path, tiny_ckpt):
    out = tmp_path / "lora"
    opts = dict(
        TINY, lora_rank=2, validation=False, checkpoint_every_n_steps=1, keep_checkpoints=-1
    )
    fit(tiny_ckpt, series(), output_dir=out, mode="lora", max_steps=3, **opts)
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]
    assert state and all(k.endswith((".lora_A", ".lora_B")) for k in state)
    assert (out / "final" / "adapter.safetensors").is_file()
    base_keys = set(read_checkpoint(tiny_ckpt).state_dict)
    assert set(read_checkpoint(out / "final").state_dict) == base_keys  # merged, plain
    with pytest.raises(CheckpointError, match="LoRA training checkpoint.*final/"):
        load_model(out / "checkpoints" / "last.ckpt")
    mid = out / "checkpoints" / "step-000002.ckpt"
    again = fit(
        tiny_ckpt, series(), output_dir=tmp_path / "b", mode="lora", max_steps=3, resume=mid, **opts
    )
    assert read_checkpoint(again.final_dir).metadata["steps"] == 3
    a, b = read_checkpoint(out / "final").state_dict, read_checkpoint(again.final_dir).state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_settings_naming_them(tmp_path):
    # The optimizer and lr-schedule states inside a checkpoint were made with its settings:
    # a rerun asking another lr or max_steps must not silently continue the old schedule.
    out = tmp_path / "run"
    opts = dict(TINY, validation=False, mode="scratch")
    fit("tirex-test", series(), output_dir=out, max_steps=2, **opts)
    config = (out / "config.yaml").read_text()
    changed = dict(opts, lr=1e-3)
    with pytest.raises(CheckpointError) as caught:
        fit("tirex-test", series(), output_dir=out, max_steps=3, **changed)
    assert str(caught.value) == (
        f"--output-dir {out} holds a run with max_steps 2, lr 0.003; this command asks "
        "max_steps 3, lr 0.001: use --resume never (start over) or a new --output-dir"
    )
    assert (out / "config.yaml").read_text() == config  # nothing recorded that did not run
    last = out / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="it was trained with warmup_steps 1; this command"):
        fit(
            "tirex-test",
            series(),
            output_dir=tmp_path / "b",
            resume=last,
            max_steps=2,
            **dict(opts, warmup_steps=5),
        )
    # How a run is watched, saved or computed may change: it resumes (already at its end).
    again = fit(
        "tirex-test", series(), output_dir=out, max_steps=2, **dict(opts, val_every_n_steps=1)
    )
    assert read_checkpoint(again.final_dir).metadata["steps"] == 2


def test_nonfinite_loss_stops_naming_the_step(tmp_path, monkeypatch):
    import rexforge.train.objective as objective

    real = objective.tokens_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(objective, "tokens_loss", flaky)  # the TiRex hooks' loss
    with pytest.raises(InputError, match="non-finite at step 2"):
        fit(
            "tirex-test",
            series(),
            output_dir=tmp_path / "nan",
            mode="scratch",
            max_steps=4,
            validation=False,
            checkpoint_every_n_steps=1,
            **{k: v for k, v in TINY.items() if k != "val_every_n_steps"},
            val_every_n_steps=1,
        )
    assert (tmp_path / "nan" / "checkpoints" / "last.ckpt").is_file()


def test_bad_inputs_fail_before_training(tmp_path, tiny_ckpt):
    short = series() + [np.arange(50.0)]
    with pytest.raises(InputError, match="'#3' \\(50\\)"):
        fit(tiny_ckpt, short, output_dir=tmp_path / "x", max_steps=1, partial_future=False, **TINY)
    with pytest.raises(ConfigError, match="needs base weights"):
        fit("tirex-test", series(), output_dir=tmp_path / "x", mode="full", max_steps=1, **TINY)
    with pytest.raises(ConfigError, match="--batch-size"):
        fit(tiny_ckpt, series(), output_dir=tmp_path / "x", max_steps=1, **dict(TINY, batch_size=0))
    with pytest.raises(CheckpointError):
        fit(tmp_path / "missing.ckpt", series(), output_dir=tmp_path / "x", max_steps=1, **TINY)
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_partial_future_trains_on_series_shorter_than_a_window(tmp_path, tiny_ckpt):
    # 50 steps cannot hold a 40-step hold-out plus a whole 64-step (two-patch) future...
    short = series() + [np.arange(50.0)]
    with pytest.raises(InputError, match="need >= 105 steps.*--partial-future trains short"):
        fit(tiny_ckpt, short, output_dir=tmp_path / "x", max_steps=1, partial_future=False, **TINY)
    # ...but with partial futures it needs only 40 + 2: one context and one future step.
    run = fit(tiny_ckpt, short, output_dir=tmp_path / "p", max_steps=2, partial_future=True, **TINY)
    assert run.final_dir.is_dir()
    with pytest.raises(InputError, match="need >= 42 steps"):
        fit(
            tiny_ckpt,
            series() + [np.arange(41.0)],
            output_dir=tmp_path / "y",
            max_steps=1,
            partial_future=True,
            **TINY,
        )


def test_compiled_training_matches_eager(tmp_path, monkeypatch):
    # compile=True runs the same loss through torch.compile (reference recurrence, fused by
    # Inductor): after 3 steps from one seed the weights agree with the eager run, and steps
    # 2-3 moved them (against a 1-step run) by far more than the tolerance. AdamW turns
    # rounding-level gradient differences into up to ~1.5e-4 on the sLSTM biases (as much as
    # between the eager torch_ref and cpu_fused kernels), hence atol 5e-4.
    pytest.importorskip("torch._inductor")
    from rexforge.kernels.compiled_cpu import _unavailable

    if _unavailable():
        pytest.skip(_unavailable())
    opts = dict(TINY, context_length=64, max_steps=3, validation=False, mode="scratch")
    eager = fit("tirex-test", series(), output_dir=tmp_path / "eager", **opts)
    real_compile, compiled_calls = torch.compile, []

    def counting_compile(fn, **kwargs):  # proves the compiled path ran, not the eager one
        compiled_calls.append(fn)
        return real_compile(fn, **kwargs)

    monkeypatch.setattr(torch, "compile", counting_compile)
    compiled = fit("tirex-test", series(), output_dir=tmp_path / "compiled", compile=True, **opts)
    assert len(compiled_calls) == 1
    a = read_checkpoint(eager.final_dir).state_dict
    b = read_checkpoint(compiled.final_dir).state_dict
    one = fit("tirex-test", series(), output_dir=tmp_path / "one", **dict(opts, max_steps=1))
    s = read_checkpoint(one.final_dir).state_dict
    moved = max((a[k] - s[k]).abs().max().item() for k in a)
    assert moved > 3e-3
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=5e-4, msg=k)


def test_trained_model_forecasts_with_the_context_it_trained_on(tmp_path, tiny_ckpt, caplog):
    # tirex-test's train_ctx_len is 256; these runs train on 96-step windows (three patches).
    # Forecasting pads every context to train_ctx_len, and each padded patch moves the sLSTM
    # state, so the export must pad short series as the training windows were padded: to 96.
    assert read_checkpoint(tiny_ckpt).config.train_ctx_len == 256
    opts = dict(TINY, validation=False, checkpoint_every_n_steps=1, keep_checkpoints=-1)
    run = fit(tiny_ckpt, series(), output_dir=tmp_path / "a", max_steps=2, **opts)
    trained = read_checkpoint(run.final_dir)
    assert trained.config.train_ctx_len == 96
    assert read_checkpoint(run.final_dir / "model.ckpt").config.train_ctx_len == 96
    # The export holds the training context once: in the model config, not in train_config.
    assert "context_length" not in trained.metadata["train_config"]
    short = series(2, 40, seed=5)
    padded_96, _ = load_model(run.final_dir).forecast(short, 8, output_type="numpy")
    # An export as made before: train_config recorded the context, train_ctx_len another.
    old_metadata = dict(trained.metadata)
    old_metadata["train_config"] = {**trained.metadata["train_config"], "context_length": 96}
    as_256 = Checkpoint(
        replace(trained.config, train_ctx_len=256), trained.state_dict, old_metadata
    )
    write_folder(tmp_path / "as256", as_256)
    caplog.clear()
    load_model(run.final_dir)
    assert "train_ctx_len" not in caplog.text
    # A model padded to another length than it trained on (as exports before this fix were)
    # loads with a one-line warning that names both lengths and the fix.
    padded_256, _ = load_model(tmp_path / "as256").forecast(short, 8, output_type="numpy")
    assert "trained on 96-step contexts but pads/cuts to train_ctx_len 256" in caplog.text
    assert np.abs(padded_96 - padded_256).max() > 1e-3  # the padding does change forecasts
    # A run saved while exports kept the base's train_ctx_len resumes (the config otherwise
    # matches), and its export pads to the training context.
    mid = tmp_path / "a" / "checkpoints" / "step-000001.ckpt"
    payload = torch.load(mid, map_location="cpu", weights_only=True)
    assert payload["hyper_parameters"]["model_config"]["train_ctx_len"] == 96
    payload["hyper_parameters"]["model_config"]["train_ctx_len"] = 256
    torch.save(payload, tmp_path / "old.ckpt")
    resumed = fit(
        tiny_ckpt,
        series(),
        output_dir=tmp_path / "b",
        max_steps=2,
        resume=tmp_path / "old.ckpt",
        **opts,
    )
    assert read_checkpoint(resumed.final_dir).config.train_ctx_len == 96
    # Without --context-length a run trains on, and keeps, the model's own train_ctx_len.
    default = fit(
        tiny_ckpt,
        series(length=400),
        output_dir=tmp_path / "c",
        max_steps=1,
        **{k: v for k, v in opts.items() if k != "context_length"},
    )
    assert read_checkpoint(default.final_dir).config.train_ctx_len == 256


def test_fine_tunes_keep_their_bases_default_rollout(tiny_ckpt):
    from rexforge.train.loop import resolve_base

    assert resolve_base("starter", "lora")[2]["default_rollout"] == "paths"
    assert "default_rollout" not in resolve_base("starter", "scratch")[2]
    assert "default_rollout" not in resolve_base(str(tiny_ckpt), "full")[2]


@pytest.mark.parametrize("mode, auto", [("full", False), ("lora", False), ("full", True)])
def test_fit_from_a_loaded_forecaster_returns_a_new_one_and_leaves_it_unchanged(
    tmp_path, tiny_ckpt, monkeypatch, mode, auto
):
    # Chronos-style fit: the forecaster passed in keeps forecasting as before, also when the
    # zero-shot guard (auto) exports the base weights themselves (forced here: the tiny run
    # would keep its fine-tuned weights).
    import rexforge.train.loop as loop

    monkeypatch.setattr(loop, "keep_fine_tuned", lambda *args: False)
    base = load_model(tiny_ckpt)
    weights = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    metadata = dict(base.metadata)
    ctx = series(2, 150, seed=3)
    before, _ = base.forecast(ctx, 40, output_type="numpy")
    run = fit(base, series(), output_dir=tmp_path / mode, mode=mode, max_steps=2, auto=auto, **TINY)
    trained = run.forecaster
    assert trained is not base and trained.model is not base.model
    after = base.model.state_dict()
    assert after.keys() == weights.keys()
    for name, value in weights.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=0, msg=name)
    assert base.metadata == metadata and not base.model.training
    np.testing.assert_array_equal(base.forecast(ctx, 40, output_type="numpy")[0], before)
    # The returned model holds weights of its own, trained unless the guard kept the base's.
    shared = {p.data_ptr() for p in base.model.parameters()}
    assert not shared & {p.data_ptr() for p in trained.model.parameters()}
    changed = trained.model.state_dict()
    assert (run.report is not None) == auto
    assert auto == all(torch.equal(changed[k], weights[k]) for k in weights)  # the guard's base


def test_rexforge_fit_and_the_forecasters_fit_return_a_new_model(tmp_path, tiny_ckpt):
    import rexforge

    base = load_model(tiny_ckpt)
    weights = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    trained = base.fit(series(), output_dir=tmp_path / "a", max_steps=3, auto=False, **TINY)
    assert isinstance(trained, rexforge.TiRexForecaster) and trained is not base
    assert trained.run_dir == tmp_path / "a" and (trained.run_dir / "final").is_dir()
    assert trained.fit_report is None  # auto=False: no guard
    assert all(torch.equal(base.model.state_dict()[k], v) for k, v in weights.items())
    assert not all(torch.equal(trained.model.state_dict()[k], v) for k, v in weights.items())
    # The module-level form takes a path as well, and reports the guard's verdict.
    guarded = rexforge.fit(str(tiny_ckpt), series(), output_dir=tmp_path / "b", max_steps=3, **TINY)
    assert guarded.fit_report is not None and guarded.fit_report.kept in ("fine-tuned", "base")


def test_the_guard_scores_the_tail_with_the_bases_default_rollout(tmp_path, tiny_ckpt):
    # The same weights with and without ``default_rollout: stateful``: the zero-shot tail
    # (horizon 40 > one patch) is forecast as the exported model will forecast it.
    from rexforge.io.checkpoint import Checkpoint, read_checkpoint, write_folder

    base = read_checkpoint(tiny_ckpt)
    stateful = write_folder(
        tmp_path / "stateful",
        Checkpoint(base.config, base.state_dict, {**base.metadata, "default_rollout": "stateful"}),
    )
    scores = {}
    for name, model in (("exact", tiny_ckpt), ("stateful", stateful)):
        run = fit(model, series(), output_dir=tmp_path / name, max_steps=2, **TINY)
        assert run.report.settings["rollout"] == name
        assert load_model(run.final_dir).default_rollout == name
        scores[name] = run.report.zero_shot["wql"]
    assert scores["exact"] != scores["stateful"]
