"""Classification on real labelled series: heads on TiRex embeddings against plain baselines.

    python benchmarks/embedding_classification.py [--model starter] [--sets gunpoint,...]

UCR/UEA sets that ship inside the sktime wheel (no download; runs offline), on their official
train/test splits: GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf (univariate) and
BasicMotions (6 variates). Heads: ``TirexLinearClassifier`` and ``TirexRFClassifier`` on the
embeddings of ``--model`` (default the bundled starter model), with and without the official
``data_augmentation``. Baselines on the raw values: 1-nearest-neighbour with Euclidean distance
on z-normalised series (the classic UCR reference) and logistic regression. Reported: test
accuracy, and the time to fit + predict each head (embeddings included).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import apply_isa_cap, machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

# name -> sktime loader
SETS = {
    "gunpoint": "load_gunpoint",
    "italy_power_demand": "load_italy_power_demand",
    "arrow_head": "load_arrow_head",
    "osuleaf": "load_osuleaf",
    "basic_motions": "load_basic_motions",
}
# Linear head settings: the official defaults (10 epochs at lr 1e-4) barely move a fresh
# head on sets of a few dozen series, so it trains longer, with early stopping.
LINEAR = dict(max_epochs=300, lr=3e-3, batch_size=32, patience=30, seed=0)
FOREST = dict(n_estimators=300, random_state=0)


def load_set(name: str):
    """(x_train [N, V, T], y_train [N], x_test, y_test) as float32 / int64 label indices."""
    import sktime.datasets

    loader = getattr(sktime.datasets, SETS[name])
    x_train, y_train = loader(split="train", return_type="numpy3D")
    x_test, y_test = loader(split="test", return_type="numpy3D")
    classes = np.unique(np.concatenate([y_train, y_test]))
    return (
        x_train.astype(np.float32),
        np.searchsorted(classes, y_train),
        x_test.astype(np.float32),
        np.searchsorted(classes, y_test),
    )


def znorm(x: np.ndarray) -> np.ndarray:
    """[N, V, T] -> [N, V*T], each variate to zero mean / unit std."""
    mean, std = x.mean(-1, keepdims=True), x.std(-1, keepdims=True)
    return ((x - mean) / np.where(std > 0, std, 1)).reshape(len(x), -1)


def baselines(x_train, y_train, x_test, y_test) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    a, b = znorm(x_train), znorm(x_test)
    nn1 = KNeighborsClassifier(n_neighbors=1).fit(a, y_train)
    logistic = LogisticRegression(max_iter=5000).fit(a, y_train)
    return {"1-NN (ED)": nn1.score(b, y_test), "logistic regression": logistic.score(b, y_test)}


def heads(model, x_train, y_train, x_test, y_test) -> dict[str, tuple[float, float]]:
    """head name -> (test accuracy, seconds to fit and predict)."""
    import torch

    from rexforge.classification import TirexLinearClassifier, TirexRFClassifier

    results = {}
    for augment in (False, True):
        for cls, kwargs in ((TirexLinearClassifier, LINEAR), (TirexRFClassifier, FOREST)):
            start = time.perf_counter()
            head = cls(model=model, data_augmentation=augment, **kwargs)
            head.fit((torch.from_numpy(x_train), torch.from_numpy(y_train)))
            predicted = head.predict(torch.from_numpy(x_test)).numpy()
            seconds = time.perf_counter() - start
            name = f"{cls.__name__}{' + augmentation' if augment else ''}"
            results[name] = (float((predicted == y_test).mean()), seconds)
    return results


def markdown(rows: list[dict], model: str) -> str:
    columns = list(rows[0]["accuracy"])
    lines = [
        "# TiRex embeddings for classification: UCR/UEA sets bundled with sktime",
        "",
        f"Embedding model: `{model}`. Test accuracy on the official train/test splits; "
        "seconds = fit + predict of the head, embeddings included.",
        "",
        "| set | train / test | variates x steps | classes | " + " | ".join(columns) + " |",
        "|---|---|---|---:|" + "---:|" * len(columns),
    ]
    for row in rows:
        cells = [
            f"{row['accuracy'][c]:.3f}"
            + (f" ({row['seconds'][c]:.1f} s)" if c in row["seconds"] else "")
            for c in columns
        ]
        lines.append(
            f"| {row['set']} | {row['train']} / {row['test']} | {row['shape']} | "
            f"{row['classes']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="starter")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    args = parser.parse_args()
    apply_isa_cap(args.isa)
    from rexforge import load_model

    model = load_model(args.model)
    rows = []
    for name in args.sets.split(","):
        x_train, y_train, x_test, y_test = load_set(name)
        accuracy = baselines(x_train, y_train, x_test, y_test)
        timed = heads(model, x_train, y_train, x_test, y_test)
        row = {
            "set": name,
            "train": len(x_train),
            "test": len(x_test),
            "shape": f"{x_train.shape[1]} x {x_train.shape[2]}",
            "classes": int(len(np.unique(y_train))),
            "accuracy": {**accuracy, **{k: v[0] for k, v in timed.items()}},
            "seconds": {k: v[1] for k, v in timed.items()},
        }
        rows.append(row)
        print(name, {k: round(v, 3) for k, v in row["accuracy"].items()}, flush=True)
    info = machine_info()
    base = write_result(
        "embedding_classification",
        markdown(rows, args.model),
        {"machine": info, "model": args.model, "rows": rows},
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
