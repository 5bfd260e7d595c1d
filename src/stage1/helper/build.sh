#!/bin/sh
# Builds rkt's static helpers: stage1's into dist/stage1/, where src/stage1/tools.ts and
# src/stage0/userns.ts look for them: rkt-helper (namespaces, mounts, PID 1, the exec of
# every app), rkt-idmap (user namespaces and idmapped mounts for --private-users) and
# rkt-notify (sd_notify relay); and dist/rkt-launch, which bin/rkt runs stage0 through
# (src/stage0/rkt-launch.c). Needs gcc and libc6-dev (scripts/setup.sh installs them).
# Rebuilds a helper only when its source is newer.
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$root/dist/stage1"
command -v gcc >/dev/null || { echo "build: gcc not found: apt-get install gcc libc6-dev (or run scripts/setup.sh)" >&2; exit 1; }
for name in stage1/rkt-helper:stage1/helper/rkt-helper.c stage1/rkt-idmap:stage1/helper/idmap.c \
  stage1/rkt-notify:stage1/helper/notify.c rkt-launch:stage0/rkt-launch.c; do
  src="$root/src/${name#*:}"
  out="$root/dist/${name%%:*}"
  [ -x "$out" ] && [ "$out" -nt "$src" ] && continue
  gcc -static -Os -s -Wall -Wextra -Werror -o "$out.tmp" "$src"
  chmod 0755 "$out.tmp"
  mv -f "$out.tmp" "$out"
done
