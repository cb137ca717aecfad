#!/bin/sh
# Every C file in src/, tests/ and bench/ matches .clang-format (`make format` fixes).
. "$top_srcdir/tests/lib/common.sh"
[ -n "$CLANG_FORMAT" ] || skip "clang-format not installed"
cd "$top_srcdir" || exit 99
files=$(find src tests bench -name '*.[ch]' | sort)
bad=0
for f in $files; do
    if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f"
        bad=1
    fi
done
[ "$bad" = 0 ] || fail "run 'make format'"
echo "checked $(echo "$files" | wc -w) files"
