/* tests/lib/datafile.h — reading the test vectors under tests/data (the
 * program is compiled with TESTS_DATADIR pointing there). */
#ifndef TH_DATAFILE_H
#define TH_DATAFILE_H

#include <stddef.h>

/* The whole of TESTS_DATADIR/dir/name (new, free() it; NUL-terminated, the
 * NUL not counted in *len). A file that cannot be opened ends the program
 * (a failure, also from inside a test). */
char *th_read_datafile(const char *dir, const char *name, size_t *len);

#endif
