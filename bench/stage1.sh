#!/usr/bin/env bash
# stage1's share of `rkt run`: two builds of rkt, runs alternated one by one (so a change
# in the machine's load hits both alike; compare the ratio), each starting a --net=host
# busybox pod that runs /bin/true; then the processes each run execs (strace). The two
# builds take turns going first.
# The builds differ only in stage1, so the difference of the medians is stage1's.
#
#   sudo bench/stage1.sh /path/to/other/checkout     # BASE (npm run build done there)
#   RUNS=80 sudo bench/stage1.sh ../base
#
# Needs: npm run build here and in BASE, scripts/build-images.sh (build/images/busybox.aci), strace.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$(cd "${1:?usage: bench/stage1.sh OTHER-CHECKOUT}" && pwd)
RUNS=${RUNS:-40}
ACI=$PWD/build/images/busybox.aci
[ "$(id -u)" = 0 ] || { echo "bench/stage1.sh: run as root" >&2; exit 1; }
command -v strace >/dev/null || { echo "bench/stage1.sh: needs strace (apt-get install strace)" >&2; exit 1; }
[ -f "$ACI" ] || { echo "bench/stage1.sh: run scripts/build-images.sh first" >&2; exit 1; }
B=$(mktemp -d /tmp/rkt-bench-stage1.XXXXXX)
cleanup() {
  for d in base this; do "$BASE/bin/rkt" --dir="$B/$d" gc --grace-period=0s >/dev/null 2>&1 || true; done
  rm -rf "$B"
}
trap cleanup EXIT
declare -A ROOT=([base]=$BASE [this]=$PWD)
run() { ${2:-} "${ROOT[$1]}/bin/rkt" --dir="$B/$1" --local-config="$B/etc" --system-config="$B/lib" --insecure-options=image run --net=host "$ACI" --exec=/bin/true >/dev/null 2>&1; }
# Warm each data dir's store and tree: the benchmark measures starting a pod.
for i in 1 2 3; do run base; run this; done
echo "# stage1 bench: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs each"
# The order flips every round: a run's Node still exits beside the next one's start.
for i in $(seq "$RUNS"); do
  order="base this"; [ $((i % 2)) = 0 ] && order="this base"
  for w in $order; do
    s=$(date +%s%N); run $w; e=$(date +%s%N)
    echo $(((e - s) / 1000)) >> "$B/$w.t"
  done
done
med() { sort -n "$B/$1.t" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
printf '%-5s %7s ms median  %s\n' base "$(med base)" "$BASE" this "$(med this)" "$PWD"
echo "base / this = $(echo "scale=3; $(med base) / $(med this)" | bc), base - this = $(echo "$(med base) - $(med this)" | bc) ms"
execs() { run "$1" "strace -f -e trace=execve -o $B/st"; grep -c 'execve(' "$B/st"; }
echo "execve per run: base $(execs base), this $(execs this)"
