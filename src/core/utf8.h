/* utf8.h — strict UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), as RFC 6455 requires of text frames. */
#ifndef SH_CORE_UTF8_H
#define SH_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool sh_utf8_valid(const void *p, size_t n);

#endif
