#!/usr/bin/env bash
# Migrate and restore throughput of the archive against plain copying, side
# by side on the same files and disk:
#   migrate (4, 8) into 8 local stores  vs  cp -r of the source into 8 dirs
#   restore --all                        vs  cp -r of the source 4 times
# Every step ends with `sync` (migrate makes every share durable; cp does
# not until then) and starts alike: page cache dropped (as root), its input
# read once (copy 4 times and restore both with the source and the stores
# cached, so that both write with the same page cache). ROUNDS rounds
# (default 3), the median of each step.
# SCHEME=compact measures the compact scheme: migrate then writes 2 shares'
# worth (n / t) and restore reads 1, so the copies are 2 and 1.
# Usage: [ROUNDS=N] [SCHEME=shamir|compact] scripts/bench-archive.sh [COPIES] [WORKDIR]
#        (COPIES of datasets/dicom)
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}
work=${2:-$(mktemp -d)}
rounds=${ROUNDS:-3}
scheme=${SCHEME:-shamir}
case "$scheme" in
  shamir) wcopies=8 rcopies=4 ;;
  compact) wcopies=2 rcopies=1 ;;
  *) echo "SCHEME is shamir or compact" >&2; exit 1 ;;
esac
umbra=${UMBRA_BIN:-${CARGO_TARGET_DIR:-target}/release/umbra}
[ -x "$umbra" ] || { echo "build first: cargo build --release (or set UMBRA_BIN)" >&2; exit 1; }

rm -rf "$work/src" "$work/copy" "$work/arc" "$work/out" "$work/copy4"
mkdir -p "$work/src"
# Each copy gets its own SOP Instance UIDs (same length, so the files stay
# valid), as in a real PACS: otherwise restore would find 9 of 10 files
# already present and skip writing them.
python3 - "$work/src" "$copies" <<'PY'
import pathlib, shutil, struct, sys
out, copies = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for i in range(1, copies + 1):
    d = out / f"c{i}"
    d.mkdir(parents=True)
    for f in sorted(pathlib.Path("datasets/dicom").iterdir()):
        data = f.read_bytes()
        at = data.find(b"\x02\x00\x03\x00UI")  # MediaStorageSOPInstanceUID
        if at < 0:
            shutil.copyfile(f, d / f.name)
            continue
        n = struct.unpack_from("<H", data, at + 6)[0]
        uid = data[at + 8 : at + 8 + n].rstrip(b"\0 ")
        head, _, last = uid.rpartition(b".")
        new = head + b"." + b"9" + str(i).zfill(len(last) - 1).encode()
        assert len(new) == len(uid) and len(last) >= 3, f
        (d / f.name).write_bytes(data.replace(uid, new))
PY
bytes=$(du -sb "$work/src" | cut -f1)
sync

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{t:.2f} s, {b/t/1e6:.0f} MB/s')" "$1" "$2"; }
median() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
# Same start for every step: dirty pages written back, the page cache
# emptied (where allowed: root), then what the step reads read once.
settle() {
  sync
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  find "$@" -type f -exec cat {} + > /dev/null
}
timed() { local t0 t1; t0=$(now); "$@"; sync; t1=$(now); python3 -c "print($t1-$t0)"; }
copy_n() { for i in $(seq 1 "$1"); do cp -r "$work/src" "$work/copy$i"; done; }

c8=(); m=(); c4=(); r=()
for round in $(seq 1 "$rounds"); do
  rm -rf "$work"/copy* "$work/arc" "$work/out"
  settle "$work/src"; c8+=("$(timed copy_n "$wcopies")")
  rm -rf "$work"/copy*
  "$umbra" init -q "$work/arc" -t 4 -n 8 --scheme "$scheme" >/dev/null
  settle "$work/src"; m+=("$(timed "$umbra" -q --backend cpu migrate -C "$work/arc" --source "$work/src")")
  # The same page cache as the restore after it (the stores read too): on
  # this VM, writes slow down several times over with 1.8 GB more cached,
  # so a copy with less cached is no fair measure for the restore.
  settle "$work/src" "$work/arc/stores"; c4+=("$(timed copy_n "$rcopies")")
  rm -rf "$work"/copy*
  settle "$work/src" "$work/arc/stores"; r+=("$(timed "$umbra" -q --backend cpu restore -C "$work/arc" --all -o "$work/out")")
  echo "round $round: copy$wcopies ${c8[-1]} migrate ${m[-1]} copy$rcopies ${c4[-1]} restore ${r[-1]}" >&2
done
copy8=$(median "${c8[@]}"); migrate=$(median "${m[@]}"); copy4=$(median "${c4[@]}"); restore=$(median "${r[@]}")

echo "source: $copies x datasets/dicom = $bytes bytes, $(find "$work/src" -type f | wc -l) files; median of $rounds rounds"
echo "scheme: $scheme"
echo "copy into $wcopies dirs:     $(rate "$bytes" "$copy8")"
echo "migrate (4, 8):       $(rate "$bytes" "$migrate")   ratio $(python3 -c "print(f'{$copy8/$migrate:.0%}')") of copying"
echo "copy $rcopies times:         $(rate "$bytes" "$copy4")"
echo "restore --all:        $(rate "$bytes" "$restore")   ratio $(python3 -c "print(f'{$copy4/$restore:.0%}')") of copying"
[ -n "${KEEP:-}" ] || rm -rf "$work/src" "$work"/copy* "$work/arc" "$work/out"
