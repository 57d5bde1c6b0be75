#!/bin/sh
# Install what is missing, build, and run every test: unit and integration
# tests in a normal build, then again under AddressSanitizer and
# UndefinedBehaviorSanitizer. This is what CI runs (.ci/run).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/deps.sh

run_suite() {
    dir="$1"; shift
    if [ ! -d "$dir" ]; then
        meson setup "$dir" "$@"
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs
}

echo "== build and test: build/"
run_suite build
echo "== build and test with ASan+UBSan: build-asan/"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
echo "infrafs: all tests passed"
