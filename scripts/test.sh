#!/usr/bin/env bash
# The whole test suite: unit tests and the integration crate, against the real binary.
# Tests needing busybox, strace, unshare, FUSE, python3 (with dissect), GNU time or root are
# `#[ignore = "needs ..."]`, so a plain `cargo test` on a laptop reports them as ignored; here they
# run too (`--include-ignored`), and a missing tool fails its test loudly instead of passing
# (.ci/run installs them all and runs this as root).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --locked "$@" -- --include-ignored
