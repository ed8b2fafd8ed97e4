#!/usr/bin/env bash
# Runs every test binary given on the command line, from the repository root, and prints
# the project-wide closing line "N passed, N failed". A binary that crashes or exits
# without its RESULT line counts as one failed test.
set -u
passed=0
failed=0
for bin in "$@"; do
    echo "== $(basename "$bin")"
    out=$("$bin" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^RESULT '
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
    if [ -n "$line" ]; then
        set -- $line
        passed=$((passed + $2))
        failed=$((failed + $3))
        if [ "$rc" -ne 0 ] && [ "$3" -eq 0 ]; then
            echo "  FAIL $(basename "$bin") exited $rc after reporting success"
            failed=$((failed + 1))
        fi
    else
        echo "  FAIL $(basename "$bin") exited $rc without a RESULT line"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
