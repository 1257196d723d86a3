"""Training: pretrain from scratch and fine-tune (full, frozen, LoRA) with one loop.

``loss`` (pinball), ``masking`` (contiguous patch masking), ``objective`` (one batch of windows
-> one loss), ``modes``/``lora`` (which parameters train), ``module`` (the LightningModule),
``fit`` (the loop every mode shares), ``command`` (``rexforge pretrain`` / ``finetune``).
Lightning is imported only by ``module``, ``fit`` and ``command``.
"""

__all__ = ["fit", "FitResult"]


def __getattr__(name):
    # fit pulls in Lightning; keep ``import rexforge.train.loss`` free of it.
    if name in __all__:
        from rexforge.train import fit as _fit

        return getattr(_fit, name)
    raise AttributeError(f"module 'rexforge.train' has no attribute {name!r}")
