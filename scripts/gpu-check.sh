#!/usr/bin/env bash
# GPU check for a machine with a real GPU (meant for an NVIDIA H200 host), in
# under 8 minutes:
#   1. the GPU-versus-CPU identity tests (tests/gpu.rs, the ignored 300 MiB
#      objects of both schemes included) on the hardware adapter;
#   2. `umbra --backend gpu bench`: split (4,8) and combine t=4 from 256x256
#      to the 512x512x300 volume and the 2 GiB volume, kernel-only and
#      end-to-end GB/s with the upload / compute / download times, beside
#      the CPU figures of the same run;
# then one summary.
#
#   scripts/gpu-check.sh                    build here in release mode, then run
#   scripts/gpu-check.sh --build-only DIR   build the release binaries into DIR
#                                           (to carry to a GPU host without network)
#   scripts/gpu-check.sh --prebuilt DIR     run binaries from DIR (umbra, gpu-tests)
#
# Environment: UMBRA_GPU_TESTS=hardware (default) refuses software adapters;
# set it to `required` to try the script on llvmpipe. GPU_CHECK_LOG: log dir.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
budget=470
log=${GPU_CHECK_LOG:-$(mktemp -d -t umbra-gpu-check.XXXXXX)}
mkdir -p "$log"
export UMBRA_GPU_TESTS=${UMBRA_GPU_TESTS:-hardware}

build_into() { # DIR: release umbra and the gpu test binary
    local dir=$1
    mkdir -p "$dir"
    cargo build --release --locked || return 1
    local test_bin
    test_bin=$(cargo test --release --locked --test gpu --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    [ -n "$test_bin" ] || return 1
    cp target/release/umbra "$dir/umbra" && cp "$test_bin" "$dir/gpu-tests"
}

mode=${1:-}
case "$mode" in
    --build-only) build_into "${2:?DIR}"; exit $? ;;
    --prebuilt) bin=${2:?DIR} ;;
    "") bin=target/gpu-check; echo "== build"; build_into "$bin" >"$log/build.txt" 2>&1 || { tail -n 30 "$log/build.txt"; exit 1; } ;;
    *) echo "usage: $0 [--build-only DIR | --prebuilt DIR]" >&2; exit 2 ;;
esac

step() { # name, cap in seconds, command...
    local name=$1 cap=$2 left
    shift 2
    left=$((budget - ($(date +%s) - start)))
    [ "$left" -lt "$cap" ] && cap=$((left > 1 ? left : 1))
    echo "== $name (limit ${cap}s)"
    local t0=$(date +%s) rc
    timeout "$cap" "$@" >"$log/$name.txt" 2>&1
    rc=$?
    echo "   exit $rc after $(($(date +%s) - t0))s${rc:+}$([ "$rc" -eq 124 ] && echo ' TIMED OUT')"
    return "$rc"
}

bench_args=(--backend gpu bench --min-time 0.5)
avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
if [ "${avail_kib:-0}" -ge $((24 * 1024 * 1024)) ]; then
    bench_args+=(--large)
else
    echo "note: under 24 GiB of memory available: the 2 GiB volume is left out" | tee "$log/notes.txt"
fi
status_tests=fail status_bench=fail
step tests 200 "$bin/gpu-tests" --include-ignored && status_tests=ok
step bench 250 "$bin/umbra" "${bench_args[@]}" && status_bench=ok

echo
echo "================ umbra GPU check summary ================"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host:     $(uname -n) ($(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
command -v nvidia-smi >/dev/null 2>&1 &&
    echo "nvidia:   $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)"
grep -h -m1 'GPU: ' "$log/bench.txt" 2>/dev/null | sed 's/^umbra: /adapter:  /'
echo "tests:    $status_tests  $(grep -h '^test result' "$log/tests.txt" 2>/dev/null | tr '\n' ' ')"
[ "$status_tests" != ok ] && grep -h -E 'panicked|differ|FAILED|adapter' "$log/tests.txt" | head -n 20
echo "bench:    $status_bench"
grep -h '^|' "$log/bench.txt" 2>/dev/null
[ "$status_bench" != ok ] && tail -n 20 "$log/bench.txt"
echo "elapsed:  $(($(date +%s) - start))s (budget ${budget}s); logs in $log"
[ "$status_tests$status_bench" = okok ]
