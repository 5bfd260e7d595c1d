#!/usr/bin/env bash
# A tour of rkt on a fresh Debian 12 machine, as root: trust the test-image key for
# coreos.com/etcd, fetch the signed etcd image (verified), list and render it; run it
# in a pod with --net=host --cpu=750m --memory=128M and talk to it with etcdctl; then
# run a three-member etcd cluster on the default pod network and stop one member.
# It uses its own data and config directories (/var/lib/rkt-demo, /etc/rkt-demo) and
# removes everything it made when it ends.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
DATA=/var/lib/rkt-demo
CONF=/etc/rkt-demo

bash scripts/setup.sh

ETCD_VERSION=$(awk '$1 == "coreos.com/etcd" { print $2 }' build/images/VERSIONS)
[[ -n $ETCD_VERSION ]] || { echo "demo: no coreos.com/etcd in build/images/VERSIONS" >&2; exit 1; }

rkt() { "$root/bin/rkt" --dir="$DATA" --local-config="$CONF" "$@"; }

# Shows a command (in bold on a terminal), then runs it.
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
show() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
step() {
  show rkt "$*"
  rkt "$@"
}

# Everything under the demo directories goes, mounts first, so no pod leaves
# anything behind even if the demo stops half-way.
cleanup() {
  set +e
  [[ -n ${uuid_file:-} && -s $uuid_file ]] && rkt stop --force --uuid-file="$uuid_file" >/dev/null 2>&1
  [[ -n ${pod_pid:-} ]] && wait "$pod_pid" 2>/dev/null
  for f in "${work:-/nonexistent}"/m*.uuid; do [[ -s $f ]] && rkt stop --force --uuid-file="$f" >/dev/null 2>&1; done
  ((${#cluster_pids[@]} > 0)) && wait "${cluster_pids[@]}" 2>/dev/null
  rkt gc --grace-period=0s >/dev/null 2>&1
  awk -v d="$DATA" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$DATA" "$CONF" "${work:-}"
}
[[ ! -e $DATA && ! -e $CONF ]] || { echo "demo: $DATA or $CONF exists (left by another run?); remove it first" >&2; exit 1; }
cluster_pids=()
trap cleanup EXIT
work=$(mktemp -d /tmp/rkt-demo.XXXXXX)
echo "# below, \"rkt\" stands for: bin/rkt --dir=$DATA --local-config=$CONF"

step trust --prefix=coreos.com/etcd --skip-fingerprint-review build/keys/images.pub.asc

echo
echo "# fetch verifies build/images/etcd.aci against build/images/etcd.aci.asc with the trusted key,"
echo "# stores it and prints the image ID"
step fetch build/images/etcd.aci

step image list

step image cat-manifest "coreos.com/etcd:$ETCD_VERSION"

step image render "coreos.com/etcd:$ETCD_VERSION" "$work/etcd"
echo
echo "# the rendered image:"
(cd "$work/etcd" && find . -maxdepth 4 | sort)
echo
echo "# its etcd, run on the host in a chroot of the rendered rootfs:"
chroot "$work/etcd/rootfs" /usr/bin/etcd --version

# --- Running etcd in a pod ------------------------------------------------------
run_etcd_pod() {
  if etcdctl --endpoints=http://127.0.0.1:2379 endpoint health >/dev/null 2>&1; then
    echo "demo: an etcd already answers on 127.0.0.1:2379; stop it first" >&2
    exit 1
  fi
  uuid_file=$work/etcd.uuid
  show "rkt run --net=host coreos.com/etcd:$ETCD_VERSION --cpu=750m --memory=128M &"
  rkt run --uuid-file-save="$uuid_file" --net=host "coreos.com/etcd:$ETCD_VERSION" --cpu=750m --memory=128M \
    >"$work/etcd.log" 2>&1 &
  pod_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    etcdctl --endpoints=http://127.0.0.1:2379 endpoint health 2>/dev/null && break
    kill -0 "$pod_pid" 2>/dev/null || { cat "$work/etcd.log" >&2; echo "demo: the etcd pod exited" >&2; exit 1; }
    sleep 0.2
  done
  ((i < 100)) || { cat "$work/etcd.log" >&2; echo "demo: etcd did not become healthy in 20 s" >&2; exit 1; }
  echo "etcd is healthy"
  show 'etcdctl put greeting "hello from a pod"'
  etcdctl --endpoints=http://127.0.0.1:2379 put greeting "hello from a pod"
  show 'etcdctl get greeting'
  etcdctl --endpoints=http://127.0.0.1:2379 get greeting
  step list
  step status "$(cat "$uuid_file")"
  step stop --uuid-file="$uuid_file"
  wait "$pod_pid" || true
  pod_pid=
  step gc --grace-period=0s
}
run_etcd_pod

# --- A three-member etcd cluster on the default pod network -----------------------
run_etcd_cluster() {
  local ips=(172.16.28.201 172.16.28.202 172.16.28.203) initial="" i
  for i in 0 1 2; do initial+="${initial:+,}m$((i + 1))=http://${ips[i]}:2380"; done
  for i in 0 1 2; do
    local n=m$((i + 1)) ip=${ips[i]}
    show "rkt run --net=default:IP=$ip coreos.com/etcd:$ETCD_VERSION --exec=/usr/bin/etcd -- --name=$n ... &"
    rkt run --uuid-file-save="$work/$n.uuid" --net="default:IP=$ip" "coreos.com/etcd:$ETCD_VERSION" --memory=256M \
      --exec=/usr/bin/etcd -- --name="$n" --data-dir="/var/lib/etcd/$n" \
      --listen-client-urls=http://0.0.0.0:2379 --advertise-client-urls="http://$ip:2379" \
      --listen-peer-urls=http://0.0.0.0:2380 --initial-advertise-peer-urls="http://$ip:2380" \
      --initial-cluster="$initial" --initial-cluster-state=new >"$work/$n.log" 2>&1 &
    cluster_pids+=($!)
  done
  local all="http://${ips[0]}:2379,http://${ips[1]}:2379,http://${ips[2]}:2379"
  for ((i = 0; i < 150; i++)); do
    etcdctl --endpoints="$all" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ((i < 150)) || { tail -n 5 "$work"/m*.log >&2; echo "demo: the cluster did not become healthy in 30 s" >&2; exit 1; }
  step list
  show "etcdctl --endpoints=http://${ips[0]}:2379 put cluster-key 'written through m1'"
  etcdctl --endpoints="http://${ips[0]}:2379" put cluster-key 'written through m1'
  show "etcdctl --endpoints=http://${ips[1]}:2379 get cluster-key"
  etcdctl --endpoints="http://${ips[1]}:2379" get cluster-key
  step stop --uuid-file="$work/m1.uuid"
  wait "${cluster_pids[0]}" || true
  show "etcdctl --endpoints=http://${ips[2]}:2379 get cluster-key   # m1 is stopped; m2 and m3 still answer"
  etcdctl --endpoints="http://${ips[2]}:2379" get cluster-key
  show "etcdctl --endpoints=http://${ips[1]}:2379 put after-stop still-a-quorum"
  etcdctl --endpoints="http://${ips[1]}:2379" put after-stop still-a-quorum
  step stop --uuid-file="$work/m2.uuid"
  step stop --uuid-file="$work/m3.uuid"
  wait "${cluster_pids[@]}" || true
  cluster_pids=()
  step gc --grace-period=0s
}
run_etcd_cluster

echo
echo "demo finished; removing $DATA, $CONF and $work"
