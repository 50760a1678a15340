#!/usr/bin/env bash
# End to end, side by side in one run: umbra split/combine against libgfshare's
# gfsplit/gfcombine on one file in the page cache, (4, 8), with hyperfine,
# starting from an emptied page cache.
# Usage: scripts/bench-vs-gfshare.sh [SIZE_MIB=256] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
runs=${2:-5}
for tool in gfsplit gfcombine hyperfine; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y libgfshare-bin hyperfine" >&2; exit 1; }
done
cargo build --release --quiet
umbra=$PWD/target/release/umbra
work=$(mktemp -d /tmp/umbra-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
# Random-looking input: the synthetic CT volume would do as well; GF arithmetic
# does not depend on the values.
# A page cache full of other files makes every page written reclaim one
# first (writes then cost several times more, for both tools): start empty
# where allowed (root).
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
head -c $((size_mib << 20)) /dev/urandom > input.bin
cat input.bin > /dev/null   # into the page cache
mkdir -p gf um
gfsplit -n 4 -m 8 input.bin gf/input.bin
"$umbra" --backend cpu split -q -o um input.bin
gf_shares=$(ls gf/input.bin.* | head -4 | tr '\n' ' ')
um_shares=$(ls um/input.bin.*.umbra | head -4 | tr '\n' ' ')
cat gf/* um/* > /dev/null

echo "## split (4,8) of ${size_mib} MiB, file in page cache"
hyperfine --warmup 1 --runs "$runs" --export-markdown split.md \
  --prepare 'rm -rf out && mkdir out' \
  -n "gfsplit -n 4 -m 8" "gfsplit -n 4 -m 8 input.bin out/input.bin" \
  -n "umbra split -t 4 -n 8" "$umbra --backend cpu split -q -t 4 -n 8 -o out input.bin"
echo "## combine t=4 of ${size_mib} MiB, shares in page cache"
hyperfine --warmup 1 --runs "$runs" --export-markdown combine.md \
  --prepare 'rm -f out.bin' \
  -n "gfcombine (4 shares)" "gfcombine -o out.bin $gf_shares" \
  -n "umbra combine (4 shares)" "$umbra --backend cpu combine -q -o out.bin $um_shares"
cat split.md combine.md
