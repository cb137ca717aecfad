#!/bin/sh
# Every source compiles warning-free with -Werror, whatever flags the build
# itself was configured with (a distro build may not use --enable-werror).
. "$top_srcdir/tests/lib/common.sh"
cd "$top_srcdir" || exit 99
flags="-std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -Werror -fsyntax-only -D_GNU_SOURCE -Isrc -I$top_builddir"
n=0
for f in $(find src -name '*.c' | sort); do
    ${CC:-cc} $flags $BUILD_CFLAGS "$f" || fail "$f does not build with -Werror"
    n=$((n + 1))
done
echo "compiled $n files with -Werror"
