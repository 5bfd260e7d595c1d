#!/bin/sh
# Builds stage1's static helpers into dist/stage1/, where src/stage1/tools.ts and
# src/stage0/userns.ts look for them: rkt-helper (keyring, seccomp, exec of every app) and
# rkt-idmap (user namespaces and idmapped mounts for --private-users). Needs gcc and
# libc6-dev (scripts/setup.sh installs them). Rebuilds a helper only when its source is newer.
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$root/dist/stage1"
command -v gcc >/dev/null || { echo "build: gcc not found: apt-get install gcc libc6-dev (or run scripts/setup.sh)" >&2; exit 1; }
for name in rkt-helper:rkt-helper.c rkt-idmap:idmap.c rkt-notify:notify.c; do
  src="$root/src/stage1/helper/${name#*:}"
  out="$root/dist/stage1/${name%%:*}"
  [ -x "$out" ] && [ "$out" -nt "$src" ] && continue
  gcc -static -Os -s -Wall -Wextra -Werror -o "$out.tmp" "$src"
  chmod 0755 "$out.tmp"
  mv -f "$out.tmp" "$out"
done
