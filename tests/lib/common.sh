# tests/lib/common.sh — sourced by shell tests. Automake's harness reads the
# exit status: 0 pass, 77 skip, 99 hard error, anything else fail.
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
: "${top_srcdir:?run through make check}"
: "${top_builddir:?run through make check}"
