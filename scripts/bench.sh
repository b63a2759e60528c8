#!/usr/bin/env bash
# The performance contract (docs/reference.md "Performance") in one run: builds statectl in release mode, lays out
# fake hosts in a temp dir, times statectl against tar/gzip/find/cmp baselines on the same
# files and prints metric, value, target, PASS/FAIL. Exit 1 when a target is missed.
#   scripts/bench.sh           full sizes (10,000 flagged files, 100 MiB), a few minutes
#   scripts/bench.sh --quick   smaller hosts, under a minute
#   scripts/bench.sh --dir D   lay the hosts out under D (default: $TMPDIR/statectl-bench)
#   scripts/bench.sh --keep    keep the hosts afterwards (for perf/callgrind)
#   scripts/bench.sh --scale-only [--scale-sizes 1000,10000]   only the scale section
#   scripts/bench.sh --configstore-only   only the ConfigStore case (a 64 MiB live store)
#   scripts/bench.sh --fleet-only   only drift/history over 100 and 1,000 hosts x 24 copies
#   STATECTL_BENCH_BIN=PATH scripts/bench.sh ...   measure another statectl build (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench contract -- "$@"
