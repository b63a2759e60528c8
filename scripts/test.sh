#!/usr/bin/env bash
# The whole test suite: unit tests and the integration crate, against the real binary.
# Tests needing busybox, strace, unshare or FUSE print SKIPPED when the tool is missing;
# .ci/run installs them so that in CI they run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
