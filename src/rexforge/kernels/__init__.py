"""sLSTM recurrence kernels: pure functions with one signature, chosen through a registry."""

from rexforge.kernels.registry import get_kernel, list_kernels, register_kernel

__all__ = ["get_kernel", "list_kernels", "register_kernel"]
