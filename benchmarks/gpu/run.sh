#!/usr/bin/env bash
# One whole GPU measurement per device call (run it through the `device` tool with carry [".whl"]):
#   bash benchmarks/gpu/run.sh [seconds of MT10-Conditioned training per method, default 150]
# 1. `softmod bench --device cuda` (update timings with the CUDA-graph update, end to end with the
#    machine's cores as env workers); 2. short MT10-Conditioned runs of soft-shallow and MT-MH-SAC
#    (issue 9's GPU part), stopped by wall time; everything lands in $OUT.
set -uo pipefail
secs=${1:-150}
if [ -z "${SKIP_WHEELS:-}" ]; then  # SKIP_WHEELS=1 where the packages are installed already
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MUJOCO_GL=egl
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu BENCH_ARGS=--quick: a dry run of this script anywhere
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
python3 -m softmod bench --device "$DEVICE" ${BENCH_ARGS:-} --out "$OUT" 2>&1 | tee "$OUT/bench.log"
for m in soft-shallow mt-mh-sac; do
    timeout --signal=TERM "$secs" python3 -m softmod train --benchmark mt10 --goals conditioned \
        --method "$m" --total-steps 20000000 --workers "$(nproc)" --device "$DEVICE" \
        --eval-interval 200000 --checkpoint-interval 200000 --no-progress \
        --run-dir "/tmp/runs/mt10-cond-$m" 2>&1 | tail -20 | tee "$OUT/train-$m.log"
    cp "/tmp/runs/mt10-cond-$m/train.csv" "$OUT/train-$m.csv" 2>/dev/null
    cp "/tmp/runs/mt10-cond-$m/eval.csv" "$OUT/eval-$m.csv" 2>/dev/null
done
ls -la "$OUT"
