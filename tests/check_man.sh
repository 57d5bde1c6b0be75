#!/bin/sh
# Usage: check_man.sh BUILT_PAGE SCDOC_SOURCE
# Reads the built man page the way man(1) shows it and fails on any warning
# from man or groff, on a missing or misplaced section, and on source lines
# that scdoc silently mangles. Without arguments (scdoc was not found when
# the build was configured) there is no page, and the test is skipped.
set -u

if [ $# -eq 0 ]; then
    echo "SKIP: scdoc was not found at meson setup, so no man page was built;" \
         "install scdoc (sh contrib/deps.sh) and run meson setup --reconfigure"
    exit 77
fi
page=$1
source=$2
if ! command -v man >/dev/null 2>&1; then
    echo "SKIP: man is not installed (package man-db; sh contrib/deps.sh installs it)"
    exit 77
fi
if [ ! -s "$page" ]; then
    echo "FAIL: $page is missing or empty; run ninja to build it"
    exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

# A fixed width and locale so that the result does not depend on who runs it.
LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=all -l "$page" >"$tmp/text" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
    echo "FAIL: man --warnings=all -l $page exited $rc and said (fix $source):"
    cat "$tmp/err"
    status=1
fi

# Every section, in this order; sections may be added between them.
last=0
for heading in NAME SYNOPSIS DESCRIPTION OPTIONS CONFIGURATION "THE TREE" \
               "CONTROL FILES" "PROVIDERS STATUS" FRESHNESS EXAMPLES CAVEATS \
               ENVIRONMENT FILES "SEE ALSO"; do
    line=$(grep -n -x -m 1 "$heading" "$tmp/text" | cut -d: -f1)
    if [ -z "$line" ]; then
        echo "FAIL: the rendered page has no section '$heading'"
        status=1
    elif [ "$line" -le "$last" ]; then
        echo "FAIL: section '$heading' (line $line of the rendered page) is out of order"
        status=1
    else
        last=$line
    fi
done

# scdoc drops the first "." of a text line that starts with ".x" (only ". "
# starts a numbered list) without any warning; literal blocks are safe.
awk -v src="$source" '
    /^\t*```$/ { literal = !literal; next }
    !literal && /^\t*\.[^ ]/ {
        printf "FAIL: %s:%d: scdoc drops the first dot of a line starting with \".\"; rewrap the paragraph\n", src, NR
        bad = 1
    }
    END { exit bad }' "$source" || status=1

if [ "$status" -eq 0 ]; then
    echo "ok: $page renders without warnings and has every section"
fi
exit "$status"
