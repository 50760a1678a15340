#!/usr/bin/env bash
# Throughput of `umbra migrate --worker` against the number of workers
# (1, 2, 4, 8 processes), on S3 stores with a realistic per-request latency
# and a PostgreSQL catalog (docs/SCALE.md, BENCHMARKS.md "Workers").
#
#   scripts/bench-workers.sh WORKDIR
#
# Real servers on loopback, started here and stopped at the end: PostgreSQL
# (initdb + pg_ctl; as the postgres user when run as root) and s3s-fs, the
# S3 server the tests use, behind scripts/latency-proxy.py, which delays
# every byte DELAY_MS (default 10) each way: a 20 ms round trip, a provider
# in the same region. The source: FILES (default 480) files of 512 KiB (a
# CT slice's size), 240 MiB. The archive: (4, 8) over 4 buckets (umbra-bench-1..4), 2 shares
# each, SCHEME (default compact). Each count runs ROUNDS (default 2) times,
# in the order 1 2 4 8 8 4 2 1 ..., each on a fresh database and fresh
# buckets, after a sync (and a page-cache drop when allowed). GROUP (default
# 8: 4 MiB) is migrate's --group; a worker claims two groups at a time, so
# 480 objects make 30 claims, enough to keep 8 workers busy.
# Needs: umbra built with --features cloud (UMBRA_BIN, default
# target/release/umbra), s3s-fs (cargo install s3s-fs@0.14.1 --features
# binary --locked), PostgreSQL's server, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
U=${UMBRA_BIN:-$REPO/target/release/umbra}
W=${1:?usage: scripts/bench-workers.sh WORKDIR}
DELAY_MS=${DELAY_MS:-10}
FILES=${FILES:-480}
ROUNDS=${ROUNDS:-2}
SCHEME=${SCHEME:-compact}
S3S=${UMBRA_S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
PGBIN=${UMBRA_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
mkdir -p "$W"
W=$(cd "$W" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "nothing on port $1" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$W/pg/data" ] && $AS "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# PostgreSQL
rm -rf "$W/pg" && mkdir -p "$W/pg"
AS=""
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; chown postgres "$W/pg"; fi
echo -n bench-pw > "$W/pg/pw"; [ -n "$AS" ] && chown postgres "$W/pg/pw"
$AS "$PGBIN/initdb" -U umbra -A scram-sha-256 --pwfile="$W/pg/pw" -E UTF8 --locale=C -D "$W/pg/data" >/dev/null
PGPORT=$(free_port)
$AS "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -w \
  -o "-p $PGPORT -k $W/pg -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
export UMBRA_CATALOG_PASSWORD=bench-pw PGPASSWORD=bench-pw

# S3 behind the latency proxy
rm -rf "$W/s3" && mkdir -p "$W/s3"
S3PORT=$(free_port); PROXY=$(free_port)
"$S3S" --host 127.0.0.1 --port "$S3PORT" --access-key bench --secret-key bench-secret "$W/s3" >/dev/null 2>&1 &
pids+=($!)
python3 "$REPO/scripts/latency-proxy.py" "$PROXY" "$S3PORT" "$DELAY_MS" &
pids+=($!)
wait_port "$S3PORT"; wait_port "$PROXY"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret

# The source
if [ ! -d "$W/src" ] || [ "$(ls "$W/src" | wc -l)" != "$FILES" ]; then
  rm -rf "$W/src" && mkdir -p "$W/src"
  python3 - "$W/src" "$FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"slice-{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(512 << 10))
PY
fi
SRC_BYTES=$(du -sb "$W/src" | cut -f1)
echo 0 > "$W/busy"

run() { # workers round
  local n=$1 r=$2 db="w${1}_r${2}" arc="$W/arc-$1-$2"
  rm -rf "$arc"
  $AS "$PGBIN/psql" -q -h "$W/pg" -p "$PGPORT" -U umbra -d postgres -c "CREATE DATABASE $db" >/dev/null
  for b in 1 2 3 4; do mkdir -p "$W/s3/umbra-bench-$b"; done
  $U init -q "$arc" -t 4 -n 8 --stores 4 --scheme "$SCHEME" \
    --catalog "postgresql://umbra@127.0.0.1:$PGPORT/$db" >/dev/null
  python3 - "$arc/umbra.toml" "$PROXY" "$n-$r" <<'PY'
import re, sys
p, port, tag = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(p).read()
for k in range(1, 5):
    s = s.replace(f'url = "stores/store-{k}"',
                  f'url = "s3://umbra-bench-{k}/run-{tag}"\nendpoint = "http://127.0.0.1:{port}"\nregion = "us-east-1"')
open(p, "w").write(s)
PY
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local start end b0 i0 b1 i1
  read -r b0 i0 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  start=$(date +%s.%N)
  local ps=()
  for i in $(seq 0 $((n - 1))); do
    JOB_COMPLETION_INDEX=$i $U -q --backend cpu migrate -C "$arc" --source "$W/src" --worker \
      --run-id "bench-$n-$r" --group "${GROUP:-8}" --json > "$W/report-$n-$r-$i.json" &
    ps+=($!)
  done
  for p in "${ps[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  read -r b1 i1 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  echo $(( $(cat "$W/busy" 2>/dev/null || echo 0) + b1 - b0 )) > "$W/busy"
  python3 - "$W" "$n" "$r" "$start" "$end" "$SRC_BYTES" "$((b1 - b0))" "$((i1 - i0))" <<'PY'
import json, sys
w, n, r, s, e, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
busy, idle = int(sys.argv[7]), int(sys.argv[8])
reps = [json.load(open(f"{w}/report-{n}-{r}-{i}.json")) for i in range(n)]
written = sum(x["written"] for x in reps)
per = " ".join(str(x["written"]) for x in reps)
t = e - s
print(f"workers {n} round {r}: {t:6.2f} s  {src / t / 1e6:7.1f} MB/s of source  "
      f"CPU {100 * busy / max(1, busy + idle):3.0f}% of the cores  "
      f"written {written} (per worker: {per})")
PY
  rm -rf "$arc" "$W"/s3/umbra-bench-*/"run-$n-$r"
}

echo "== $(date -u +%FT%TZ) $(nproc) cores; --group ${GROUP:-8}; $FILES files, $((SRC_BYTES / 1000000)) MB; (4, 8) $SCHEME; S3 (s3s-fs) with ${DELAY_MS} ms each way; PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
order=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order+=("1 $r" "2 $r" "4 $r" "8 $r"); else order+=("8 $r" "4 $r" "2 $r" "1 $r"); fi
done
for o in "${order[@]}"; do run $o; done
# Where the CPU went over all runs: the two servers that outlive them; the
# rest of the busy time is umbra's workers and PostgreSQL's backends.
cpu_s() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat"; }
echo "CPU seconds over all runs: $(awk '{printf "%.1f", $1 / 100}' "$W/busy") busy in all, s3s-fs $(cpu_s "${pids[0]}"), latency proxy $(cpu_s "${pids[1]}")"
