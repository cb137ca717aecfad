#!/bin/sh
exec sh "$top_srcdir/tests/fuzz/run-corpus.sh" bench_http
