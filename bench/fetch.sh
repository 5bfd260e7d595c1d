#!/usr/bin/env bash
# Fetch benchmark: rkt against the native tools on one large signed ACI.
#
#   sudo bench/fetch.sh [ROUNDS]        (default 5; after scripts/setup.sh)
#   BENCH_SIZE_MB=300 sudo bench/fetch.sh   (content size, default 200 MB)
#
# A = `rkt fetch ACI` into a fresh data dir each round. Its single read of the archive
#     verifies the signature, hashes the image ID, stores the ACI and renders the rootfs
#     into the tree store (<dir>/cas/tree/<id>/rootfs), which is what `rkt run` uses;
#     so fetch alone does all of B's work.
# B = the same work by the native tools, one after another: `gpg --verify` (fresh
#     GNUPGHOME, key imported beforehand), `gzip -dc ACI | sha512sum` (the image ID),
#     `tar -xzf ACI` into a fresh dir.
# One warm-up round (not counted; it also checks that A's image ID and rendered tree
# equal B's), then ROUNDS rounds with A and B side by side, their order swapped each
# round. Everything runs on tmpfs (/dev/shm); set-up and clean-up stay outside the
# timed part. Prints the median of A, of B, and of the per-round A/B ratios
# (target: at most 0.8).
#
# The ACI is built once from files already on the machine (a deterministic, sorted
# tar of /usr/share/doc, /usr/lib/x86_64-linux-gnu, ...), signed with the test-image
# key from scripts/build-images.sh, and kept in build/bench/ with a trust store for it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=$root/build/bench
aci=$bench/bench.aci
keys=$root/build/keys
rounds=${1:-5}
size_bytes=$((${BENCH_SIZE_MB:-200} * 1000000))
# Where the content comes from, in this order, until size_bytes is reached.
SOURCES=(usr/share/doc usr/lib/node_modules usr/share/man usr/share/locale usr/lib/x86_64-linux-gnu)

die() { echo "bench: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root, like rkt"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not \"$rounds\""
[[ -f $root/dist/rkt.cjs ]] || die "rkt is not built: run scripts/setup.sh"
[[ -s $keys/images.fpr ]] || bash "$root/scripts/build-images.sh"
fpr=$(cat "$keys/images.fpr")

# Prints, NUL-separated and relative to /, the entries of the ACI's rootfs: the
# SOURCES in order (each sorted by name, parents before children) until the
# content reaches size_bytes.
content_list() {
  local total=0 size path dir
  printf '%s\0' usr usr/lib usr/share
  for dir in "${SOURCES[@]}"; do
    [[ -d /$dir ]] || continue
    while IFS=' ' read -r -d '' size path; do
      ((total < size_bytes)) || return 0
      printf '%s\0' "$path"
      total=$((total + size))
    done < <(cd / && find "$dir" \( -type f -o -type d -o -type l \) -printf '%s %p\0' | LC_ALL=C sort -z -k2)
  done
}

build_aci() {
  local inputs stage
  inputs="$fpr $size_bytes ${SOURCES[*]}"
  if [[ -s $aci && -s $aci.asc && $(cat "$bench/inputs" 2>/dev/null) == "$inputs" ]]; then return; fi
  echo "bench: building $aci (once)" >&2
  stage=$bench/stage
  rm -rf "$stage" "$bench/config"
  mkdir -p "$stage/rootfs"
  cat > "$stage/manifest" <<'EOF'
{
  "acKind": "ImageManifest",
  "acVersion": "0.8.11",
  "name": "rkt.local/bench",
  "labels": [
    { "name": "version", "value": "1" },
    { "name": "os", "value": "linux" },
    { "name": "arch", "value": "amd64" }
  ]
}
EOF
  touch -d @0 "$stage/manifest" "$stage/rootfs"
  content_list > "$bench/list"
  # The host paths usr/... become rootfs/usr/...; symlink targets stay as they are.
  tar --create --format=gnu --numeric-owner --owner=0 --group=0 --no-recursion \
    --transform='s,^usr,rootfs/usr,S' -C "$stage" manifest rootfs -C / --null -T "$bench/list" |
    gzip -n > "$aci.tmp"
  mv "$aci.tmp" "$aci"
  GNUPGHOME=$root/build/gnupg gpg --batch --yes --quiet --pinentry-mode loopback --passphrase '' \
    --local-user "$fpr" --armor --detach-sign --output "$aci.asc" "$aci"
  GNUPGHOME=$root/build/gnupg gpgconf --kill gpg-agent
  rm -rf "$stage" "$bench/list"
  # The trust store `rkt trust --prefix=rkt.local/bench` would write.
  install -D -m 0644 "$keys/images.pub.asc" "$bench/config/trustedkeys/prefix.d/rkt.local/bench/$fpr"
  mkdir -p "$bench/system-config"
  echo "$inputs" > "$bench/inputs"
}

now() { date +%s%N; }

# A in round dir $1: sets a_ns and a_id (the full ID fetch prints); the rendered rootfs
# is left in the tree store.
run_a() {
  local r=$1 t0 t1
  local -a rkt=("$root/bin/rkt" --dir="$r/data" --local-config="$bench/config" --system-config="$bench/system-config")
  mkdir -p "$r/data"
  t0=$(now)
  a_id=$("${rkt[@]}" fetch --full "$aci" 2>>"$log") || die "rkt fetch failed: see $log"
  t1=$(now)
  a_ns=$((t1 - t0))
}

# B in round dir $1: sets b_ns and b_id (the full image ID) and leaves the tree in $1/out.
run_b() {
  local r=$1 t0 t1 sum
  mkdir -p "$r/gnupg" "$r/out"
  chmod 700 "$r/gnupg"
  GNUPGHOME=$r/gnupg gpg --batch --quiet --no-autostart --import "$keys/images.pub.asc" 2>/dev/null
  t0=$(now)
  GNUPGHOME=$r/gnupg gpg --batch --quiet --no-autostart --verify "$aci.asc" "$aci" 2>/dev/null ||
    die "gpg --verify failed on $aci"
  sum=$(gzip -dc "$aci" | sha512sum)
  tar -xzf "$aci" -C "$r/out"
  t1=$(now)
  b_ns=$((t1 - t0))
  b_id=sha512-${sum%% *}
}

# The rootfs rkt fetch rendered into the tree store of round dir $1.
rendered_rootfs() { echo "${1%/out}/data/cas/tree/$a_id/rootfs"; }

# Fails unless A's result is B's: same image ID, same files (content, type, mode, link target).
check_same() {
  local a=$1 b=$2 ra
  [[ $b_id == "$a_id" ]] || die "rkt fetch printed $a_id but the image ID is $b_id"
  ra=$(rendered_rootfs "$a")
  diff -r --no-dereference "$ra" "$b/rootfs" >/dev/null || die "rkt fetch's tree and tar -x give different files"
  diff <(cd "$ra" && find . -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort) \
    <(cd "$b/rootfs" && find . -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort) >/dev/null ||
    die "rkt fetch's tree and tar -x give different types, modes, owners or link targets"
}

# Removes a round dir; unmounts first anything rkt may have mounted under it.
remove_dir() {
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$1"
}

# One round: A and B in ORDER ("ab" or "ba"), each in a fresh dir under $base.
round() {
  local order=$1 check=${2:-}
  local ra=$base/a rb=$base/b
  if [[ $order == ab ]]; then run_a "$ra"; run_b "$rb"; else run_b "$rb"; run_a "$ra"; fi
  [[ -z $check ]] || check_same "$ra/out" "$rb/out"
  remove_dir "$ra"
  remove_dir "$rb"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

mkdir -p "$bench"
build_aci
base=$(mktemp -d /dev/shm/rkt-bench.XXXXXX)
log=$bench/rkt.log
: > "$log"
trap 'remove_dir "$base"' EXIT

echo "ACI: $aci ($(du -m "$aci" | cut -f1) MB compressed, $(gzip -dc "$aci" | wc -c | awk '{ printf "%d", $1 / 1e6 }') MB uncompressed)"
echo "A: rkt fetch (verify + image ID + store + rootfs in the tree store)      B: gpg --verify; gzip -dc | sha512sum; tar -xzf"
round ab check
echo "warm-up done; A and B agree on the image ID and the rendered files"

a_all=() b_all=() ratios=()
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then round ab; else round ba; fi
  a_all+=("$a_ns") b_all+=("$b_ns")
  ratios+=("$(awk -v a="$a_ns" -v b="$b_ns" 'BEGIN { printf "%.3f", a / b }')")
  awk -v i="$i" -v a="$a_ns" -v b="$b_ns" -v r="${ratios[-1]}" \
    'BEGIN { printf "round %d: A %.3f s  B %.3f s  A/B %s\n", i, a / 1e9, b / 1e9, r }'
done

med_a=$(printf '%s\n' "${a_all[@]}" | median)
med_b=$(printf '%s\n' "${b_all[@]}" | median)
med_r=$(printf '%s\n' "${ratios[@]}" | median)
awk -v a="$med_a" -v b="$med_b" -v r="$med_r" 'BEGIN {
  printf "median A (rkt):    %.3f s\n", a / 1e9
  printf "median B (native): %.3f s\n", b / 1e9
  printf "median A/B:        %.3f (target <= 0.8: %s)\n", r, (r <= 0.8) ? "met" : "not met"
}'
