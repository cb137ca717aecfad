#!/bin/sh
# Installs what siohub needs to build and to run its whole test suite on
# Debian 12 (bookworm). Safe to run twice. Run as root, or as a user who
# may use sudo: it asks sudo for root itself, so the README's first command
# works both on a desktop (sudo, no root login) and in a container or CI
# (root, and often no sudo installed).
set -eu
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "deps-debian.sh: installing packages needs root, and sudo is not installed; run it as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    build-essential autoconf automake pkg-config ca-certificates \
    libmicrohttpd-dev libhiredis-dev libjansson-dev libjwt-dev libssl-dev check \
    redis-server python3 python3-socketio python3-websocket python3-requests python3-redis \
    clang clang-format valgrind curl \
    chromium nginx-light \
    python3-aiohttp python3-jwt libnginx-mod-nchan
# chromium: the browser test (tests/interop/test_browser.js) drives it with
# npm's playwright-core, which never downloads a browser of its own.
# nginx-light: the interop tests run contrib/nginx/siohub.conf in front of
# the daemon (as the test user, on free loopback ports).
# python3-aiohttp, python3-jwt, libnginx-mod-nchan: the peers bench/run
# measures siohubd against (bench/peers/: python-socketio on aiohttp, as
# Open WebUI runs it, and nginx with nchan).
# The interop tests drive the daemon with npm's socket.io-client. A machine
# with Node.js already (e.g. from NodeSource, whose package ships npm)
# keeps it; otherwise Debian's own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -q --no-install-recommends nodejs npm
fi
