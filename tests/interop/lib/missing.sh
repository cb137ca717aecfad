#!/bin/sh
# Stands in for the interpreter of an interop test when configure did not
# find it (NODE or PYTHON_SOCKETIO empty): the test skips, exit 77, unless
# SIOHUB_REQUIRE_INTEROP asks for every interop test to run (then 99).
# Usage: missing.sh WHAT TEST-FILE
if test -n "$SIOHUB_REQUIRE_INTEROP"; then
    echo "ERROR: $1 not found, cannot run $2 (SIOHUB_REQUIRE_INTEROP is set)"
    exit 99
fi
echo "SKIP: $1 not found (configure), $2 not run"
exit 77
