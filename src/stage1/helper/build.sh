#!/bin/sh
# Builds the stage1 helper (rkt-helper.c) as a static binary into dist/stage1/, where
# src/stage1/tools.ts looks for it. Needs gcc and libc6-dev (scripts/setup.sh installs them).
# Rebuilds only when the source is newer than the binary.
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
src="$root/src/stage1/helper/rkt-helper.c"
out="$root/dist/stage1/rkt-helper"
mkdir -p "$(dirname "$out")"
[ -x "$out" ] && [ "$out" -nt "$src" ] && exit 0
command -v gcc >/dev/null || { echo "build: gcc not found: apt-get install gcc libc6-dev (or run scripts/setup.sh)" >&2; exit 1; }
gcc -static -Os -s -Wall -Wextra -Werror -o "$out.tmp" "$src"
chmod 0755 "$out.tmp"
mv -f "$out.tmp" "$out"
