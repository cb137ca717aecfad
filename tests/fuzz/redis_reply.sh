#!/bin/sh
exec sh "$top_srcdir/tests/fuzz/run-corpus.sh" redis_reply
