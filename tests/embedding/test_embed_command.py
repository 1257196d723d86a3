"""``rexforge embed``: one row per series, equal to the Python embedding; bad input is one
``error:`` line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge.cli import main
from rexforge.embedding import TiRexEmbedding


def long_csv(path, lengths=(40, 70)):
    rng = np.random.default_rng(0)
    rows = [
        (f"s{i}", t, float(v))
        for i, n in enumerate(lengths)
        for t, v in enumerate(rng.normal(size=n).cumsum())
    ]
    pd.DataFrame(rows, columns=["item_id", "timestamp", "target"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_embed_writes_one_row_per_series(tmp_path, tiny_ckpt, suffix):
    pytest.importorskip("pyarrow") if suffix == ".parquet" else None
    data = long_csv(tmp_path / "d.csv")
    out = tmp_path / f"emb{suffix}"
    assert (
        main(["embed", "--model", str(tiny_ckpt), "--data", str(data), "--output", str(out)]) == 0
    )
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame["item_id"]) == ["s0", "s1"]
    emb = TiRexEmbedding(model=str(tiny_ckpt))
    source = pd.read_csv(data)
    for i, item in enumerate(("s0", "s1")):
        values = source.loc[source.item_id == item, "target"].to_numpy(np.float32)
        expected = emb(torch.from_numpy(values)[None, None]).numpy()[0]
        np.testing.assert_allclose(frame.iloc[i, 1:].to_numpy(float), expected, atol=1e-5)
    assert frame.shape[1] == 1 + expected.shape[0]


def test_embed_augmented_needs_one_length(tmp_path, tiny_ckpt, capsys):
    data = long_csv(tmp_path / "d.csv")
    args = ["embed", "--model", str(tiny_ckpt), "--data", str(data), "--data-augmentation"]
    assert main([*args, "--output", str(tmp_path / "e.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one length" in err[0]
    same = long_csv(tmp_path / "same.csv", lengths=(50, 50))
    args[4] = str(same)
    assert main([*args, "--output", str(tmp_path / "e.csv")]) == 0
    plain = TiRexEmbedding(model=str(tiny_ckpt)).embedding_dim_per_variate
    # item_id, differences and plain embeddings, 4 statistics of 9 pieces (50 = 8 x 6 + 2)
    assert pd.read_csv(tmp_path / "e.csv").shape == (2, 1 + 2 * plain + 9 * 4)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--output", "emb.txt"], "must end in .csv or .parquet"),
        (["--output", "e.csv", "--batch-size", "0"], "--batch-size"),
        (["--output", "e.csv", "--model", "no/such-model-dir/x"], "not found"),
    ],
)
def test_embed_bad_arguments(tmp_path, tiny_ckpt, capsys, extra, message):
    data = long_csv(tmp_path / "d.csv")
    args = ["embed", "--model", str(tiny_ckpt), "--data", str(data), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
