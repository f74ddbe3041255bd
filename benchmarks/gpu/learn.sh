#!/usr/bin/env bash
# One learning run of benchmarks/learning/run.py within a device call's time, recorded either way:
#   bash benchmarks/gpu/learn.sh CAP_SECONDS NAME RESULTS_DIR RUNS_DIR [run.py args...]
# The run trains under `timeout CAP_SECONDS`; if it reached its budget, run.py wrote
# RESULTS_DIR/NAME.json (final evaluation, 100 episodes per task); if the cap stopped it first,
# partial.py records its periodic evaluations as RESULTS_DIR/NAME-partial.{json,md,png}. Either
# way its train.csv is copied beside the record. Used by run.sh and directly in a device call.
# On the H200 (16 env workers) MT10 soft-shallow bf16 trains at about 870 env-steps/s with a
# periodic evaluation every 10k steps, and the final 100-episode evaluation takes about 70 s more:
# leave that room between the budget and CAP_SECONDS, and CAP_SECONDS + ~60 s under the call's limit.
set -uo pipefail
cap=$1 name=$2 res=$3 runs=$4
shift 4
mkdir -p "$res" "$runs"
timeout --signal=TERM "$cap" python3 benchmarks/learning/run.py --name "$name" --out "$res" \
    --runs-dir "$runs" "$@" 2>&1 | tail -5 | tee "$res/train-$name.log"
if [ ! -f "$res/$name.json" ]; then  # stopped at the cap (or failed): record what it reached
    python3 benchmarks/learning/partial.py "$name-partial" "$runs/$name"-* --out "$res" 2>&1 \
        | tail -2 | tee -a "$res/train-$name.log"
fi
cp "$runs/$name"-*/train.csv "$res/train-$name.csv" 2>/dev/null || true
