#!/bin/sh
# Every C file of the project as .clang-format has it: prints the first
# differences and fails, or skips (77) without clang-format.
#   check_format.sh SOURCE-ROOT
set -eu
cd "$1"
if ! command -v clang-format >/dev/null 2>&1; then
    echo "clang-format not installed (contrib/deps.sh installs it)"
    exit 77
fi
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/unit/*.c' 'tests/unit/*.h' \
    'tests/fuzz/*.c' 'tests/fuzz/*.h' 'tests/bench/*.c' 2>/dev/null ||
    find src include tests/unit tests/fuzz tests/bench -name '*.[ch]')
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files 2>/tmp/infrafs-format.$$; then
    head -40 /tmp/infrafs-format.$$
    rm -f /tmp/infrafs-format.$$
    echo "run: clang-format -i FILE (the project's .clang-format)"
    exit 1
fi
rm -f /tmp/infrafs-format.$$
