"""Run by test_interrupted_training.py in a fresh interpreter, to be killed from outside.

    python train_script.py fit DATA.csv OUT_DIR   # fit(...) with resume="auto"
    python train_script.py cli ARGS...            # rexforge.cli.main(ARGS), exit with its status

``REXFORGE_TEST_STEP_DELAY`` (seconds) slows every training step down so that a signal sent
from the test lands in the middle of the run; ``REXFORGE_TEST_VAL_DELAY`` does the same for
each validation batch (and prints its index). The delays change no number.
"""

import os
import sys
import time

import torch

import rexforge.train.module as module

# Both runs of a comparison use one thread: bit-identical results need the same reduction order.
torch.set_num_threads(1)

# The options of the reference run in test_interrupted_training.py, as fit() keywords.
OPTIONS = dict(
    mode="scratch",
    prediction_length=32,
    context_length=96,
    batch_size=4,
    lr=3e-3,
    warmup_steps=1,
    max_steps=8,
    checkpoint_every_n_steps=1,
    validation=False,
    keep_checkpoints=-1,
    seed=0,
)


def slow_down(delay: float) -> None:
    step = module.TiRexTrainingModule.training_step

    def slow_step(self, *args, **kwargs):
        time.sleep(delay)
        return step(self, *args, **kwargs)

    module.TiRexTrainingModule.training_step = slow_step


def slow_validation(delay: float) -> None:
    """Each validation batch prints its index and sleeps ``delay`` s before computing."""
    step = module.TiRexTrainingModule.validation_step

    def slow_step(self, batch, batch_idx, *args, **kwargs):
        print(f"validation batch {batch_idx}", flush=True)
        time.sleep(delay)
        return step(self, batch, batch_idx, *args, **kwargs)

    module.TiRexTrainingModule.validation_step = slow_step


if __name__ == "__main__":
    slow_down(float(os.environ.get("REXFORGE_TEST_STEP_DELAY", "0")))
    if os.environ.get("REXFORGE_TEST_VAL_DELAY"):
        slow_validation(float(os.environ["REXFORGE_TEST_VAL_DELAY"]))
    if sys.argv[1] == "fit":
        from rexforge.data.sources import load_series
        from rexforge.train.loop import fit

        fit(
            "tirex-test", load_series(sys.argv[2]), output_dir=sys.argv[3], resume="auto", **OPTIONS
        )
    else:
        from rexforge.cli import main

        sys.exit(main(sys.argv[2:]))
