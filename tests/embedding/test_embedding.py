"""TiRexEmbedding gives the official embeddings (tirex-ts 1.4.2) on the same random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rexforge
from rexforge.embedding import TiRexEmbedding, embed_series
from rexforge.errors import InputError
from tests.hub_cache import add_to_cache, use_offline_cache

official_embedding = pytest.importorskip("tirex.models.embedding", reason="tirex-ts: dev extra")
official_tirex = pytest.importorskip("tirex.models.tirex")


def official(path, data_augmentation: bool, batch_size: int = 512):
    """The official TiRexEmbedding on a local checkpoint (its constructor loads NX-AI/TiRex
    from the hub, so it is built around the local model instead)."""
    emb = official_embedding.TiRexEmbedding.__new__(official_embedding.TiRexEmbedding)
    torch.nn.Module.__init__(emb)
    emb.data_augmentation, emb.number_of_patches = data_augmentation, 8
    emb.batch_size, emb.device, emb._compile = batch_size, "cpu", False
    emb.model = official_tirex.TiRexZero.from_pretrained(str(path), backend="torch", device="cpu")
    return emb


def random_walks(batch: int, variates: int, steps: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    data = torch.randn(batch, variates, steps, generator=gen).cumsum(-1) + 3.0
    data[0, 0, steps // 3 : steps // 3 + 4] = float("nan")  # a gap
    data[1, -1] = 2.5  # a constant variate
    return data


# Shorter than a patch, not a multiple of the patch size, one context, longer than the
# tiny model's train_ctx_len (256).
@pytest.mark.parametrize("steps", [20, 50, 256, 700])
@pytest.mark.parametrize("augment", [False, True])
def test_matches_official(tiny_ckpt, steps, augment):
    data = random_walks(6, 2, steps, seed=steps)
    ref = official(tiny_ckpt, augment)(data)
    model = rexforge.load_model(tiny_ckpt, numerics="official")
    ours = TiRexEmbedding(model=model, data_augmentation=augment, batch_size=4)(data)
    assert ours.shape == ref.shape
    assert ours.dtype == torch.float32
    deviation = ((ours - ref).abs().max() / ref.std()).item()
    assert deviation < 1e-3, deviation


def test_shapes_and_layout(tiny_ckpt):
    model = rexforge.load_model(tiny_ckpt, numerics="official")
    emb = TiRexEmbedding(model=model)
    b = model.config.block_kwargs
    data = random_walks(3, 2, 64, seed=1)
    plain = emb(data)
    assert plain.shape == (3, b.num_blocks * 2 * b.embedding_dim)
    # Layer-normalised rows: mean 0, (population) std 1.
    assert plain.mean(dim=1).abs().max() < 1e-5
    assert (plain.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    # A 2-D batch is one variate; numpy arrays work like tensors.
    one = emb(data[:, 0].numpy())
    assert torch.equal(one, emb(data[:, :1]))
    augmented = TiRexEmbedding(model=model, data_augmentation=True)(data)
    # differences + plain + (mean, std, max, min) of 8 pieces per variate
    assert augmented.shape == (3, 2 * plain.shape[1] + 2 * 8 * 4)


def test_bf16_numerics_close_to_official(tiny_ckpt):
    data = random_walks(8, 1, 300, seed=5)
    exact = TiRexEmbedding(model=rexforge.load_model(tiny_ckpt, numerics="official"))(data)
    fast = TiRexEmbedding(model=rexforge.load_model(tiny_ckpt, numerics="bf16"))(data)
    # bf16 rounding is emulated in fp32: equal on CPUs with native bf16 dot products, and a
    # few 1e-3 of the std elsewhere (random tiny weights); 5e-2 holds on any CPU.
    assert ((fast - exact).abs().max() / exact.std()).item() < 5e-2


def test_default_model_is_nxai_tirex_from_the_hub_cache(tmp_path, monkeypatch, tiny_ckpt):
    add_to_cache(tmp_path / "hub", "NX-AI/TiRex", {"model.ckpt": tiny_ckpt})
    use_offline_cache(monkeypatch, tmp_path / "hub")
    data = random_walks(2, 1, 40, seed=2)
    default = rexforge.TiRexEmbedding(device="cpu")
    local = TiRexEmbedding(model=str(tiny_ckpt))
    assert default.model_source == "NX-AI/TiRex"
    assert torch.equal(default(data), local(data))


def test_series_of_different_lengths_embed_alone(tiny_ckpt):
    emb = TiRexEmbedding(model=str(tiny_ckpt))
    rng = np.random.default_rng(0)
    series = [rng.normal(size=n).cumsum() for n in (30, 90, 30)]
    rows = embed_series(emb, series)
    assert rows.shape == (3, emb(torch.zeros(1, 1, 8)).shape[1])
    for i, values in enumerate(series):
        alone = emb(torch.tensor(values, dtype=torch.float32)[None, None]).numpy()[0]
        np.testing.assert_allclose(rows[i], alone, atol=1e-6)
    with pytest.raises(InputError, match="one length"):
        embed_series(TiRexEmbedding(model=str(tiny_ckpt), data_augmentation=True), series)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 1, 3, 4), "batch, variates, steps"),
        (torch.zeros(0, 1, 10), "empty dimension"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_input_is_one_error(tiny_ckpt, bad, message):
    emb = TiRexEmbedding(model=str(tiny_ckpt))
    with pytest.raises(InputError, match=message):
        emb(bad)


def test_bad_batch_size(tiny_ckpt):
    with pytest.raises(InputError, match="batch_size"):
        TiRexEmbedding(batch_size=0, model=str(tiny_ckpt))
