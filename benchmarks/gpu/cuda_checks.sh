#!/usr/bin/env bash
# One device call (the `device` tool's run, carry [".whl"]) that checks on the lent GPU machine what
# only it can show, each part under its own time cap so that one part running long cannot take the
# others' time:
#   1. the machine: GPU, CPU model and its bf16 features (AMX?), PyTorch and CUDA versions;
#   2. tests/test_cuda.py: the CUDA-graph update against the eager one, toy learning on CUDA with
#      the graph, stop/resume on CUDA, MT10 with env workers (JUnit XML and the log);
#   3. `softmod bench --device cuda`: every chosen method's update in fp32 and bf16 (MT10, MT50),
#      end to end, and the jitted JAX soft-shallow update on the same GPU;
#   4. where the CPU has AMX-BF16: `softmod bench --device cpu` pinned to 2 cores, 2 threads
#      (issue 17's AMX figures: the soft-shallow update in bf16 against fp32 and against JAX).
# Usage there: bash benchmarks/gpu/cuda_checks.sh; here, a dry run on the CPU (nothing installed,
# short caps): DRY=1 bash benchmarks/gpu/cuda_checks.sh. Results land in $OUT (8 files at most).
set -uo pipefail
OUT=${OUT:-/tmp/cuda-checks}; mkdir -p "$OUT"
# nothing here renders: MuJoCo without an OpenGL context (the machine has no EGL library)
export PYTHONUNBUFFERED=1 MUJOCO_GL=disable XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -z "${DRY:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl 2>&1 | tail -3
    export PYTHONPATH=/tmp/site:$PWD/src
    dev=cuda; k=""; caps=(160 110 90 110)
else
    dev=cpu; k="reproducible or follows or resumes"; caps=(100 150 150 150)
    export SOFTMOD_TEST_DEVICE=cpu
fi
methods=(${METHODS:-mt-sac mt-mh-sac soft-shallow soft-deep moore paco})
k=${TESTS_K:-$k}  # TESTS_K="...": only those tests (a rerun of what failed)
{
    date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    lscpu | grep -E "Model name|^CPU\(s\)|Thread|Socket"; nproc
    grep -o -w -E "amx_bf16|amx_tile|avx512_bf16" /proc/cpuinfo | sort | uniq -c
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda', \
torch.backends.cpu.get_cpu_capability())"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

echo "== tests/test_cuda.py (cap ${caps[0]} s)"
timeout --signal=INT "${caps[0]}" python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    -n 8 -k "${k}" --junitxml="$OUT/cuda-tests.xml" -o junit_family=xunit2 2>&1 \
    | tee "$OUT/cuda-tests.log" | tail -25

# each bench writes its own JSON (a part cut by its cap leaves the others'); one log for all
bench() {  # bench CAP ARGS...: one softmod bench run, appended to bench.log
    local cap=$1; shift
    echo "== softmod bench $* (cap $cap s)" | tee -a "$OUT/bench.log"
    timeout --signal=INT "$cap" ${PIN:-} python3 -m softmod bench "$@" ${DRY:+--quick} 2>&1 \
        | tee -a "$OUT/bench.log" | tail -30
}
mkdir -p "$OUT/bench"
bench "${caps[1]}" --device "$dev" --sections updates --methods "${methods[@]}" \
    --out "$OUT/bench" ${DRY:+--no-mt50}
bench "${caps[2]}" --device "$dev" --sections e2e jax --methods soft-shallow --no-mt50 --out "$OUT/bench"
if { grep -q -w amx_bf16 /proc/cpuinfo || [ -n "${DRY:-}" ]; } && [ -z "${NO_AMX:-}" ]; then
    # issue 17: the AMX figures, on 2 cores as its targets say; JAX on the CPU for its reference
    PIN="taskset -c 0,1" JAX_PLATFORMS=cpu bench "${caps[3]}" --device cpu --threads 2 --sections updates jax \
        --methods mt-sac soft-shallow --out "$OUT/bench" ${DRY:+--no-mt50}
fi
ls -laR "$OUT"
