"""Fine-tuning on crypto hourly close prices: zero-shot base vs full / freeze / LoRA fine-tunes.

The last ``windows x horizon`` steps of every series (by default 5 x 24 h) are held out; each
mode fine-tunes the base model with ``rexforge.train.fit`` on everything before them (checked:
every training series ends before its first test cutoff, and holds no view of the held-out
values), then the base model, each fine-tuned model, naive (last value: the strong baseline on
prices) and seasonal naive (24 h) are scored on rolling windows over the held-out part
(``rexforge.eval.backtest.backtest``, stride = horizon): WQL, MASE, sMAPE, 80% coverage, ratios to
naive, per-window values, fit time and trainable parameters per mode.

    python benchmarks/finetune_crypto.py --model runs/starter-1m/final
    python benchmarks/finetune_crypto.py --model /tmp/tiny/model.ckpt --steps 5 --modes lora \\
        --work-dir /tmp/ft --output-dir /tmp/out

Modes: ``full`` (every weight, lr ``--lr``), ``freeze`` (input embedding and the first
``--freeze-blocks`` blocks frozen, default half the blocks; lr ``--lr``), ``lora`` (adapters of
rank ``--lora-rank`` on the frozen base, lr ``--lora-lr``). Runs go to ``<work-dir>/<mode>``; a run
interrupted is resumed by the same command, a finished one is re-exported and re-evaluated
(``--overwrite`` starts over). The data (``../shared/data``) lives outside the repository: without
it the script says so and exits with status 2.

Writes ``<output-dir>/<name>-<machine>-<date>.md`` and ``.json`` (``benchmarks.results_writer``:
command, machine, versions; with timings).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import logging
import shlex
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "crypto_hourly" / "train.csv"
MODES = ("full", "freeze", "lora")
SETTINGS_FILE = "bench_settings.json"

log = logging.getLogger("finetune_crypto")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="base model (checkpoint file or folder)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of full,freeze,lora")
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per mode")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="long CSV (item_id,timestamp,target)"
    )
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--windows", type=int, default=5, help="held-out rolling windows")
    parser.add_argument(
        "--stride", type=int, default=None, help="between windows (default horizon)"
    )
    parser.add_argument("--season", type=int, default=24, help="seasonal naive and MASE period")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context-length", type=int, default=None, help="default: the model's")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak lr for full and freeze")
    parser.add_argument("--lora-lr", type=float, default=1e-3, help="peak lr for lora")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default min(100, steps/10)")
    parser.add_argument("--val-every", type=int, default=None, help="default steps/4")
    parser.add_argument("--freeze-blocks", type=int, default=None, help="default half the blocks")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "finetune_crypto")
    parser.add_argument("--overwrite", action="store_true", help="start every mode's run over")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="finetune_crypto", help="result file stem")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        parser.error(f"unknown mode(s) {', '.join(bad)}; known: {', '.join(MODES)}")
    args.modes = list(dict.fromkeys(modes))
    if args.steps < 1 or args.horizon < 1 or args.windows < 1:
        parser.error("--steps, --horizon and --windows must be >= 1")
    args.stride = args.stride or args.horizon
    return args


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_holdout(series, span: int):
    """(training series, first test cutoff per item): training = all but the last ``span`` steps,
    copied (no view of the held-out values)."""
    from rexforge.data.series import TimeSeries

    train, cutoffs = [], {}
    for s in series:
        cut = len(s) - span
        if cut < 1:
            raise SystemExit(
                f"series {s.item_id} has {len(s)} steps: too short for {span} held out"
            )
        ts = None if s.timestamps is None else s.timestamps[:cut].copy()
        t = TimeSeries(s.item_id, s.target[:cut].copy(), ts, s.freq, dict(s.meta))
        train.append(t)
        cutoffs[s.item_id] = cut
    return train, cutoffs


def check_no_leakage(series, train, cutoffs) -> dict:
    """Assert every training series ends before its first test cutoff; return the facts."""
    import numpy as np

    last_train, first_test = [], []
    for s, t in zip(series, train):
        cut = cutoffs[s.item_id]
        assert t.item_id == s.item_id
        assert len(t.target) == cut, f"{s.item_id}: training data runs past the test cutoff"
        assert not np.shares_memory(t.target, s.target), f"{s.item_id}: training data is a view"
        if s.timestamps is not None:
            assert t.timestamps[-1] < s.timestamps[cut], f"{s.item_id}: training overlaps the test"
            last_train.append(t.timestamps[-1])
            first_test.append(s.timestamps[cut])
    facts = {"per_series_checked": len(series)}
    if last_train:
        facts["latest_training_timestamp"] = str(max(last_train))
        facts["earliest_test_timestamp"] = str(min(first_test))
        facts["aligned_in_time"] = bool(max(last_train) < min(first_test))
        if not facts["aligned_in_time"]:
            log.warning(
                "series end at different times: some training data (up to %s) is later than "
                "another series' first test point (%s); per-series there is no leakage",
                facts["latest_training_timestamp"],
                facts["earliest_test_timestamp"],
            )
    return facts


def run_settings(args, mode: str, base_sha: str, data_sha: str, options: dict) -> dict:
    return {
        "mode": mode,
        "base_sha256": base_sha,
        "data_sha256": data_sha,
        "horizon": args.horizon,
        "windows": args.windows,
        "stride": args.stride,
        **options,
    }


def prepare_run_dir(run_dir: Path, settings: dict, overwrite: bool) -> int | None:
    """Resume only a run of the same settings; ``--overwrite`` removes a run this script made.
    Returns the step of the checkpoint the run resumes from (None: a fresh run)."""
    marker = run_dir / SETTINGS_FILE
    if run_dir.exists() and any(run_dir.iterdir()):
        ours = marker.is_file()
        if overwrite and ours:
            shutil.rmtree(run_dir)
        elif not ours:
            raise SystemExit(
                f"{run_dir} exists and was not made by this script: choose another --work-dir"
            )
        elif json.loads(marker.read_text()) != settings:
            raise SystemExit(
                f"{run_dir} holds a run with other settings: pass --overwrite to start over "
                "or choose another --work-dir"
            )
        else:
            log.info("%s: same settings, resuming / re-exporting", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, indent=2) + "\n")
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    from rexforge.io.training_checkpoint import read_training_checkpoint

    return int(read_training_checkpoint(last).get("global_step", 0))


def per_window(res, windows: int) -> list[dict]:
    """Dataset-level WQL and MASE of each held-out window (0 = oldest)."""
    import numpy as np

    from rexforge.eval.metrics import evaluate_forecasts

    window = np.tile(np.arange(windows), len(res.y) // windows)
    out = []
    for w in range(windows):
        rows = window == w
        _, agg = evaluate_forecasts(
            res.y[rows],
            res.quantile_forecasts[rows],
            res.mean[rows],
            res.quantile_levels,
            res.scale[rows],
        )
        out.append({"window": w, "wql": agg["wql"], "mase": agg["mase"]})
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_file():
        print(
            f"finetune_crypto: data file {args.data} not found (the shared data lives outside "
            "the repository, in ../shared/data; pass --data)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import numpy as np
    import pandas as pd
    import torch

    sys.path.insert(0, str(REPO))
    import rexforge
    from benchmarks.common import git_state, machine_info
    from benchmarks.eval_zero_shot import model_file_sha, package_version
    from benchmarks.results_writer import write_result
    from rexforge.data.sources import load_series
    from rexforge.eval import report
    from rexforge.eval.backtest import backtest
    from rexforge.eval.baselines import get_baseline
    from rexforge.train.loop import fit
    from rexforge.train.modes import apply_mode

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()

    # --- data and the hold-out ------------------------------------------------------------------
    series = load_series(args.data)
    data_sha = sha256_file(args.data)
    span = args.horizon + (args.windows - 1) * args.stride
    train, cutoffs = split_holdout(series, span)
    leakage = check_no_leakage(series, train, cutoffs)
    lengths = [len(s) for s in series]
    log.info(
        "%s: %d series, %d-%d steps; held out the last %d steps (%d windows of %d, stride %d)",
        args.data,
        len(series),
        min(lengths),
        max(lengths),
        span,
        args.windows,
        args.horizon,
        args.stride,
    )

    # --- base model -----------------------------------------------------------------------------
    base = rexforge.load_model(args.model)  # a model, or a run's training checkpoint
    base_path = args.model
    if base_path == "starter":
        from rexforge.assets import starter_model_path

        base_path = str(starter_model_path())
    base_sha = model_file_sha(base_path) or ""
    config = base.config
    num_blocks = config.block_kwargs.num_blocks
    freeze_blocks = num_blocks // 2 if args.freeze_blocks is None else args.freeze_blocks
    context_length = args.context_length or config.train_ctx_len
    base_data = str(base.metadata.get("data") or "")
    data_tag = f"{args.data.parent.name}/{args.data.name}"
    contamination = None
    if data_tag in base_data:
        pl = (base.metadata.get("train_config") or {}).get("prediction_length")
        if isinstance(pl, int) and pl >= span:
            contamination = (
                f"the base model was pretrained on data that includes {data_tag}; if it "
                f"validated on the last {pl} steps of each series (rexforge's default), the "
                f"{span} held-out steps were only its validation targets, never trained on"
            )
        else:
            if isinstance(pl, int):
                seen = span - pl  # held-out steps the pretraining windows could reach
                dirty = [w for w in range(args.windows) if w * args.stride < seen]  # 0 = oldest
                clean = [w for w in range(args.windows) if w not in dirty]
                partly = dirty[-1] * args.stride + args.horizon > seen
                detail = (
                    f"if it validated on the last {pl} steps of each series (rexforge's "
                    f"default), it trained on the first {seen} held-out steps: windows "
                    f"{', '.join(f'w{w}' for w in dirty)} are in-sample for it"
                    + (f" (w{dirty[-1]} partly)" if partly else "")
                    + (f", {', '.join(f'w{w}' for w in clean)} are clean" if clean else "")
                    + f"; --windows {pl // args.stride} keeps the test out of its training"
                )
            else:
                detail = "it may have trained on every held-out step"
            contamination = (
                f"the base model was pretrained on data that includes {data_tag}; {detail}. "
                "The zero-shot (and so the fine-tuned) results are not fully out-of-sample: "
                "compare the per-window table"
            )
        log.warning("WARNING: %s", contamination)

    # --- evaluation -----------------------------------------------------------------------------
    results, per_window_rows, per_item = [], [], {}

    def evaluate(forecaster, name: str, kind: str, extra: dict) -> None:
        t0 = time.perf_counter()
        res = backtest(
            forecaster,
            series,
            args.horizon,
            args.windows,
            args.stride,
            season=args.season,
            name=name,
        )
        seconds = time.perf_counter() - t0
        first = res.per_series.groupby("item_id")["cutoff"].min()
        assert all(first[i] == cutoffs[i] for i in first.index), "backtest cutoffs moved"
        m = res.metrics
        results.append(
            {
                "model": name,
                "kind": kind,
                "wql": m["wql"],
                "mase": m["mase"],
                "smape": m["smape"],
                "coverage_80": m["coverage_80"],
                "crps": m["crps"],
                "eval_seconds": round(seconds, 3),
                **extra,
            }
        )
        for row in per_window(res, args.windows):
            per_window_rows.append({"model": name, **row})
        per_item[name] = res.per_series.groupby("item_id", sort=False)["mase"].mean()
        log.info(
            "%-16s wql=%.4f mase=%.4f smape=%.3f coverage_80=%.3f (%.1f s)",
            name,
            m["wql"],
            m["mase"],
            m["smape"],
            m["coverage_80"],
            seconds,
        )

    plans = []
    for mode in args.modes:
        options = {
            "prediction_length": args.horizon,
            "context_length": context_length,
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lora_lr if mode == "lora" else args.lr,
            "warmup_steps": args.warmup_steps
            if args.warmup_steps is not None
            else min(100, args.steps // 10),
            "val_every_n_steps": args.val_every or max(1, args.steps // 4),
            "seed": args.seed,
        }
        if mode == "freeze":
            options["freeze_blocks"] = freeze_blocks
        if mode == "lora":
            options["lora_rank"] = args.lora_rank
        probe = copy.deepcopy(base.model)
        counts = apply_mode(
            probe, mode, freeze_blocks=freeze_blocks, lora_rank=args.lora_rank, seed=args.seed
        )
        del probe
        run_dir = args.work_dir / mode
        settings = run_settings(args, mode, base_sha, data_sha, options)
        resumed = prepare_run_dir(run_dir, settings, args.overwrite)
        plans.append((mode, options, counts, run_dir, resumed))
    evaluate(get_baseline("naive"), "naive", "baseline", {})
    evaluate(get_baseline("seasonal_naive", season=args.season), "seasonal_naive", "baseline", {})
    total_params = base.num_parameters()
    evaluate(base, "zero-shot", "base", {"trainable_params": 0, "total_params": total_params})

    fits = []
    for mode, options, counts, run_dir, resumed in plans:
        log.info(
            "fine-tuning %s: %d trainable parameters, %d steps -> %s",
            mode,
            counts["trainable"],
            args.steps,
            run_dir,
        )
        t0 = time.perf_counter()
        result = fit(
            base_path,
            train,
            output_dir=run_dir,
            mode=mode,
            validation=True,
            resume="auto",
            keep_checkpoints=1,
            data_description=f"{args.data} minus the last {span} steps of each series",
            **options,
        )
        fit_seconds = time.perf_counter() - t0
        steps = int(result.forecaster.metadata.get("steps", 0))
        val = {k: v for k, v in result.metrics.items() if k.startswith("val")}
        fits.append(
            {
                "mode": mode,
                "run_dir": str(run_dir),
                "fit_seconds": round(fit_seconds, 2),
                "steps": steps,
                "resumed_from_step": resumed,
                "options": options,
                "val_metrics": val,
                **counts,
            }
        )
        evaluate(
            result.forecaster,
            f"finetuned-{mode}",
            "finetuned",
            {
                "trainable_params": counts["trainable"],
                "total_params": counts["trainable"] + counts["frozen"],
                "fit_seconds": round(fit_seconds, 2),
                "steps": steps,
                "seconds_per_step": round(fit_seconds / (steps - (resumed or 0)), 4)
                if steps > (resumed or 0)
                else None,
            },
        )
    total = time.perf_counter() - started

    # --- report ---------------------------------------------------------------------------------
    table = pd.DataFrame(results).set_index("model")
    naive = table.loc["naive"]
    table.insert(2, "wql/naive", table["wql"] / naive["wql"])
    table.insert(4, "mase/naive", table["mase"] / naive["mase"])
    shown = [
        "wql",
        "wql/naive",
        "mase",
        "mase/naive",
        "smape",
        "coverage_80",
        "trainable_params",
        "steps",
        "fit_seconds",
        "seconds_per_step",
        "eval_seconds",
    ]
    shown = [c for c in shown if c in table.columns]
    display = table[shown].astype(object)
    for col in ("trainable_params", "steps"):
        if col in display:
            display[col] = [f"{int(v):,}" if pd.notna(v) else "-" for v in table[col]]
    for col in ("fit_seconds", "seconds_per_step"):
        if col in display:
            display[col] = [f"{v:.2f}" if pd.notna(v) else "-" for v in table[col]]
    windows_table = pd.DataFrame(per_window_rows).pivot(index="model", columns="window")
    windows_table = windows_table.loc[table.index]
    windows_table.columns = [f"{m} w{w}" for m, w in windows_table.columns]
    items_table = pd.DataFrame(per_item)

    date = dt.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    machine = machine_info()
    machine["versions"]["pandas"] = package_version("pandas")
    git = git_state()
    setup = {
        "data": str(args.data),
        "data_sha256": data_sha,
        "series": len(series),
        "lengths": {"min": min(lengths), "max": max(lengths)},
        "missing_values": int(sum(int(np.isnan(s.target).sum()) for s in series)),
        "horizon": args.horizon,
        "windows": args.windows,
        "stride": args.stride,
        "held_out_steps": span,
        "season": args.season,
        "base_model": args.model,
        "base_sha256": base_sha,
        "base_blocks": num_blocks,
        "freeze_blocks": freeze_blocks,
        "lora_rank": args.lora_rank,
        "context_length": context_length,
        "leakage_check": leakage,
        "base_contamination": contamination,
    }
    md = [
        f"# Fine-tuning on crypto hourly close prices ({date})\n",
        f"Total {total:.0f} s.\n",
        f"Data: `{args.data}` ({len(series)} series of {min(lengths)}-{max(lengths)} hourly "
        f"steps, {setup['missing_values']} missing values). Held out: the last {span} steps of "
        f"every series, scored as {args.windows} rolling windows of {args.horizon} h (stride "
        f"{args.stride}); fine-tuning used only the steps before (checked per series: the "
        f"training data ends before the first test cutoff"
        + (
            f"; all training data ends at {leakage['latest_training_timestamp']}, before the "
            f"earliest test point {leakage['earliest_test_timestamp']}"
            if leakage.get("aligned_in_time")
            else ""
        )
        + f"). MASE scaled by the in-sample seasonal ({args.season}) naive error; ratios are to "
        "naive (last value). Fine-tuned models and the base forecast with the same numerics "
        "(bf16, the official inference path).\n",
        f"Base: `{args.model}` ({total_params:,} parameters, {num_blocks} blocks). Fine-tuning: "
        f"{args.steps} steps, batch {args.batch_size}, context {context_length}, lr {args.lr} "
        f"(full, freeze with the first {freeze_blocks} blocks and the input embedding frozen), "
        f"{args.lora_lr} (LoRA rank {args.lora_rank}); validation on the last {args.horizon} "
        "training steps of each series.\n",
    ]
    if contamination:
        md.append(f"**Base model and this data:** {contamination}.\n")
    md += ["## Held-out windows, all series\n", report.to_markdown(display, ".4g")]
    md += ["## Per window (0 = oldest)\n", report.to_markdown(windows_table, ".4f")]
    md += ["## MASE per series (mean over windows)\n", report.to_markdown(items_table, ".3f")]
    md += [
        "## Fine-tuning runs\n",
        "Fit time covers this invocation only (a resumed run's earlier steps are not in it); "
        "s/step in the first table divides it by the steps it ran, setup and validation "
        "included.\n",
        "| mode | run | steps | resumed from | fit s | trainable | frozen | val |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for f in fits:
        val = ", ".join(f"{k} {v:.4g}" for k, v in sorted(f["val_metrics"].items())) or "-"
        md.append(
            f"| {f['mode']} | `{f['run_dir']}` | {f['steps']} | {f['resumed_from_step'] or '-'} | "
            f"{f['fit_seconds']:.1f} | "
            f"{f['trainable']:,} | {f['frozen']:,} | {val} |"
        )
    stem = write_result(
        args.name,
        "\n".join(md) + "\n",
        {
            "date": date,
            "command": command,
            "machine": machine,
            "git": git,
            "total_seconds": round(total, 2),
            "setup": setup,
            "results": results,
            "per_window": per_window_rows,
            "mase_per_series": items_table.to_dict("index"),
            "fits": fits,
        },
        folder=args.output_dir,
        command=command,
    )
    log.info("\n%s", report.format_table(display, ".4g"))
    log.info("wrote %s.{md,json}", stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
