"""The TiRex-2 network (see ``tirex2.py``); its recurrences live in ``rexforge.kernels.tirex2``."""

from rexforge.model.tirex2.tirex2 import TiRex2Model, count_parameters

__all__ = ["TiRex2Model", "count_parameters"]
