#!/usr/bin/env bash
# rexforge quick start. Both commands set everything up on a fresh machine (a .venv here).
#   ./run.sh demo   forecast the bundled sample data with the bundled starter model (+ plot)
#   ./run.sh test   lint and run the test suite
set -euo pipefail
cd "$(dirname "$0")"
VENV=${REXFORGE_VENV:-.venv}

setup() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
  # torch is pinned to 2.13.0 (a CPU build on the project's machines); installing it first
  # keeps other packages from pulling a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
}

case "${1:-}" in
  demo)
    # Forecast with a plot, a short LoRA fine-tune, then zero-shot vs fine-tuned on the last
    # 48 hours of every series (the fine-tune holds those out: it never trains on them).
    setup plot,train
    DATA=src/rexforge/assets/sample_data.csv
    mkdir -p out
    "$VENV/bin/rexforge" info starter
    "$VENV/bin/rexforge" forecast --data "$DATA" --horizon 48 \
      --output out/forecast.csv --plot out/forecast.png
    "$VENV/bin/rexforge" finetune --model starter --data "$DATA" --horizon 48 --mode lora \
      --context-length 256 --max-steps 80 --batch-size 16 --lr 0.003 --val-every-n-steps 40 \
      --output-dir out/finetune --resume never
    "$VENV/bin/rexforge" evaluate --model starter --model out/finetune/final --data "$DATA" \
      --horizon 48 --windows 1 --output-dir out/evaluate
    echo "demo: out/forecast.csv, out/forecast.png, out/finetune/final, out/evaluate/metrics.md"
    ;;
  test)
    setup dev
    "$VENV/bin/ruff" check src tests benchmarks scripts
    "$VENV/bin/ruff" format --check src tests benchmarks scripts
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${@:2}"
    ;;
  *)
    echo "usage: ./run.sh demo|test" >&2
    exit 2
    ;;
esac
