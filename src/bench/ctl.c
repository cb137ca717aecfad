/* bench/ctl.c — control channel framing (see ctl.h). */
#include "bench/ctl.h"

#include <string.h>

void sb_ctl_send(sb_conn_t *c, uint32_t type, const void *p, size_t n)
{
    uint32_t hdr[2] = {type, (uint32_t)n};
    sb_buf_append(&c->out, hdr, sizeof(hdr));
    sb_buf_append(&c->out, p, n);
    sb_conn_flush(c);
}

size_t sb_ctl_parse(const char *p, size_t n, sb_ctl_cb fn, void *arg)
{
    size_t used = 0;
    while (n - used >= 8) {
        uint32_t hdr[2];
        memcpy(hdr, p + used, sizeof(hdr));
        if (hdr[1] > SB_CTL_MAX)
            return (size_t)-1;
        if (n - used - 8 < hdr[1])
            break;
        fn(arg, hdr[0], p + used + 8, hdr[1]);
        used += 8 + (size_t)hdr[1];
    }
    return used;
}
