#!/usr/bin/env bash
# The compact scheme against its peers at the same 2.0x storage, side by
# side in one run on one file, (4, 8): umbra split --scheme compact, umbra
# split (Shamir, 8x, for scale), `openssl enc -aes-256-ctr` + `zfec -k 4
# -m 8`, and `tahoe put` into an 8-server Tahoe-LAFS grid on loopback
# (k=4, N=8), all in one network namespace with only loopback (Tahoe's
# nodes also listen on 0.0.0.0). Runs alternate tool by tool, each after
# `sync`; the input stays in the page cache; every output is on the same
# file system. Reports seconds per run and bytes stored.
# Needs: openssl, zfec (PyPI zfec or Debian python3-zfec), tahoe (PyPI
# tahoe-lafs 1.20), unshare and ip (root).
# Usage: scripts/bench-vs-peers.sh [SIZE_MIB=256] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
runs=${2:-3}
for tool in openssl zfec tahoe unshare ip; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 1; }
done
cargo build --release --quiet
umbra=$PWD/target/release/umbra
work=$(mktemp -d /tmp/umbra-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT
export umbra work size_mib runs
exec unshare -n bash ${TRACE:+-x} -euo pipefail -c '
ip link set lo up
cd "$work"
head -c $((size_mib << 20)) /dev/urandom > input.bin
cat input.bin > /dev/null
# The grid: an introducer, 8 storage nodes, a client that stores nothing.
mkdir -p grid
tahoe create-introducer --listen=tcp --port=tcp:47000:interface=127.0.0.1 \
  --location=tcp:127.0.0.1:47000 grid/intro >/dev/null 2>&1 || { echo "tahoe create-introducer failed"; exit 1; }
(tahoe run --allow-stdin-close grid/intro >grid/intro.log 2>&1 &)
for _ in $(seq 100); do [ -s grid/intro/private/introducer.furl ] && break; sleep 0.2; done
furl=$(cat grid/intro/private/introducer.furl)
for i in $(seq 1 8); do
  tahoe create-node --introducer="$furl" --listen=tcp --port=tcp:$((47000 + i)):interface=127.0.0.1 \
    --location=tcp:127.0.0.1:$((47000 + i)) --webport=none --nickname=s$i grid/s$i >/dev/null
  (tahoe run --allow-stdin-close grid/s$i >grid/s$i.log 2>&1 &)
done
tahoe create-client --introducer="$furl" --shares-needed=4 --shares-happy=8 --shares-total=8 \
  --webport=tcp:47100:interface=127.0.0.1 grid/client >/dev/null
(tahoe run --allow-stdin-close grid/client >grid/client.log 2>&1 &)
# Wait until the client sees the 8 servers.
for _ in $(seq 100); do
  n=$(curl -s "http://127.0.0.1:47100/?t=json" 2>/dev/null | python3 -c "import json,sys; print(sum(1 for s in json.load(sys.stdin)[\"servers\"] if s.get(\"connection_status\",\"\").lower().startswith(\"connected\")))" 2>/dev/null || echo 0)
  [ "$n" -ge 8 ] && break; sleep 0.2
done
[ "$n" -ge 8 ] || { echo "the Tahoe grid did not come up ($n servers)"; curl -s "http://127.0.0.1:47100/?t=json" | head -c 1500; tail -n 8 grid/client.log grid/s1.log; exit 1; }
# %.0f, not %d: mawk clamps %d at 2^31 - 1 (Shamir stores 2 GiB).
shares_bytes() { du -sb "$@" | awk "{s+=\$1} END {printf \"%.0f\\n\", s}"; }
clear_tahoe() { for i in $(seq 1 8); do rm -rf grid/s$i/storage/shares/*; done; }
time_it() { local t0 t1; sync; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n"); iv=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n")
declare -A times
for r in $(seq 1 "$runs"); do
  rm -rf uc; times[compact]+=" $(time_it "$umbra" -q --backend cpu split --scheme compact -o uc input.bin)"
  rm -rf us; times[shamir]+=" $(time_it "$umbra" -q --backend cpu split -o us input.bin)"
  rm -rf zf; mkdir zf
  times[zfec]+=" $(time_it bash -c "openssl enc -aes-256-ctr -K $key -iv $iv -in input.bin -out zf/enc.bin && zfec -k 4 -m 8 -d zf -p enc zf/enc.bin && rm zf/enc.bin")"
  clear_tahoe; times[tahoe]+=" $(time_it tahoe -d grid/client put input.bin)"
done
echo "## split (4, 8) of $size_mib MiB, seconds per run ($runs runs, alternating)"
for k in compact shamir zfec tahoe; do echo "$k:${times[$k]}"; done
echo "## bytes stored for $((size_mib << 20)) bytes"
echo "umbra compact: $(shares_bytes uc)"
echo "umbra shamir:  $(shares_bytes us)"
echo "openssl+zfec:  $(shares_bytes zf)"
echo "tahoe:         $(shares_bytes grid/s*/storage/shares)"
pkill -f "tahoe run" || true
'
