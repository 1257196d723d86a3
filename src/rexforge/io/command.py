"""``rexforge info``: what a checkpoint holds."""

from __future__ import annotations

import json as _json


def info(path: str, *, json: bool = False) -> int:
    """Show a checkpoint's config, size and notice.

    Args:
        path: checkpoint file or folder, or 'starter'
        json: print machine-readable JSON
    """
    as_json = json  # the flag is --json; the module is needed below
    from rexforge.assets import resolve_starter
    from rexforge.io.checkpoint import read_checkpoint
    from rexforge.registry import family_of

    path = resolve_starter(path)
    ckpt = read_checkpoint(path)
    family = family_of(ckpt.config)
    # Once per tensor: TiRex-2 reaches some tensors under two names (its alias pairs).
    unique = {id(t): t for t in ckpt.state_dict.values()}.values()
    n_params = sum(int(t.numel()) for t in unique)
    info = {
        "path": str(path),
        "family": family.name,
        "parameters": n_params,
        "config": ckpt.config.to_dict(),
        "metadata": ckpt.metadata,
        "fast_numerics": _fast_numerics(family.name),
    }
    if as_json:
        print(_json.dumps(info, indent=2, default=str))
        return 0
    print(f"checkpoint   {path}")
    print(f"family       {family.name}")
    print(f"parameters   {n_params:,}")
    for label, text in family.describe(ckpt.config) if family.describe else ():
        print(f"{label:<12} {text}")
    if family.name == "tirex":  # TiRex's two rollouts; TiRex-2 has its own (see README)
        print(f"rollout      {ckpt.metadata.get('default_rollout', 'exact')} (default of forecast)")
    fast = info["fast_numerics"]
    print(f"fast         {fast['plan']} ({'; '.join(fast['notes'])})")
    for key in (
        "notice",
        "license",
        "derived_from_nxai_weights",
        "rexforge_version",
        "mode",
        "base_checkpoint",
    ):
        if key in ckpt.metadata:
            print(f"{key:<12} {ckpt.metadata[key]}")
    return 0


def _fast_numerics(family: str) -> dict:
    """What numerics="fast" picks for a model of ``family`` on this machine (TiRex: detected
    and measured now; TiRex-2: its fast recurrence kernels where available)."""
    if family == "tirex2":
        from rexforge.kernels.tirex2 import recurrence_kernels

        slstm, mlstm = recurrence_kernels("auto", "fast")
        plan = f"recurrences sLSTM {slstm}, mLSTM {mlstm} (fp32)"
        return {"plan": plan, "notes": ["auto = the reference kernels (tirex-2's numbers)"]}
    from rexforge.kernels.fast import choose_fast_plan

    plan = choose_fast_plan()
    return {"plan": plan.describe(), "notes": list(plan.notes)}
