#!/usr/bin/env bash
# Builds the signed test images (ACIs) that the demo, the integration tests and the
# benchmark use, from Debian packages, without installing anything on the host:
# `apt-get download` into build/cache/debs, then `dpkg-deb -x` into a staging rootfs.
#
#   scripts/build-images.sh        (as root; apt-get needs its package lists)
#
# Output in build/ (git-ignored):
#   images/<name>.aci, images/<name>.aci.asc   gzip ACI + armored detached signature
#   images/VERSIONS                            "<image name> <version label>" per line
#   keys/images.pub.asc, keys/images.fpr       the signing key (public) and its fingerprint
#   gnupg/                                     GNUPGHOME holding the secret key (made once)
#
# The image definitions live in images/<name>/: manifest.json is a template whose
# @VERSION@ and @DEBIAN_VERSION@ are filled in here, overlay/ is copied into the rootfs.
# Archives are reproducible (sorted names, fixed mtime, numeric root owner, gzip -n),
# and an image is rebuilt only when its inputs (packages, definition, this script, key) change.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
debs=$build/cache/debs
work=$build/work
out=$build/images
keys=$build/keys
export GNUPGHOME=$build/gnupg
KEY_UID='rkt test images <images@rkt.local>'

die() { echo "build-images: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get download needs the package lists; the rootfs needs root-owned files)"
for tool in apt-get apt-cache dpkg-deb gpg gpgconf file ldd tar gzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh first"
done
mkdir -p "$debs" "$work" "$out" "$keys"

# gpg starts an agent for signing; never leave it running.
trap '[[ -d $GNUPGHOME ]] && gpgconf --kill gpg-agent 2>/dev/null || true' EXIT

PACKAGES=(busybox-static etcd-server etcd-client libc6)
declare -A candidate=()

# Fills candidate[PKG] with the version apt would install, for every package in
# PACKAGES, in one apt-cache call (this apt keeps no binary cache: each call costs ~1 s).
load_candidates() {
  local pkg version
  candidate=()
  while read -r pkg version; do
    [[ $version == "(none)" ]] || candidate[$pkg]=$version
  done < <(apt-cache policy "${PACKAGES[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ { sub(/:$/, ""); pkg = $0 } /Candidate:/ { print pkg, $2 }')
}

# Prints the path of the cached .deb of PKG's candidate version, downloading it if needed.
fetch_deb() {
  local pkg=$1 f
  for f in "$debs/${pkg}"_*.deb; do
    [[ -e $f ]] || continue
    if [[ $(dpkg-deb -f "$f" Version) == "${candidate[$pkg]}" ]]; then echo "$f"; return; fi
    rm -f "$f"
  done
  # A stale package list names a file the mirror no longer has: refresh once and retry.
  if ! (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=${candidate[$pkg]}") >&2; then
    apt-get update -qq
    load_candidates
    (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=${candidate[$pkg]}") >&2 \
      || die "could not download $pkg: check the network and /etc/apt/sources.list"
  fi
  for f in "$debs/${pkg}"_*.deb; do echo "$f"; return; done
  die "apt-get download $pkg left no file in $debs"
}

# The signing key is made once; everything signed later uses the same one.
ensure_key() {
  if ! gpg --batch --list-secret-keys "$KEY_UID" >/dev/null 2>&1; then
    mkdir -p "$GNUPGHOME"
    chmod 700 "$GNUPGHOME"
    gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
      --quick-gen-key "$KEY_UID" ed25519 sign never 2>/dev/null
  fi
  fpr=$(gpg --batch --with-colons --list-secret-keys "$KEY_UID" 2>/dev/null | awk -F: '/^fpr:/ { print tolower($10); exit }')
  [[ -n $fpr ]] || die "no secret key in $GNUPGHOME: remove build/gnupg and run again"
  gpg --batch --armor --export "$fpr" > "$keys/images.pub.asc.tmp"
  mv "$keys/images.pub.asc.tmp" "$keys/images.pub.asc"
  echo "$fpr" > "$keys/images.fpr"
}

# Makes an empty staging dir for image NAME and prints it; the rootfs goes in rootfs/.
new_stage() {
  local stage=$work/$1
  rm -rf "$stage"
  mkdir -p "$stage/rootfs"
  chmod 755 "$stage/rootfs"
  echo "$stage"
}

# mkdir with an explicit mode, independent of the caller's umask.
mkdir_mode() {
  local mode=$1 dir
  shift
  for dir in "$@"; do
    mkdir -p "$dir"
    chmod "$mode" "$dir"
  done
}

# Copies images/NAME/overlay (plain data files) into ROOTFS, mode 0644.
copy_overlay() {
  local name=$1 rootfs=$2 src rel
  while IFS= read -r -d '' src; do
    rel=${src#"$root/images/$name/overlay/"}
    install -D -m 0644 "$src" "$rootfs/$rel"
  done < <(find "$root/images/$name/overlay" -type f -print0)
}

# Copies into ROOTFS, from an extracted libc6 tree LIBC, every shared object (and the
# ELF interpreter) that the dynamically linked binary BIN loads, as ldd lists them.
copy_libs() {
  local libc=$1 rootfs=$2 bin=$3 path src
  for path in $(ldd "$bin" | grep -o '/[^ ]*'); do
    src=$path
    [[ -e $libc$src ]] || src=${path#/usr}
    [[ -e $libc$src ]] || die "$bin needs $path, which libc6 does not ship: add its package to build-images.sh"
    mkdir -p "$rootfs$(dirname "$src")"
    cp -a "$libc$src" "$rootfs$src"
    # The interpreter is a symlink to an absolute path inside libc6: keep its target too.
    if [[ -L $libc$src ]]; then
      local target
      target=$(readlink "$libc$src")
      [[ $target == /* ]] && src=$target || src=$(dirname "$src")/$target
      mkdir -p "$rootfs$(dirname "$src")"
      cp -a "$libc$src" "$rootfs$src"
    fi
  done
}

# Renders images/NAME/manifest.json into STAGE/manifest.
render_manifest() {
  local name=$1 stage=$2 version=$3 debian_version=$4
  sed -e "s|@VERSION@|$version|g" -e "s|@DEBIAN_VERSION@|$debian_version|g" \
    "$root/images/$name/manifest.json" > "$stage/manifest"
  ! grep -q '@[A-Z_]*@' "$stage/manifest" || die "images/$name/manifest.json has an unknown @PLACEHOLDER@"
  if command -v jq >/dev/null; then jq empty "$stage/manifest" || die "images/$name/manifest.json is not valid JSON"; fi
  chmod 644 "$stage/manifest"
}

# Packs STAGE (manifest + rootfs/) into build/images/NAME.aci and signs it. MTIME
# (seconds since the epoch, taken from the packaged binary) is stamped on every entry
# so that the same packages always give the same image ID.
pack_and_sign() {
  local name=$1 stage=$2 mtime=$3 aci=$out/$1.aci
  tar -C "$stage" --create --format=gnu --sort=name --numeric-owner --owner=0 --group=0 \
    --mtime="@$mtime" manifest rootfs | gzip -n -6 > "$aci.tmp"
  mv "$aci.tmp" "$aci"
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase '' --local-user "$fpr" \
    --armor --detach-sign --output "$aci.asc.tmp" "$aci"
  mv "$aci.asc.tmp" "$aci.asc"
  rm -rf "$stage"
}

# True (and nothing to do) when NAME was last built from exactly these inputs.
up_to_date() {
  local name=$1 inputs=$2
  [[ -s $out/$name.aci && -s $out/$name.aci.asc && -f $out/$name.inputs ]] &&
    [[ $(cat "$out/$name.inputs") == "$inputs" ]]
}

# Everything an image depends on, as one digest: this script, its definition, the
# exact package files and the signing key.
inputs_of() {
  local name=$1
  shift
  {
    sha256sum < "${BASH_SOURCE[0]}"
    find "$root/images/$name" -type f -print0 | sort -z | xargs -0 sha256sum | sed "s|$root/||"
    for deb in "$@"; do basename "$deb"; done
    echo "$fpr"
  } | sha256sum | cut -d' ' -f1
}

# Debian version → label value: no epoch, only [A-Za-z0-9._-] (so "name:version" parses).
sanitize_version() {
  local v=${1#*:}
  echo "${v//[^A-Za-z0-9._-]/-}"
}

build_busybox() {
  local deb stage rootfs version applet mtime
  deb=$(fetch_deb busybox-static)
  version=$(sanitize_version "$(dpkg-deb -f "$deb" Version)")
  versions+=("rkt.local/busybox $version")
  local inputs
  inputs=$(inputs_of busybox "$deb")
  if up_to_date busybox "$inputs"; then return; fi

  stage=$(new_stage busybox)
  rootfs=$stage/rootfs
  mkdir "$stage/deb"
  dpkg-deb -x "$deb" "$stage/deb"
  mkdir_mode 755 "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" \
    "$rootfs/var" "$rootfs/var/www" "$rootfs/home" "$rootfs/home/user"
  mkdir_mode 700 "$rootfs/root"
  mkdir_mode 1777 "$rootfs/tmp"
  install -m 0755 "$stage/deb/bin/busybox" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  mtime=$(stat -c %Y "$stage/deb/bin/busybox")
  rm -rf "$stage/deb"
  copy_overlay busybox "$rootfs"
  render_manifest busybox "$stage" "$version" "$(dpkg-deb -f "$deb" Version)"
  pack_and_sign busybox "$stage" "$mtime"
  echo "$inputs" > "$out/busybox.inputs"
}

build_etcd() {
  local server client libc6 stage rootfs version debian_version bin mtime
  server=$(fetch_deb etcd-server)
  client=$(fetch_deb etcd-client)
  libc6=$(fetch_deb libc6)
  debian_version=$(dpkg-deb -f "$server" Version)
  # Upstream version: drop the epoch and the Debian revision, e.g. 3.4.23-4+b4 → v3.4.23.
  version=${debian_version#*:}
  version=v${version%-*}
  versions+=("coreos.com/etcd $version")
  local inputs
  inputs=$(inputs_of etcd "$server" "$client" "$libc6")
  if up_to_date etcd "$inputs"; then return; fi

  stage=$(new_stage etcd)
  rootfs=$stage/rootfs
  mkdir "$stage/deb" "$stage/libc"
  dpkg-deb -x "$server" "$stage/deb"
  dpkg-deb -x "$client" "$stage/deb"
  mkdir_mode 755 "$rootfs/usr" "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/var" "$rootfs/var/lib" \
    "$rootfs/var/lib/etcd" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
  mkdir_mode 700 "$rootfs/root"
  mkdir_mode 1777 "$rootfs/tmp"
  install -m 0755 "$stage/deb/usr/bin/etcd" "$stage/deb/usr/bin/etcdctl" "$rootfs/usr/bin/"
  # Debian builds etcd with cgo, so the binaries need glibc; take it from libc6 too.
  for bin in "$rootfs/usr/bin/etcd" "$rootfs/usr/bin/etcdctl"; do
    if file -b "$bin" | grep -q 'dynamically linked'; then
      [[ -d $stage/libc/lib ]] || dpkg-deb -x "$libc6" "$stage/libc"
      copy_libs "$stage/libc" "$rootfs" "$bin"
    fi
  done
  mtime=$(stat -c %Y "$stage/deb/usr/bin/etcd")
  rm -rf "$stage/deb" "$stage/libc"
  copy_overlay etcd "$rootfs"
  render_manifest etcd "$stage" "$version" "$debian_version"
  pack_and_sign etcd "$stage" "$mtime"
  echo "$inputs" > "$out/etcd.inputs"
}

load_candidates
if ((${#candidate[@]} < ${#PACKAGES[@]})); then
  apt-get update -qq
  load_candidates
fi
for pkg in "${PACKAGES[@]}"; do
  [[ -n ${candidate[$pkg]:-} ]] || die "apt has no package $pkg: check /etc/apt/sources.list"
done
ensure_key
versions=()
build_busybox
build_etcd
printf '%s\n' "${versions[@]}" > "$out/VERSIONS"
