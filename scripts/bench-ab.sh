#!/usr/bin/env bash
# Two umbra binaries side by side: `umbra --backend cpu bench` of each,
# alternating A, B, A, B... for ROUNDS rounds (default 5), then every
# figure's runs and the median of each binary, as a Markdown table.
# For "no regression" checks of a change: build the old commit's binary,
# then the new one, and compare them in one run on one machine.
#
#   scripts/bench-ab.sh /tmp/umbra-before target/release/umbra 8
set -euo pipefail
a=${1:?usage: bench-ab.sh BIN_A BIN_B [ROUNDS] [MIN_TIME]}
b=${2:?usage: bench-ab.sh BIN_A BIN_B [ROUNDS] [MIN_TIME]}
rounds=${3:-5}
min_time=${4:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { "$1" -q --backend cpu bench --json --min-time "$min_time" > "$2"; }
for r in $(seq "$rounds"); do
  if (( r % 2 )); then
    run "$a" "$work/a-$r.json"; run "$b" "$work/b-$r.json"
  else
    run "$b" "$work/b-$r.json"; run "$a" "$work/a-$r.json"
  fi
done
python3 - "$work" "$rounds" <<'EOF'
import collections, json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = collections.defaultdict(lambda: {"a": [], "b": []})
for side in "ab":
    for r in range(1, rounds + 1):
        for x in json.load(open(f"{work}/{side}-{r}.json")):
            rows[(x["operation"], x["size"])][side].append(x["gb_per_s"])
print("| operation | size | A runs (GB/s) | B runs (GB/s) | A median | B median |")
print("|---|---|---|---|---|---|")
for (op, size), v in rows.items():
    fa = " ".join(f"{g:.2f}" for g in v["a"])
    fb = " ".join(f"{g:.2f}" for g in v["b"])
    print(f"| {op} | {size} | {fa} | {fb} | {statistics.median(v['a']):.2f} | {statistics.median(v['b']):.2f} |")
EOF
