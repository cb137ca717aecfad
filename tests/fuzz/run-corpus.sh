#!/bin/sh
# run-corpus.sh NAME — runs the libFuzzer target tests/fuzz/fuzz_NAME once
# over every input in tests/fuzz/corpus/NAME (no mutation: a regression run
# that make check can afford). Skips when clang/libFuzzer is absent.
. "$top_srcdir/tests/lib/common.sh"
name=$1
bin="$top_builddir/tests/fuzz/fuzz_$name"
corpus="$top_srcdir/tests/fuzz/corpus/$name"
[ -x "$bin" ] || skip "fuzz target $name not built (needs clang with libFuzzer)"
[ -d "$corpus" ] || fail "no corpus at tests/fuzz/corpus/$name"
count=$(find "$corpus" -type f | wc -l)
[ "$count" -gt 0 ] || fail "empty corpus for $name"
log="tests/fuzz/fuzz_$name.out"
mkdir -p tests/fuzz
ASAN_OPTIONS=detect_leaks=1 "$bin" -runs=0 "$corpus" >"$log" 2>&1
status=$?
tail -3 "$log"
# With -runs=0 libFuzzer executes each corpus file once and exits 0 unless
# an input crashed, leaked or tripped a sanitizer.
[ "$status" = 0 ] || fail "fuzz target $name failed on its corpus"
echo "ran $count corpus inputs through fuzz_$name"
