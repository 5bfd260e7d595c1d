#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) to build, run and test rkt:
# Debian packages the runtime and the tests use, npm dependencies, the TypeScript
# build (dist/), and the signed test images (scripts/build-images.sh).
# Idempotent and quiet: it prints nothing unless a step fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# What stage0/stage1 call on the host (util-linux, busybox-static, iptables,
# iproute2, CNI plugins), what verifies and unpacks images (gnupg, xz-utils, bzip2; zstd for
# tar+zstd Docker layers),
# and what the tests, the demo and the benchmark use as oracles and tools; gcc and
# libc6-dev build the static stage1 helpers (src/stage1/helper/) in `npm run build`
# and the static hostile programs of the confinement tests; python3 is the sd_notify
# listener and the socket-activation parent of the systemd tests. docker-registry and skopeo
# are the registry and the push tool of the docker:// tests, podman the peer of
# bench/docker.sh. systemd's systemd-analyze checks the units of dist/systemd;
# systemd-container's systemd-nspawn boots that systemd for the units' tests (dbus for
# systemd-run inside it).
PACKAGES=(util-linux busybox-static gnupg xz-utils bzip2 iptables iproute2
  containernetworking-plugins appc-spec etcd-client hyperfine openssl jq time procps file
  gcc libc6-dev docker-registry skopeo podman python3 zstd systemd systemd-container dbus tzdata)

die() { echo "setup: $*" >&2; exit 1; }

# Runs a command with its output kept in a log that is shown only if it fails.
quietly() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "failed: $*"
  fi
  rm -f "$log"
}

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, and the integration tests need namespaces and cgroups): sudo $0"

# Node comes with the machine; Debian 12's own nodejs (18) is too old, so never install it from apt.
command -v node >/dev/null || die "node not found: install Node.js >= 20.19 (this script does not install it)"
node_version=$(node --version)
IFS=. read -r major minor _ <<<"${node_version#v}"
if ((major < 20 || (major == 20 && minor < 19))); then
  die "node $node_version is too old: rkt needs Node.js >= 20.19"
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  quietly apt-get update -q
  quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# docker-registry's package starts a registry on :5000 where systemd runs: the tests start
# their own on 127.0.0.1 with random ports, so the system one is stopped and disabled.
if command -v systemctl >/dev/null && systemctl list-unit-files docker-registry.service >/dev/null 2>&1; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi

# npm ci wipes node_modules, so run it only when the lock file changed since the last run.
mkdir -p build
lock_sum=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [[ ! -d node_modules || $(cat build/npm-ci.sum 2>/dev/null) != "$lock_sum" ]]; then
  quietly npm ci --no-audit --no-fund
  echo "$lock_sum" > build/npm-ci.sum
fi

quietly npm run build
quietly bash scripts/build-images.sh

# rkt's groups (as `rkt install` makes them): `rkt` may list pods and images, read status
# and fetch; `rkt-admin` may manage trust. The permission tests use both.
for group in rkt rkt-admin; do
  getent group "$group" >/dev/null || quietly groupadd --system "$group"
done
