#!/bin/sh
# Install what is missing, build, and run every test: unit and integration
# tests in a normal build, then again under AddressSanitizer and
# UndefinedBehaviorSanitizer, then the fuzz targets for a short, fixed time
# each (tests/fuzz/README.md). This is what CI runs (.ci/run).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/deps.sh

run_suite() {
    dir="$1"; suite="$2"; shift 2
    if [ ! -d "$dir" ]; then
        meson setup "$dir" -Dwerror=true "$@"
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs $suite
}

echo "== build and test: build/"
run_suite build ""
echo "== build and test with ASan+UBSan: build-asan/"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
run_suite build-asan "" -Db_sanitize=address,undefined -Db_lundef=false
echo "== fuzz targets, ${INFRAFS_FUZZ_SECONDS:-20} s each: build-fuzz/"
CC=clang run_suite build-fuzz "--suite fuzz" -Dfuzzing=true \
    -Dfuzz_seconds="${INFRAFS_FUZZ_SECONDS:-20}" -Db_sanitize=address,undefined -Db_lundef=false
echo "infrafs: all tests passed"
