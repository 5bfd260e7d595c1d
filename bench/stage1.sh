#!/usr/bin/env bash
# stage1's share of `rkt run`: two builds of rkt side by side in one hyperfine run (the
# machine is noisy: compare the ratio), each starting a --net=host busybox pod that runs
# /bin/true, plus the processes each run execs (strace).
#
#   sudo bench/stage1.sh /work/main      # BASE: the other checkout (npm run build done there)
#   RUNS=40 sudo bench/stage1.sh ../main
#
# Needs: npm run build here and in BASE, scripts/build-images.sh (build/images/busybox.aci),
# hyperfine, jq, strace.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$(cd "${1:?usage: bench/stage1.sh OTHER-CHECKOUT}" && pwd)
RUNS=${RUNS:-30}
ACI=$PWD/build/images/busybox.aci
B=$(mktemp -d /tmp/rkt-bench-stage1.XXXXXX)
[ "$(id -u)" = 0 ] || { echo "bench/stage1.sh: run as root" >&2; exit 1; }
for t in hyperfine jq strace; do command -v $t >/dev/null || { echo "bench/stage1.sh: needs $t (apt-get install $t)" >&2; exit 1; }; done
cmd() { echo "$1/bin/rkt --dir=$B/$2 --local-config=$B/etc --system-config=$B/lib --insecure-options=image run --net=host $ACI --exec=/bin/true"; }
cleanup() {
  for d in base this; do "$BASE/bin/rkt" --dir="$B/$d" gc --grace-period=0s >/dev/null 2>&1 || true; done
  rm -rf "$B"
}
trap cleanup EXIT
OLD=$(cmd "$BASE" base)
NEW=$(cmd "$PWD" this)
# Warm each data dir's store and tree: the benchmark measures starting a pod.
$OLD >/dev/null 2>&1 && $NEW >/dev/null 2>&1
echo "# stage1 bench: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$B/t.json" -n base "$OLD" -n this "$NEW" >/dev/null 2>"$B/hf.err" || { cat "$B/hf.err" >&2; exit 1; }
med() { jq -r --arg n "$1" '.results[] | select(.command==$n) | .median*1000' "$B/t.json"; }
printf '%-6s %8.1f ms median (%s)\n' base "$(med base)" "$BASE" this "$(med this)" "$PWD"
echo "base / this = $(echo "scale=3; $(med base) / $(med this)" | bc)"
execs() { strace -f -e trace=execve -o "$B/st" $1 >/dev/null 2>&1; grep -c 'execve(' "$B/st"; }
echo "execve per run: base $(execs "$OLD"), this $(execs "$NEW")"
