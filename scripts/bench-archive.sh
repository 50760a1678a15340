#!/usr/bin/env bash
# Migrate and restore throughput of the archive against plain copying, side
# by side on the same files and disk:
#   migrate (4, 8) into 8 local stores  vs  cp -r of the source into 8 dirs
#   restore --all                        vs  cp -r of the source 4 times
# Both sides end with `sync`, since migrate fsyncs every share.
# Usage: scripts/bench-archive.sh [COPIES] [WORKDIR]  (COPIES of datasets/dicom)
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}
work=${2:-$(mktemp -d)}
umbra=${UMBRA_BIN:-${CARGO_TARGET_DIR:-target}/release/umbra}
[ -x "$umbra" ] || { echo "build first: cargo build --release (or set UMBRA_BIN)" >&2; exit 1; }

rm -rf "$work/src" "$work/copy" "$work/arc" "$work/out" "$work/copy4"
mkdir -p "$work/src"
for i in $(seq 1 "$copies"); do cp -r datasets/dicom "$work/src/c$i"; done
bytes=$(du -sb "$work/src" | cut -f1)
sync

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{t:.2f} s, {b/t/1e6:.0f} MB/s')" "$1" "$2"; }

t0=$(now); for i in 1 2 3 4 5 6 7 8; do cp -r "$work/src" "$work/copy$i"; done; sync; t1=$(now)
copy8=$(python3 -c "print($t1-$t0)")
"$umbra" init -q "$work/arc" -t 4 -n 8 >/dev/null
t0=$(now); "$umbra" -q --backend cpu migrate -C "$work/arc" --source "$work/src"; sync; t1=$(now)
migrate=$(python3 -c "print($t1-$t0)")
t0=$(now); for i in 1 2 3 4; do cp -r "$work/src" "$work/copy4_$i"; done; sync; t1=$(now)
copy4=$(python3 -c "print($t1-$t0)")
t0=$(now); "$umbra" -q --backend cpu restore -C "$work/arc" --all -o "$work/out"; sync; t1=$(now)
restore=$(python3 -c "print($t1-$t0)")

echo "source: $copies x datasets/dicom = $bytes bytes, $(find "$work/src" -type f | wc -l) files"
echo "copy into 8 dirs:     $(rate "$bytes" "$copy8")"
echo "migrate (4, 8):       $(rate "$bytes" "$migrate")   ratio $(python3 -c "print(f'{$copy8/$migrate:.0%}')") of copying"
echo "copy 4 times:         $(rate "$bytes" "$copy4")"
echo "restore --all:        $(rate "$bytes" "$restore")   ratio $(python3 -c "print(f'{$copy4/$restore:.0%}')") of copying"
rm -rf "$work/src" "$work"/copy* "$work/arc" "$work/out"
