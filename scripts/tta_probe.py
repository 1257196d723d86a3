"""Test-time ensembles of a TiRex model, scored by benchmarks/eval_zero_shot.py (an experiment
for issue 19: can averaging forecasts lift the starter's zero-shot accuracy?).

Model specs ``tta:VARIANT[@PATH]`` (PATH defaults to the bundled starter) add to
eval_zero_shot's own: ``flip`` averages the forecast of each series with the mirrored forecast
of its negation; ``ctx`` averages the model read at its own context and at 256 steps (the
weights copied with ``scripts/set_context.py``); ``ctx3`` adds 128 steps; ``ctx+flip`` does
both. Quantiles are averaged level by level.

    python scripts/tta_probe.py --model starter=starter --model flip=tta:flip \\
        --datasets m1-yearly,m1-quarterly,m1-monthly \\
        --baseline-cache benchmarks/results/eval_zero_shot_baselines.json --baselines ''
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import rexforge

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
_load_model = rexforge.load_model


class AveragedForecaster:
    """The members' forecasts (and their mirrored forecasts of -x, with ``flip``) averaged."""

    def __init__(self, members: list, flip: bool) -> None:
        self.members, self.flip = members, flip

    def __getattr__(self, name):
        return getattr(self.members[0], name)

    def predict_quantiles(self, contexts, prediction_length, batch_size=512, **_):
        outs = []
        for member in self.members:
            q, _ = member.predict_quantiles(contexts, prediction_length, batch_size=batch_size)
            outs.append(np.asarray(q))
            if self.flip:
                mirrored = [-np.asarray(c, dtype=np.float64) for c in contexts]
                q, _ = member.predict_quantiles(mirrored, prediction_length, batch_size=batch_size)
                outs.append(-np.asarray(q)[..., ::-1])  # level t of -x is -(level 1-t of x)
        q = np.mean(outs, axis=0)
        return q, q[..., q.shape[-1] // 2]


def _at_context(path: str, steps: int, workdir: Path) -> str:
    target = workdir / f"ctx{steps}"
    if not target.exists():
        source = ROOT / "src/rexforge/assets/starter" if path == "starter" else Path(path)
        script = ROOT / "scripts/set_context.py"
        subprocess.run(
            [sys.executable, str(script), str(source), str(target), str(steps)], check=True
        )
    return str(target)


def load_model(path, **kwargs):
    spec = str(path)
    if not spec.startswith("tta:"):
        return _load_model(path, **kwargs)
    variant, _, base = spec[4:].partition("@")
    base = base or "starter"
    workdir = Path(tempfile.mkdtemp(prefix="tta-"))
    paths = [base]
    if "ctx" in variant:
        paths.append(_at_context(base, 256, workdir))
    if "ctx3" in variant:
        paths.append(_at_context(base, 128, workdir))
    members = [_load_model(p, **kwargs) for p in paths]
    return AveragedForecaster(members, flip="flip" in variant)


if __name__ == "__main__":
    rexforge.load_model = load_model
    import eval_zero_shot

    sys.exit(eval_zero_shot.main(sys.argv[1:]))
