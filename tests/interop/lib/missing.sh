#!/bin/sh
# Stands in for the interpreter of an interop test when configure did not
# find it (NODE or PYTHON_SOCKETIO empty): the test skips, exit 77, unless
# SIOHUB_REQUIRE_INTEROP asks for every interop test to run (then 99).
# Usage: missing.sh WHAT [FLAGS...] TEST-FILE
what=$1
shift
for test_file in "$@"; do :; done
if test -n "$SIOHUB_REQUIRE_INTEROP"; then
    echo "ERROR: $what not found, cannot run $test_file (SIOHUB_REQUIRE_INTEROP is set)"
    exit 99
fi
echo "SKIP: $what not found (configure), $test_file not run"
exit 77
