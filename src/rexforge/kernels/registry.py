"""Registry of recurrence kernels, grouped by kind; within a kind every entry shares one
signature.

Kinds: ``"slstm"`` (TiRex's sLSTM; signature in ``kernels.common``; the default everywhere),
``"tirex2_slstm"`` and ``"tirex2_mlstm"`` (TiRex-2's cells; signatures in ``kernels.tirex2``,
fast CPU kernels in ``kernels.tirex2_slstm_cpu`` and ``kernels.tirex2_mlstm_cpu``),
``"linear"`` (projections for ``numerics="fast"``; ``kernels.linear``).
A kind's ``"auto"`` only ever picks among that kind's kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from rexforge.errors import ConfigError

logger = logging.getLogger(__name__)

KernelFn = Callable


@dataclass(frozen=True)
class KernelEntry:
    name: str
    fn: KernelFn
    # Returns None when usable here, else a one-line reason (and how to fix it).
    unavailable_reason: Callable[[], str | None]
    # Preference for ``get_kernel("auto")``: highest available wins.
    priority: int
    description: str


DEFAULT_KIND = "slstm"
_KERNELS: dict[str, dict[str, KernelEntry]] = {}  # kind -> name -> entry
_KIND_LABELS = {
    "slstm": "sLSTM",
    "tirex2_slstm": "TiRex-2 sLSTM",
    "tirex2_mlstm": "TiRex-2 mLSTM",
    "linear": "linear",
}


def _label(kind: str) -> str:
    return _KIND_LABELS.get(kind, kind)


def register_kernel(
    name: str,
    fn: KernelFn,
    *,
    priority: int = 0,
    unavailable_reason: Callable[[], str | None] = lambda: None,
    description: str = "",
    kind: str = DEFAULT_KIND,
) -> None:
    entries = _KERNELS.setdefault(kind, {})
    if name in entries:
        logger.warning("%s kernel %r registered twice; keeping the newer one", _label(kind), name)
    entries[name] = KernelEntry(name, fn, unavailable_reason, priority, description)


def list_kernels(available_only: bool = False, kind: str = DEFAULT_KIND) -> list[str]:
    _ensure_builtin()
    entries = _KERNELS.get(kind, {})
    names = sorted(entries, key=lambda k: -entries[k].priority)
    if available_only:
        names = [n for n in names if entries[n].unavailable_reason() is None]
    return names


def get_kernel(name: str = "auto", kind: str = DEFAULT_KIND) -> KernelFn:
    """The ``kind`` kernel registered as ``name``; ``"auto"`` picks the best available one."""
    _ensure_builtin()
    if kind not in _KERNELS:
        raise ConfigError(f"unknown kernel kind {kind!r}; known: {', '.join(_KERNELS)}")
    if name == "auto":
        name = list_kernels(available_only=True, kind=kind)[0]
        logger.debug("%s kernel 'auto' -> %s", _label(kind), name)
    entries = _KERNELS[kind]
    if name not in entries:
        known = ", ".join(list_kernels(kind=kind))
        raise ConfigError(f"unknown {_label(kind)} kernel {name!r}; known: {known}")
    reason = entries[name].unavailable_reason()
    if reason is not None:
        raise ConfigError(f"{_label(kind)} kernel {name!r} is not available here: {reason}")
    return entries[name].fn


def kernel_name(fn: KernelFn) -> str:
    _ensure_builtin()
    for entries in _KERNELS.values():
        for entry in entries.values():
            if entry.fn is fn:
                return entry.name
    return getattr(fn, "__name__", "custom")


_BUILTIN_LOADED = False


def _ensure_builtin() -> None:
    # Import lazily so that the registry module itself stays cheap and cycle-free.
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from rexforge.kernels.reference import slstm_torch_ref

    register_kernel(
        "torch_ref",
        slstm_torch_ref,
        priority=0,
        description="plain torch loop, autograd backward; the reference",
    )
    from rexforge.kernels import (  # noqa: F401  (they register themselves)
        compiled_cpu,
        fused_cpu,
        linear,
        native_cpu,
        tirex2,
        tirex2_mlstm_cpu,
        tirex2_slstm_cpu,
    )
