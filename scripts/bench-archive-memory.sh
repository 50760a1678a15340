#!/usr/bin/env bash
# Peak memory of `umbra migrate` and `umbra verify --deep` on a large source:
# GIB GiB made of copies of datasets/dicom (each copy with its own SOP
# Instance UIDs, so every file is its own object) plus one synthetic CT
# volume file of a quarter of the size, migrated as (T, N) into N local
# stores. Disk needed: about GIB * (1 + N) GiB, so the default is (2, 2).
# Usage: scripts/bench-archive-memory.sh [GIB] [WORKDIR]   (env T, N)
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${1:-10}
work=${2:-$(mktemp -d)}
t=${T:-2}
n=${N:-2}
umbra=${UMBRA_BIN:-${CARGO_TARGET_DIR:-target}/release/umbra}
[ -x "$umbra" ] || { echo "build first: cargo build --release (or set UMBRA_BIN)" >&2; exit 1; }
rm -rf "$work/src" "$work/arc"
mkdir -p "$work/src"

# A quarter in one volume file (streamed object), the rest in DICOM files.
slices=$(python3 -c "print(max(1, int(float($gib) * 1024 / 4 * 2)))")   # 512 KiB slices
"$umbra" -q synth-volume --slices "$slices" -o "$work/src/volume.raw"
python3 - "$work/src" "$gib" <<'PY'
import pathlib, struct, sys
out, gib = pathlib.Path(sys.argv[1]), float(sys.argv[2])
files = [(f.name, f.read_bytes()) for f in sorted(pathlib.Path("datasets/dicom").iterdir())]
per_copy = sum(len(d) for _, d in files)
copies = int(gib * 2**30 * 3 / 4 // per_copy)
for i in range(1, copies + 1):
    d = out / f"c{i:05d}"
    d.mkdir()
    for name, data in files:
        at = data.find(b"\x02\x00\x03\x00UI")
        if at >= 0:
            n = struct.unpack_from("<H", data, at + 6)[0]
            uid = data[at + 8 : at + 8 + n].rstrip(b"\0 ")
            head, _, last = uid.rpartition(b".")
            new = head + b"." + str(10**(len(last) - 1) + i).encode()
            assert len(new) == len(uid), name
            data = data.replace(uid, new)
        (d / name).write_bytes(data)
PY
bytes=$(du -sb "$work/src" | cut -f1)
files=$(find "$work/src" -type f | wc -l)
"$umbra" init -q "$work/arc" -t "$t" -n "$n" >/dev/null
sync

measure() {
  local what=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
  read -r secs kb < "$work/time"
  python3 -c "import sys; b,s,kb=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'{sys.argv[4]:<22} {s:7.1f} s  {b/max(s,0.01)/1e6:6.0f} MB/s  peak RSS {kb/1024:.0f} MiB')" "$bytes" "$secs" "$kb" "$what"
}
echo "source: $bytes bytes in $files files (one volume of $((slices / 2)) MiB), ($t, $n) into $n local stores"
measure "migrate" "$umbra" -q --backend cpu migrate -C "$work/arc" --source "$work/src"
measure "migrate (nothing new)" "$umbra" -q --backend cpu migrate -C "$work/arc" --source "$work/src"
measure "verify --deep" "$umbra" -q --backend cpu verify --deep -C "$work/arc"
[ -n "${KEEP:-}" ] || rm -rf "$work/src" "$work/arc"
