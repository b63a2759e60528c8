#!/usr/bin/env bash
# The whole test suite: unit tests and the integration crate, against the real binary.
# Tests needing busybox, strace, unshare, FUSE, python3 or GNU time print SKIPPED when the
# tool is missing (.ci/run installs them so that in CI they run); each skip is also recorded
# in $STATECTL_TEST_SKIPS, and the list is printed at the end, so an "ok" that skipped its
# work is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
export STATECTL_TEST_SKIPS="$skips"
status=0
cargo test --locked "$@" || status=$?
if [ -s "$skips" ]; then
  echo "SKIPPED for a missing tool or privilege ($(sort -u "$skips" | wc -l) tests):"
  sort -u "$skips" | sed 's/^/  /'
else
  echo "no test was skipped"
fi
exit "$status"
