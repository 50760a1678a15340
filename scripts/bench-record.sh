#!/usr/bin/env bash
# Runs the benchmarks that BENCHMARKS.md records, in one go, and keeps the
# raw output in OUTDIR (default /tmp/umbra-bench-record):
#   1. umbra bench --all-levels          (CPU, every SIMD level, every size)
#   2. umbra bench --stream 10GiB        (whole split pipeline, peak RSS)
#   3. scripts/bench-vs-gfshare.sh 256   (end to end against gfsplit/gfcombine)
#   4. cargo bench --bench engine        (criterion: keystream, kernel, split, combine)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/umbra-bench-record}
mkdir -p "$out"
cargo build --release --quiet
umbra=target/release/umbra
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "rustc: $(rustc --version)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"
"$umbra" --backend cpu bench --all-levels --min-time 1 | tee "$out/bench-all-levels.md"
"$umbra" --backend cpu bench --stream 10GiB | tee "$out/stream-10GiB.txt"
scripts/bench-vs-gfshare.sh 256 3 | tee "$out/vs-gfshare.md"
cargo bench --bench engine -- --noplot 2>&1 | grep -E '^[a-z(]|time:|thrpt:' | tee "$out/criterion.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
