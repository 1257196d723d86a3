"""Run by test_ddp.py in a fresh interpreter: ``python ddp_script.py DEVICES BATCH OUT``."""

import json
import sys

import numpy as np
import torch

from rexforge.io.checkpoint import read_checkpoint
from rexforge.train.loop import fit


def series(n=4, length=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [np.sin(t / (5 + i)) + 0.02 * t + 0.1 * rng.standard_normal(length) for i in range(n)]


if __name__ == "__main__":
    devices, batch, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    result = fit(
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
        validation=False,
        seed=0,
        accelerator="cpu",
        devices=devices,
        # ddp_spawn: worker processes by multiprocessing, gloo backend on CPU
        strategy="ddp_spawn" if devices > 1 else "auto",
    )
    weights = read_checkpoint(result.final_dir).state_dict
    print(
        "RESULT "
        + json.dumps(
            {
                "train_loss": float(result.metrics["train_loss"]),
                "weight_norm": float(torch.cat([w.flatten() for w in weights.values()]).norm()),
            }
        )
    )
