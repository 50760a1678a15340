#!/usr/bin/env bash
# GPU check for a machine with a real GPU (meant for an NVIDIA H200 host):
#   1. builds umbra in release mode (tests and the gpu_bench example);
#   2. runs the GPU-versus-CPU identity tests (tests/gpu.rs), the ignored
#      300 MiB object included, on the hardware adapter;
#   3. runs the GPU micro-benchmark (examples/gpu_bench.rs): split (4,8) and
#      combine t=4 at 256x256x1, 512x512x2, 2048x2048x2, 512x512x300x2 and
#      2 GiB; kernel-only and end-to-end GB/s and the upload / compute /
#      download split;
# and prints one summary. Each step has a time limit so the whole run stays
# under 8 minutes; a step that runs out is reported as such.
#
# Environment:
#   UMBRA_GPU_TESTS   hardware (default here): refuse software adapters;
#                     any other value (e.g. required) also accepts llvmpipe,
#                     for trying the script on a machine without a GPU.
#   CARGO_TARGET_DIR  honoured as usual.
#   GPU_CHECK_LOG     directory for the full logs (default: a temp dir).
set -uo pipefail

cd "$(dirname "$0")/.."
start=$(date +%s)
budget=470 # seconds, leaving margin under 8 minutes
log=${GPU_CHECK_LOG:-$(mktemp -d -t umbra-gpu-check.XXXXXX)}
mkdir -p "$log"

export UMBRA_GPU_TESTS=${UMBRA_GPU_TESTS:-hardware}
bench_args=()
if [ "$UMBRA_GPU_TESTS" != hardware ]; then
    bench_args+=(--any)
fi
# The 2 GiB volume holds the secret, 8 shares and the CPU's 8 shares: ~20 GiB.
avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
if [ "${avail_kib:-0}" -lt $((24 * 1024 * 1024)) ]; then
    bench_args+=(--no-2g)
    echo "note: less than 24 GiB of memory available; the 2 GiB size is left out" | tee "$log/notes.txt"
fi

remaining() {
    local left=$((budget - ($(date +%s) - start)))
    if [ "$left" -lt 1 ]; then left=1; fi
    echo "$left"
}

step() { # name, cap in seconds, command...
    local name=$1 cap=$2
    shift 2
    local left
    left=$(remaining)
    if [ "$cap" -gt "$left" ]; then cap=$left; fi
    echo "== $name (limit ${cap}s)"
    local t0 rc
    t0=$(date +%s)
    timeout "$cap" "$@" >"$log/$name.txt" 2>&1
    rc=$?
    echo "   exit $rc after $(($(date +%s) - t0))s; log $log/$name.txt"
    if [ "$rc" -eq 124 ]; then
        echo "   TIMED OUT"
    fi
    return "$rc"
}

status_build=fail status_tests=fail status_bench=fail
step build 240 cargo build --release --locked --tests --examples && status_build=ok
if [ "$status_build" = ok ]; then
    step tests 150 cargo test --release --locked --test gpu -- --include-ignored && status_tests=ok
    step bench 200 cargo run --release --locked --example gpu_bench -- "${bench_args[@]}" && status_bench=ok
else
    tail -n 30 "$log/build.txt"
fi

echo
echo "================ umbra GPU check summary ================"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host:     $(uname -n) ($(nproc) cores)"
if command -v nvidia-smi >/dev/null 2>&1; then
    echo "nvidia:   $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)"
fi
adapter=$(grep -m1 '^adapter:' "$log/bench.txt" 2>/dev/null || true)
[ -z "$adapter" ] && adapter=$(grep -m1 'GPU tests on' "$log/tests.txt" 2>/dev/null || true)
echo "${adapter:-adapter: unknown (see logs)}"
echo "build:    $status_build"
echo "tests:    $status_tests  $(grep -h '^test result' "$log/tests.txt" 2>/dev/null | tr '\n' ' ')"
if [ "$status_tests" != ok ]; then
    grep -h -E 'panicked|differs|FAILED|need a wgpu adapter' "$log/tests.txt" 2>/dev/null | head -n 20
fi
echo "bench:    $status_bench"
if [ -f "$log/bench.txt" ]; then
    sed -n '/^size /,$p' "$log/bench.txt"
    if [ "$status_bench" != ok ]; then tail -n 20 "$log/bench.txt"; fi
fi
echo "elapsed:  $(($(date +%s) - start))s (budget ${budget}s); logs in $log"
[ "$status_build$status_tests$status_bench" = okokok ]
