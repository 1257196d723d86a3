"""Registry of sLSTM kernels: every entry shares the signature documented in ``common``."""

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


_KERNELS: dict[str, KernelEntry] = {}


def register_kernel(
    name: str,
    fn: KernelFn,
    *,
    priority: int = 0,
    unavailable_reason: Callable[[], str | None] = lambda: None,
    description: str = "",
) -> None:
    if name in _KERNELS:
        logger.warning("sLSTM kernel %r registered twice; keeping the newer one", name)
    _KERNELS[name] = KernelEntry(name, fn, unavailable_reason, priority, description)


def list_kernels(available_only: bool = False) -> list[str]:
    _ensure_builtin()
    names = sorted(_KERNELS, key=lambda k: -_KERNELS[k].priority)
    if available_only:
        names = [n for n in names if _KERNELS[n].unavailable_reason() is None]
    return names


def get_kernel(name: str = "auto") -> KernelFn:
    """The kernel function registered as ``name``; ``"auto"`` picks the best available one."""
    _ensure_builtin()
    if name == "auto":
        name = list_kernels(available_only=True)[0]
        logger.debug("sLSTM kernel 'auto' -> %s", name)
    if name not in _KERNELS:
        raise ConfigError(f"unknown sLSTM kernel {name!r}; known: {', '.join(list_kernels())}")
    reason = _KERNELS[name].unavailable_reason()
    if reason is not None:
        raise ConfigError(f"sLSTM kernel {name!r} is not available here: {reason}")
    return _KERNELS[name].fn


def kernel_name(fn: KernelFn) -> str:
    _ensure_builtin()
    for entry in _KERNELS.values():
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
    from rexforge.kernels import compiled_cpu, fused_cpu  # noqa: F401  (register themselves)
