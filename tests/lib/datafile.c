#include "datafile.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"

char *th_read_datafile(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", TESTS_DATADIR, dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(EXIT_FAILURE);
    }
    sh_buf_t b = SH_BUF_INIT;
    size_t n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sh_buf_append(&b, chunk, n);
    fclose(f);
    return sh_buf_steal(&b, len);
}
