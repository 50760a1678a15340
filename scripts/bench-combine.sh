#!/usr/bin/env bash
# One large file's combine against its floor, side by side on the same disk:
#   floor:   read the t shares combine reads (cat > /dev/null) and write a
#            file of the object's size, then sync
#   combine: umbra combine of those t shares into a new file, then sync
# Each step starts alike: dirty pages written back, the page cache emptied
# (as root), the t shares and the programs read once (so both read them
# from the cache, as a restore right after a fetch would). ROUNDS rounds (default 5),
# alternating, the median of each. UMBRA_BIN picks the binary.
# Usage: [ROUNDS=N] scripts/bench-combine.sh [MIB] [WORKDIR]   (default 128 MiB, (4, 8))
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-128}
work=${2:-$(mktemp -d)}
rounds=${ROUNDS:-5}
umbra=${UMBRA_BIN:-${CARGO_TARGET_DIR:-target}/release/umbra}
[ -x "$umbra" ] || { echo "build first: cargo build --release (or set UMBRA_BIN)" >&2; exit 1; }

rm -rf "$work/sh" "$work/out.bin" "$work/floor.bin"
"$umbra" synth-volume -q -o "$work/vol.raw" --slices $((mib * 2)) --width 512 --height 512 --force
"$umbra" -q --backend cpu split -t 4 -n 8 -o "$work/sh" "$work/vol.raw"
shares=("$work"/sh/vol.raw.00{1,2,3,4}.umbra)
size=$(stat -c %s "$work/vol.raw")

now() { date +%s.%N; }
settle() {
  rm -f "$work/out.bin" "$work/floor.bin"
  sync
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  cat "${shares[@]}" > /dev/null
  # The programs too, as on a machine that runs them nightly.
  cat "$umbra" "$(command -v cat)" "$(command -v dd)" > /dev/null
}
timed() { local t0 t1; t0=$(now); "$@"; sync; t1=$(now); python3 -c "print($t1-$t0)"; }
floor() {
  cat "${shares[@]}" > /dev/null
  dd if=/dev/zero of="$work/floor.bin" bs=4M count=$((size / 4194304)) status=none
}
# Without the sync: the page cache's speed, where the work shows most.
timed_nosync() { local t0 t1; t0=$(now); "$@"; t1=$(now); python3 -c "print($t1-$t0)"; }
median() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }

f=(); c=(); fn=(); cn=()
combine() { "$umbra" -q --backend cpu combine -o "$work/out.bin" "${shares[@]}"; }
for round in $(seq 1 "$rounds"); do
  settle; f+=("$(timed floor)")
  settle; c+=("$(timed combine)")
  cmp -s "$work/out.bin" "$work/vol.raw" || { echo "combine gave other bytes" >&2; exit 1; }
  settle; fn+=("$(timed_nosync floor)")
  settle; cn+=("$(timed_nosync combine)")
  echo "round $round: synced floor ${f[-1]} combine ${c[-1]}; cached floor ${fn[-1]} combine ${cn[-1]}" >&2
done
line() { python3 -c "f,c=$1,$2; print(f'floor {f:.3f} s, umbra combine {c:.3f} s: {c/f:.2f}x the floor')"; }
echo "object: $size bytes, (4, 8), its 4 shares in the page cache; median of $rounds rounds"
echo "output synced to disk:    $(line "$(median "${f[@]}")" "$(median "${c[@]}")")"
echo "output in the page cache: $(line "$(median "${fn[@]}")" "$(median "${cn[@]}")")"
[ -n "${KEEP:-}" ] || rm -rf "$work/sh" "$work/vol.raw" "$work/out.bin" "$work/floor.bin"
