"""Run by test_ddp.py in a fresh interpreter: ``python ddp_script.py DEVICES BATCH OUT``."""

import json
import os
import sys

import numpy as np
import torch

from rexforge.io.checkpoint import read_checkpoint
from rexforge.train.loop import fit


def series(n=4, length=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [np.sin(t / (5 + i)) + 0.02 * t + 0.1 * rng.standard_normal(length) for i in range(n)]


if os.environ.get("REXFORGE_TEST_NAN_ON_RANK"):
    # Module level, so that spawned workers (which import this file) poison their loss too:
    # the loss of rank REXFORGE_TEST_NAN_ON_RANK becomes NaN at its third micro-batch.
    import rexforge.train.objective as objective

    _real, _calls = objective.tokens_loss, {"n": 0}

    def _poisoned(*args, **kwargs):
        loss = _real(*args, **kwargs)
        _calls["n"] += 1
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        bad = _calls["n"] == 3 and rank == int(os.environ["REXFORGE_TEST_NAN_ON_RANK"])
        return loss * float("nan") if bad else loss

    objective.tokens_loss = _poisoned


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
