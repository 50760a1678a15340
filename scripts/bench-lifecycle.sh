#!/usr/bin/env bash
# Times of the lifecycle commands (status, ls, forget, erase, rebalance, key
# rotate) on the archive benchmark's source: 160 files, 229 MB, (4, 8), 8 local
# stores, SCHEME=compact|shamir (default compact). It appends to files of
# WORKDIR/src (a second version of 16): run bench-archive.sh again after.
set -euo pipefail
cd "$(dirname "$0")/.."
U=${UMBRA_BIN:-$PWD/target/release/umbra}
W=${1:?usage: scripts/bench-lifecycle.sh WORKDIR (holding src/ from KEEP=1 scripts/bench-archive.sh 20 WORKDIR)}
cd $W
rm -rf arc out
$U init -q arc -t 4 -n 8 --scheme ${SCHEME:-compact} >/dev/null
$U -q migrate -C arc --source src
sync
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.2f} s')"; }
echo "status:            $(t $U -q status -C arc)"
echo "status --offline:  $(t $U -q status -C arc --offline)"
echo "ls:                $(t $U -q ls -C arc)"
# a second version of 16 files, then forget the first versions
for f in $(ls src/c1/* src/c2/* | head -16); do printf x >> $f; done
sleep 1.1
$U -q migrate -C arc --source src
echo "forget --keep-last 1 (16 versions): $(t $U -q forget -C arc --keep-last 1)"
P=$($U ls -C arc --json | python3 -c "import json,sys; print([o['patient_id'] for o in json.load(sys.stdin) if o['patient_id']][0])")
echo "erase --patient (one patient):      $(t $U -q erase -C arc --patient "$P")"
# move share 8 from store-8 to a new store-9
python3 - "$W/arc/umbra.toml" <<'PY'
import re
import sys; p=sys.argv[1]
s=open(p).read()
s=s.replace('name = "store-8"\nurl = "stores/store-8"\nshares = [8]','name = "store-8"\nurl = "stores/store-8"\nshares = []')
s+='\n[[store]]\nname = "store-9"\nurl = "stores/store-9"\nshares = [8]\n'
open(p,'w').write(s)
PY
mkdir -p arc/stores/store-9
echo "archive-repair --rebalance (1 of 8 stores): $(t $U -q --backend cpu archive-repair -C arc --rebalance)"
echo "key rotate (every share renamed):  $(t $U -q key rotate -C arc)"
echo "verify after:                      $(t $U -q verify -C arc)"
