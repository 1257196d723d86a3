"""Run by test_multinode.py in a fresh interpreter, once per process of a run:
``python multinode_script.py OUT NUM_NODES BATCH [RESUME]``. A multi-node run gets its rank
from the environment, as torchrun sets it (the test plays torchrun)."""

import sys

import numpy as np

from rexforge.train.loop import fit


def series(n=4, length=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [np.sin(t / (5 + i)) + 0.02 * t + 0.1 * rng.standard_normal(length) for i in range(n)]


if __name__ == "__main__":
    out, num_nodes, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resume = sys.argv[4] if len(sys.argv) > 4 else None
    fit(
        "tirex-test",
        series(),
        output_dir=out,
        mode="scratch",
        prediction_length=32,
        context_length=96,
        batch_size=batch,
        lr=3e-3,
        warmup_steps=1,
        max_steps=6,
        checkpoint_every_n_steps=3,
        validation=False,
        seed=0,
        accelerator="cpu",
        devices=1,
        num_nodes=num_nodes,
        strategy="ddp" if num_nodes > 1 else "auto",
        resume=resume,
        progress_bar=False,
    )
    print("DONE")
