#!/bin/sh
# One fuzz target for a fixed time, from its seed corpus:
#   run.sh TARGET CORPUS SECONDS FINDINGS [DICT]
# Every seed runs first (a seed that crashes fails at once: the corpus is
# the regression test of earlier findings). What the fuzzer adds goes to a
# scratch directory, never into the corpus of the source tree; a crashing
# input is kept in FINDINGS.
set -eu
target=$1 corpus=$2 seconds=$3 findings=$4 dict=${5:-}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$findings"
set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -error_exitcode=1 -artifact_prefix="$findings/"
if [ -n "$dict" ] && [ -f "$dict" ]; then
    set -- "$@" -dict="$dict"
fi
exec "$target" "$@" "$scratch" "$corpus"
