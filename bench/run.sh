#!/usr/bin/env bash
# Start-up, resident memory and pod-listing costs of `rkt run`, side by side with peers,
# in one run (the machines are noisy: compare the ratios, not the absolute numbers).
#
#   sudo bench/run.sh            # everything (installs runc, crun, podman, hyperfine, jq)
#   RUNS=20 sudo bench/run.sh    # more runs per command (default 15)
#   ONLY=pods sudo bench/run.sh  # only part 3: list and gc of 1000 exited pods (no peers needed)
#
# Needs: npm run build, scripts/build-images.sh (build/images/busybox.aci).
# Peers are made to run on this host as ../shared/reference/peers describes: crun refuses
# the hybrid cgroup layout unless an empty tmpfs hides the cgroup2 mount; podman's default
# ulimits exceed the hard RLIMIT_NOFILE here.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME with a decimal point
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-15}
RKT=$ROOT/bin/rkt
B=$(mktemp -d /tmp/rkt-bench.XXXXXX)
G=(--dir="$B/data" --local-config="$B/etc" --system-config="$B/lib")
ACI=$ROOT/build/images/busybox.aci
CRUN_NS="unshare --mount --propagation private sh -c"
CRUN_PRE="mount -t tmpfs -o size=1m,mode=755 none /sys/fs/cgroup/unified && exec"
PODMAN_ULIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

cleanup() {
  "$RKT" "${G[@]}" gc --grace-period=0s --expire-prepared=0s >/dev/null 2>&1 || true
  podman rmi -f localhost/rkt-bench-bb >/dev/null 2>&1 || true
  rm -rf "$B"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
[ -f "$ACI" ] && [ -f dist/rkt.cjs ] || { echo "bench/run.sh: run npm run build and scripts/build-images.sh first" >&2; exit 1; }
ONLY=${ONLY:-}
if [ "$ONLY" != pods ] && { ! command -v runc >/dev/null || ! command -v crun >/dev/null || ! command -v podman >/dev/null || ! command -v hyperfine >/dev/null || ! command -v jq >/dev/null; }; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc crun podman hyperfine jq >/dev/null
fi

echo "# rkt bench: $(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Node reads and parses NODE_EXTRA_CA_CERTS on every start (~40 ms for Debian's bundle), and
# bin/rkt keeps it from Node's start (only an https fetch reads it): with it set, node -e 0
# would be the slower of the two. Every command runs without it, so node -e 0 is Node's own cost.
if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then
  echo "# NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS was set: unset for every command"
  unset NODE_EXTRA_CA_CERTS
fi

if [ "$ONLY" = pods ]; then
  "$RKT" "${G[@]}" --insecure-options=image run --net=host "$ACI" --exec=/bin/true >/dev/null 2>&1
else
# --- the same busybox rootfs for every runtime -------------------------------------------
ID=$("$RKT" "${G[@]}" --insecure-options=image fetch --full "$ACI" 2>/dev/null)
"$RKT" "${G[@]}" image render --rootfs-only "$ID" "$B/rootfs" >/dev/null
mkdir -p "$B/rootfs/usr" "$B/bundle"
(cd "$B/bundle" && crun spec >/dev/null)
jq --arg r "$B/rootfs" '.process.terminal=false | .process.args=["/bin/true"] | .root.path=$r' "$B/bundle/config.json" > "$B/c" && mv "$B/c" "$B/bundle/config.json"
tar -C "$B/rootfs" -c . | podman import - localhost/rkt-bench-bb >/dev/null
# Warm the store and the tree: the benchmark measures starting a pod, not fetching.
"$RKT" "${G[@]}" --insecure-options=image run --net=host "$ACI" --exec=/bin/true >/dev/null 2>&1

# --- 1. start and finish a /bin/true container ------------------------------------------
RUN_HOST="$RKT ${G[*]} --insecure-options=image run --net=host $ACI --exec=/bin/true"
RUN_DEFAULT="$RKT ${G[*]} --insecure-options=image run --net=default $ACI --exec=/bin/true"
# Interleaved, as bench/stage1.sh: each round runs every command once, so a change in the
# machine's load hits them all alike (hyperfine would time each command's runs as one block).
# Two rounds warm up. Each command is timed from this shell, fork and exec included for all.
NAMES=(node rkt-version rkt-host runc crun podman-none rkt-default podman-bridge)
CMDS=("node -e 0" "$RKT version" "$RUN_HOST"
  "runc run --bundle $B/bundle rkt-bench-runc"
  "$CRUN_NS '$CRUN_PRE crun run --bundle $B/bundle rkt-bench-crun'"
  "podman run --rm --net=none --runtime runc $PODMAN_ULIMITS localhost/rkt-bench-bb /bin/true"
  "$RUN_DEFAULT"
  "podman run --rm --runtime runc $PODMAN_ULIMITS localhost/rkt-bench-bb /bin/true")
for round in $(seq -1 "$RUNS"); do
  for i in "${!NAMES[@]}"; do
    s=$EPOCHREALTIME
    eval "${CMDS[$i]}" >/dev/null 2>"$B/err" || { echo "bench/run.sh: ${NAMES[$i]} failed:" >&2; cat "$B/err" >&2; exit 1; }
    e=$EPOCHREALTIME
    if [ "$round" -gt 0 ]; then echo "$s $e" | awk '{printf "%.3f\n", ($2 - $1) * 1000}' >> "$B/${NAMES[$i]}.t"; fi
  done
done
med() { sort -n "$B/$1.t" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "## Start and finish a /bin/true container (median of $RUNS interleaved rounds, ms)"
for n in node rkt-version rkt-host runc crun podman-none rkt-default podman-bridge; do printf '%-14s %8.1f\n' "$n" "$(med $n)"; done
ratio() { echo "scale=2; $(med "$1") / $(med "$2")" | bc; }
echo
echo "rkt version / node -e 0                = $(ratio rkt-version node)   (target <= 1.15)"
echo "rkt run --net=host / node -e 0        = $(ratio rkt-host node)   (target <= 1.4)"
echo "podman --net=none / rkt run --net=host = $(ratio podman-none rkt-host)   (target >= 2)"
echo "podman bridge / rkt run --net=default  = $(ratio podman-bridge rkt-default)   (target >= 2)"

# --- 2. memory kept alive by the runtime while a pod runs `sleep` ------------------------
"$RKT" "${G[@]}" --insecure-options=image run --net=host "$ACI" --exec=/bin/sleep -- 30 >/dev/null 2>&1 &
holder=$!
sleep 2
total=0
names=""
descend() { local p=$1 c; echo "$p"; for c in $(cat /proc/"$p"/task/"$p"/children 2>/dev/null); do descend "$c"; done; }
for p in $(descend "$holder"); do
  comm=$(cat /proc/"$p"/comm 2>/dev/null) || continue
  [ "$comm" = sleep ] && continue
  rss=$(awk '/^VmRSS/{print $2}' /proc/"$p"/status)
  total=$((total + rss)); names="$names $comm=${rss}kB"
done
kill -TERM "$holder"; wait "$holder" || true
echo
echo "## Resident memory of the runtime while the pod runs sleep (app excluded)"
echo "rkt: $(echo "scale=2; $total/1024" | bc) MB ($names )   (target <= 2 MB; conmon 2, nspawn 7.5, rkt 1.x ~13)"

fi

# --- 3. list and gc with 1000 exited pods -------------------------------------------------
"$RKT" "${G[@]}" gc --grace-period=0s >/dev/null 2>&1
"$RKT" "${G[@]}" --insecure-options=image run --net=host "$ACI" --exec=/bin/true >/dev/null 2>&1
src=$(ls -d "$B"/data/pods/run/* | head -1)
for _ in $(seq 999); do cp -a "$src" "$B/data/pods/run/$(cat /proc/sys/kernel/random/uuid)"; done
hyperfine -N --style none --runs 5 --export-json "$B/l.json" -n list "$RKT ${G[*]} list --no-legend" >/dev/null
t_list=$(jq -r '.results[0].median' "$B/l.json")
s=$(date +%s%N); "$RKT" "${G[@]}" gc --grace-period=0s >/dev/null 2>&1; e=$(date +%s%N)
# gc returns once the pods are torn down and out of the pod tree; a detached rm frees their blocks.
while [ -n "$(ls -A "$B/data/pods/.gc-trash" 2>/dev/null)" ]; do sleep 0.1; done; f=$(date +%s%N)
echo
echo "## 1000 exited pods (load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "rkt list: $(printf '%.3f' "$t_list") s (target < 0.3 s)   rkt gc: $(echo "scale=3; ($e-$s)/1000000000" | bc) s (target < 1 s)"
echo "their files freed by gc's detached rm: $(echo "scale=3; ($f-$s)/1000000000" | bc) s after gc started"
