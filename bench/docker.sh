#!/usr/bin/env bash
# docker:// benchmark: rkt against podman pulling the same image from the same local registry.
#
#   sudo bench/docker.sh [ROUNDS]          (default 5; after scripts/setup.sh)
#   BENCH_SIZE_MB=200 sudo bench/docker.sh (uncompressed content, default 100 MB)
#
# The image: 5 gzip layers cut from files already on the machine (/usr/lib/x86_64-linux-gnu,
# /usr/share/...), about BENCH_SIZE_MB in all, written as an OCI layout and pushed with skopeo
# to Debian's docker-registry, started here on 127.0.0.1 with a random port (plain HTTP).
# A = `rkt fetch docker://...` into a fresh data dir: manifest, config, 5 layers downloaded,
#     digest-checked, converted and rendered into the tree store (what `rkt run` uses).
# B = `podman pull` into a fresh --root/--runroot (overlay driver): downloaded, checked and
#     unpacked into its layer store.
# One warm-up round each (not counted), then ROUNDS rounds with A and B side by side, their
# order swapped each round. Storage is on tmpfs (/dev/shm). Prints the median of A, of B and
# of the per-round A/B ratios (target: at most 0.7), and, since a shared machine's load moves
# wall times, the median ratio of their CPU times (user+sys, children included) and the load.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-5}
size_bytes=$((${BENCH_SIZE_MB:-100} * 1000000))
SOURCES=(usr/lib/x86_64-linux-gnu usr/share/doc usr/share/man usr/share/locale usr/lib/node_modules)

die() { echo "bench: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root, like rkt"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not \"$rounds\""
[[ -f $root/dist/cli.js ]] || die "rkt is not built: run scripts/setup.sh"
for tool in docker-registry skopeo podman /usr/bin/time; do command -v $tool >/dev/null || die "$tool is missing: run scripts/setup.sh"; done

work=$(mktemp -d /dev/shm/rkt-bench-docker.XXXXXX)
registry_pid=
cleanup() {
  set +e # a registry that is already gone must not keep the rest from running
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the image: 5 layers of about size_bytes/5 each ------------------------------------
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
blob() { # file -> prints digest and size; moves it into the layout
  local sum size
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$layout/blobs/sha256/$sum"
  echo "sha256:$sum $size"
}
per_layer=$((size_bytes / 5))
( cd / && for dir in "${SOURCES[@]}"; do [[ -d $dir ]] && find "$dir" -type f -size -8M -printf '%s %p\n' | sort -k2; done ) >"$work/files"
layers_json= diff_ids=
layer=0 total=0
: >"$work/list"
while read -r size path && ((layer < 5)); do
  echo "$path" >>"$work/list"
  total=$((total + size))
  if ((total >= per_layer)); then
    tar -C / --numeric-owner --no-recursion -cf "$work/layer.tar" -T "$work/list"
    diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)\""
    gzip -1 -n "$work/layer.tar"
    read -r digest bytes < <(blob "$work/layer.tar.gz")
    layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$bytes}"
    layer=$((layer + 1)) total=0
    : >"$work/list"
  fi
done <"$work/files"
((layer == 5)) || die "not enough files under ${SOURCES[*]} for 5 layers of $per_layer bytes"
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/true"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/config"
read -r cdigest csize < <(blob "$work/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' "$cdigest" "$csize" "$layers_json" >"$work/manifest"
read -r mdigest msize < <(blob "$work/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$mdigest" "$msize" >"$layout/index.json"

# --- the registry -------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://127.0.0.1:$port/bench/app:1"
image=127.0.0.1:$port/bench/app:1
echo "image: 5 layers, $(du -sb "$layout/blobs" | cut -f1) bytes compressed, $size_bytes bytes of files" >&2

# --- rounds ---------------------------------------------------------------------------
# Each prints "WALL CPU" in seconds (CPU: user+sys of the command and its children).
run_rkt() {
  rm -rf "$work/rkt"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -o "$work/cpu" -f '%U %S' "$root/bin/rkt" --dir="$work/rkt" --insecure-options=image,http fetch "docker://$image" >/dev/null 2>"$work/rkt.err" || { cat "$work/rkt.err" >&2; die "rkt fetch failed"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v cpu="$(cat "$work/cpu")" 'BEGIN { split(cpu, c, " "); printf "%.4f %.4f\n", b - a, c[1] + c[2] }'
}
run_podman() {
  rm -rf "$work/podman"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -o "$work/cpu" -f '%U %S' podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver=overlay pull -q --tls-verify=false "$image" >/dev/null 2>"$work/podman.err" || { cat "$work/podman.err" >&2; die "podman pull failed"; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v cpu="$(cat "$work/cpu")" 'BEGIN { split(cpu, c, " "); printf "%.4f %.4f\n", b - a, c[1] + c[2] }'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_rkt >/dev/null; run_podman >/dev/null
a=() b=() r=() rc=()
load0=$(cut -d' ' -f1 /proc/loadavg)
for ((i = 0; i < rounds; i++)); do
  if ((i % 2)); then read -r tb cb < <(run_podman); read -r ta ca < <(run_rkt); else read -r ta ca < <(run_rkt); read -r tb cb < <(run_podman); fi
  a+=("$ta") b+=("$tb") r+=("$(awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%.4f", a / b }')") rc+=("$(awk -v a="$ca" -v b="$cb" 'BEGIN { printf "%.4f", a / b }')")
  printf 'round %d: rkt %.3fs (cpu %.2fs) podman %.3fs (cpu %.2fs)\n' $((i + 1)) "$ta" "$ca" "$tb" "$cb" >&2
done
rm -rf "$work/rkt" "$work/podman"
printf 'rkt fetch docker:// (pull+render): median %.3fs\n' "$(printf '%s\n' "${a[@]}" | median)"
printf 'podman pull:                      median %.3fs\n' "$(printf '%s\n' "${b[@]}" | median)"
printf 'ratio rkt/podman: median %.2f (target <= 0.7); cpu time ratio: median %.2f\n' "$(printf '%s\n' "${r[@]}" | median)" "$(printf '%s\n' "${rc[@]}" | median)"
printf 'load average (1 min) at the start %s, at the end %s (2 cores)\n' "$load0" "$(cut -d' ' -f1 /proc/loadavg)"
