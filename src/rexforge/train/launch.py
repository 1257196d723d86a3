"""Which launcher started this training process, and whether ``--num-nodes`` x ``--devices``
matches the processes it started.

Lightning reads the launcher's environment itself (torchrun's ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``GROUP_RANK``, SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``/..., or by hand
``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK``/``LOCAL_RANK``/``WORLD_SIZE``); rexforge passes
it through untouched. What it adds is the check, before any data or model work, that the run's
own topology agrees with the launcher's: a mismatch would otherwise end in Lightning's
multi-line traceback, or in processes that wait for peers that never come.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rexforge.errors import ConfigError


@dataclass(frozen=True)
class Launch:
    """What a launcher says about the run: its name and, where it says so, the total number of
    processes, of machines and of processes per machine (None: not said)."""

    launcher: str
    world_size: int | None = None
    nodes: int | None = None
    per_node: int | None = None


def detect_launch(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The launcher of this process (None: a plain single process), in Lightning's order of
    precedence: torchrun (``TORCHELASTIC_RUN_ID``), SLURM (``SLURM_NTASKS``, unless the job is
    named ``bash``/``interactive``, Lightning's opt-out), then processes started by hand
    (``LOCAL_RANK`` set)."""
    env = os.environ if environ is None else environ
    if env.get("TORCHELASTIC_RUN_ID") is not None:
        return Launch("torchrun", _int(env, "WORLD_SIZE"), per_node=_int(env, "LOCAL_WORLD_SIZE"))
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        return Launch(
            "SLURM",
            _int(env, "SLURM_NTASKS"),
            nodes=_int(env, "SLURM_NNODES"),
            per_node=_int(env, "SLURM_NTASKS_PER_NODE"),
        )
    if "LOCAL_RANK" in env:
        return Launch("the launch environment", _int(env, "WORLD_SIZE"))
    return None


def check_launch(
    num_nodes: int, devices: int | str, environ: Mapping[str, str] | None = None
) -> Launch | None:
    """Raise one ``ConfigError`` when ``num_nodes`` x ``devices`` (processes per node) does
    not match what the launcher started; returns the detected launch. ``devices`` that is not
    a number (``"auto"``) is left to Lightning."""
    launch = detect_launch(environ)
    if launch is None or isinstance(devices, bool) or not isinstance(devices, int):
        return launch
    name = launch.launcher
    if launch.per_node is not None and launch.per_node != devices:
        raise ConfigError(
            f"{name} started {launch.per_node} processes per node, but --devices is {devices}: "
            f"set --devices {launch.per_node}"
        )
    if launch.nodes is not None and launch.nodes != num_nodes:
        raise ConfigError(
            f"{name} runs on {launch.nodes} nodes, but --num-nodes is {num_nodes}: "
            f"set --num-nodes {launch.nodes}"
        )
    if launch.world_size is not None and launch.world_size != num_nodes * devices:
        raise ConfigError(
            f"{name} started {launch.world_size} processes in all (WORLD_SIZE), but "
            f"--num-nodes {num_nodes} x --devices {devices} = {num_nodes * devices}: set "
            "--num-nodes to the number of machines and --devices to the processes on each"
        )
    return launch


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"the launcher set {name}={value!r}, not a whole number") from None
