"""Training: pretrain from scratch and fine-tune (full, frozen, LoRA) with one loop.

``loss`` (pinball), ``masking`` (contiguous patch masking), ``objective`` (one batch of windows
-> one loss), ``modes``/``lora`` (which parameters train), ``module`` (the LightningModule),
``loop`` (``fit``, the loop every mode shares), ``command`` (``rexforge pretrain`` /
``finetune``). Lightning is imported only by ``module``, ``loop`` and ``command``.

    from rexforge.train import fit, FitResult
"""

import importlib

__all__ = ["fit", "FitResult"]


def __getattr__(name):
    # The loop pulls in Lightning; keep ``import rexforge.train.loss`` free of it. (The loop's
    # module is not called ``fit``: importing a submodule sets the package attribute of its
    # name, which would then shadow the function.)
    if name in __all__:
        return getattr(importlib.import_module("rexforge.train.loop"), name)
    raise AttributeError(f"module 'rexforge.train' has no attribute {name!r}")
