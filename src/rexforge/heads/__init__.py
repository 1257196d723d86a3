"""Classification and regression heads on frozen TiRex embeddings (the official ``tirex``
heads' public interface); import them from ``rexforge.classification`` and
``rexforge.regression``."""
