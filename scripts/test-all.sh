#!/usr/bin/env bash
# Runs every check CI runs, as root on Debian 12: setup (packages, build, test
# images), the type check, then the unit and integration tests (jest, one process).
# Ends with one line "N passed, N failed"; exits non-zero if anything failed or no
# test ran. A failed setup or type check counts as one failed test.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
results=build/jest-results.json

summary() {
  echo "$1 passed, $2 failed"
  if (($2 > 0 || $1 == 0)); then exit 1; fi
  exit 0
}

if ! bash scripts/setup.sh; then
  echo "setup failed (see above)" >&2
  summary 0 1
fi

extra_failed=0
echo "== type check: tsc --noEmit"
if ! npx tsc --noEmit; then
  echo "type check failed (see above)" >&2
  extra_failed=1
fi

echo "== jest: unit and integration tests"
mkdir -p build
rm -f "$results"
NODE_OPTIONS=--experimental-vm-modules npx jest --runInBand --json --outputFile="$results"
jest_status=$?

if [[ ! -s $results ]]; then
  echo "jest wrote no results (exit status $jest_status)" >&2
  summary 0 $((extra_failed + 1))
fi
passed=$(jq '.numPassedTests' "$results")
# A test file that fails to load (syntax, import or type error) runs no test: count it.
failed=$(jq '.numFailedTests + .numRuntimeErrorTestSuites' "$results")
if ((jest_status != 0 && failed == 0)); then
  echo "jest exited with status $jest_status" >&2
  failed=1
fi
summary "$passed" $((failed + extra_failed))
