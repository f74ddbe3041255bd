#!/usr/bin/env bash
# One whole GPU measurement per device call (through the `device` tool, with carry [".whl"]):
#   bash benchmarks/gpu/run.sh [env-step budget per method, default 400000] [seconds cap, 200]
# 1. `softmod bench --device cuda`: update timings with the CUDA-graph update, end to end with the
#    machine's cores as env workers. 2. MT10-Conditioned soft-shallow and MT-MH-SAC (issue 9's GPU
#    part) through benchmarks/learning/run.py, each for the budget or until the cap (then its curve
#    is recorded by partial.py). $OUT gets bench.log and one archive (the device returns 8 files).
set -uo pipefail
budget=${1:-400000}
cap=${2:-200}
if [ -z "${SKIP_WHEELS:-}" ]; then  # SKIP_WHEELS=1 where the packages are installed already
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 MUJOCO_GL=disable  # no EGL there; nothing renders
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu BENCH_ARGS=--quick: a dry run of this script anywhere
work=$(mktemp -d); res="$work/results"; mkdir -p "$res"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$res/gpu.txt"
python3 -m softmod bench --device "$DEVICE" ${BENCH_ARGS:-} --out "$res" 2>&1 | tee "$OUT/bench.log"
for m in soft-shallow mt-mh-sac; do
    bash benchmarks/gpu/learn.sh "$cap" "mt10-conditioned-$m-$DEVICE" "$res" "$work/runs" \
        --benchmark mt10 --goals conditioned --method "$m" --budget "$budget" \
        --device "$DEVICE" --workers "$(nproc)" --threads 4 --eval-interval 50000 \
        --checkpoint-interval 100000
done
tar czf "$OUT/gpu-results.tgz" -C "$work" results
ls -la "$OUT"; tar tzf "$OUT/gpu-results.tgz"
