#include "transport/sse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/msgq.h"
#include "transport/sse_wire.h"

struct sh_sse {
    unsigned refs; /* the owner's, plus one per stream reading */
    bool owned;    /* the owner has not called sh_sse_free */
    bool ended;    /* sh_sse_end: no more events */
    bool drain;    /* ... and the live stream writes what is queued first */
    char sid[SH_SSE_MAX_SID + 1];
    sh_msg_render_cb render;
    size_t buffer_bytes, buffer_events, output_limit;
    uint64_t retry_ms;
    sh_sse_stats_t *stats;
    sh_sse_stats_t own_stats; /* when the owner gave none */
    sh_sse_detach_cb on_detach;
    void *data;
    /* The events: forms of seq first_seq .. first_seq + ring.count - 1. */
    sh_msgq_t ring;
    uint64_t first_seq;
    sh_sse_stream_t *stream; /* the live stream, or NULL */
    uint64_t cursor;         /* last seq the live stream wrote in full */
    size_t unsent;           /* bytes of events after cursor */
};

struct sh_sse_stream {
    sh_sse_t *sse; /* NULL once replaced or dropped: the stream ends */
    sh_sse_wake_cb wake;
    void *wake_data;
    bool waiting; /* the last read returned 0: wake on news */
    bool ending;  /* sh_sse_end(drain) reached this stream */
    sh_buf_t pre; /* bytes for the next event boundary: retry, reset, pings */
    /* The event being written: its id line, then its form (a reference). */
    sh_msg_t *cur;
    char idline[SH_SSE_MAX_EVENT_ID + 8];
    size_t idlen;
    size_t off; /* into idline + form */
};

static uint64_t last_seq(const sh_sse_t *sse)
{
    return sse->first_seq + sse->ring.count - 1;
}

static void sse_unref(sh_sse_t *sse)
{
    if (--sse->refs > 0)
        return;
    sh_msgq_release(&sse->ring);
    free(sse);
}

sh_sse_t *sh_sse_new(const sh_sse_options_t *opts, sh_sse_detach_cb on_detach, void *data)
{
    sh_sse_t *sse = sh_new0(sh_sse_t);
    sse->refs = 1;
    sse->owned = true;
    snprintf(sse->sid, sizeof(sse->sid), "%s", opts->sid);
    sse->render = opts->render;
    sse->buffer_bytes = opts->buffer_bytes;
    sse->buffer_events = opts->buffer_events;
    sse->output_limit = opts->output_limit;
    sse->retry_ms = opts->retry_ms;
    sse->stats = opts->stats ? opts->stats : &sse->own_stats;
    sse->on_detach = on_detach;
    sse->data = data;
    sse->first_seq = 1;
    return sse;
}

static void wake(sh_sse_stream_t *st)
{
    if (st && st->waiting) {
        st->waiting = false;
        if (st->wake)
            st->wake(st, st->wake_data);
    }
}

/* Detaches the live stream from sse (it ends at its next read). */
static void drop_stream(sh_sse_t *sse)
{
    sh_sse_stream_t *st = sse->stream;
    if (!st)
        return;
    sse->stream = NULL;
    sse->stats->streams--;
    st->sse = NULL;
    wake(st);
    sse_unref(sse);
}

/* Drops the oldest events past the buffer's bounds. Events a live stream
 * has not written stay: the output limit is their bound. */
static void trim(sh_sse_t *sse)
{
    while (sse->ring.count &&
           (sse->ring.count > sse->buffer_events || sse->ring.bytes > sse->buffer_bytes)) {
        if (sse->stream && sse->first_seq > sse->cursor)
            break;
        sh_msg_t *m = sh_msgq_pop(&sse->ring);
        if (sse->first_seq > sse->cursor)
            sse->unsent -= m->len;
        sse->first_seq++;
        sh_msg_unref(m);
    }
}

void sh_sse_free(sh_sse_t *sse)
{
    if (!sse)
        return;
    sse->owned = false;
    if (!sse->ended)
        sh_sse_end(sse, false);
    else if (sse->stream && sse->drain)
        sse->stats->draining++; /* counted until the stream ends */
    sse_unref(sse);
}

int sh_sse_push(sh_sse_t *sse, sh_msg_t *m)
{
    sh_msg_t *form = sse->ended ? NULL : sh_msg_form(m, sse->render);
    if (!form) {
        sh_msg_unref(m);
        return 0;
    }
    sh_msgq_push(&sse->ring, sh_msg_ref(form));
    sh_msg_unref(m); /* the form lives on by its own reference */
    sse->unsent += form->len;
    sse->stats->events++;
    trim(sse);
    wake(sse->stream);
    if (sse->stream && sse->output_limit && sse->unsent > sse->output_limit)
        return -ENOBUFS;
    return 1;
}

void sh_sse_keepalive(sh_sse_t *sse)
{
    sh_sse_stream_t *st = sse->stream;
    /* One pending ping is enough: a client that does not read gets no
     * pile of them. */
    if (!st || sse->ended || sh_buf_avail(&st->pre))
        return;
    sh_buf_append_str(&st->pre, ": ping\n\n");
    wake(st);
}

void sh_sse_end(sh_sse_t *sse, bool drain)
{
    if (sse->ended)
        return;
    sse->ended = true;
    sse->drain = drain;
    if (!sse->stream)
        return;
    if (drain)
        wake(sse->stream);
    else
        drop_stream(sse);
}

uint64_t sh_sse_last_seq(const sh_sse_t *sse)
{
    return last_seq(sse);
}

uint64_t sh_sse_first_seq(const sh_sse_t *sse)
{
    return sse->first_seq;
}

size_t sh_sse_buffered(const sh_sse_t *sse, size_t *bytes)
{
    if (bytes)
        *bytes = sse->ring.bytes;
    return sse->ring.count;
}

size_t sh_sse_unsent(const sh_sse_t *sse)
{
    return sse->unsent;
}

bool sh_sse_attached(const sh_sse_t *sse)
{
    return sse->stream != NULL;
}

/* ---- streams */

sh_sse_stream_t *sh_sse_stream_new(sh_sse_t *sse, const sh_sse_from_t *from, sh_sse_wake_cb wake_cb,
                                   void *wake_data, bool *was_reset)
{
    drop_stream(sse);
    sh_sse_stream_t *st = sh_new0(sh_sse_stream_t);
    st->wake = wake_cb;
    st->wake_data = wake_data;
    bool reset = from && from->reset;
    uint64_t last = last_seq(sse);
    uint64_t cursor = sse->first_seq - 1; /* everything held */
    if (from && from->resume) {
        sse->stats->resumes++;
        if (from->after_seq > last) {
            /* Not an id of ours: nothing to replay, and the client's
             * state is suspect. */
            reset = true;
            cursor = last;
        } else if (from->after_seq + 1 < sse->first_seq) {
            reset = true; /* the buffer no longer reaches back that far */
        } else {
            cursor = from->after_seq;
        }
    }
    sh_buf_appendf(&st->pre, "retry: %" PRIu64 "\n\n", sse->retry_ms);
    if (reset) {
        sse->stats->resets++;
        sh_buf_append_str(&st->pre, "event: reset\ndata: {}\n\n");
    }
    if (was_reset)
        *was_reset = reset;
    sse->cursor = cursor;
    sse->unsent = 0;
    for (uint64_t s = cursor + 1; s <= last; s++)
        sse->unsent += sh_msgq_at(&sse->ring, (size_t)(s - sse->first_seq))->len;
    st->sse = sse;
    sse->refs++;
    sse->stream = st;
    sse->stats->streams++;
    return st;
}

/* Copies from src[*off..len) into buf[*n..max); true when src is done. */
static bool copy_part(char *buf, size_t max, size_t *n, const char *src, size_t len, size_t *off)
{
    size_t k = len - *off;
    if (k > max - *n)
        k = max - *n;
    memcpy(buf + *n, src + *off, k);
    *n += k;
    *off += k;
    return *off == len;
}

long sh_sse_stream_read(sh_sse_stream_t *st, char *buf, size_t max)
{
    sh_sse_t *sse = st->sse;
    if (!sse)
        return -1;
    size_t n = 0;
    while (n < max) {
        if (st->cur) {
            /* The id line, then the shared form. */
            if (st->off < st->idlen) {
                size_t o = st->off;
                copy_part(buf, max, &n, st->idline, st->idlen, &o);
                st->off = o;
                continue;
            }
            size_t o = st->off - st->idlen;
            bool done = copy_part(buf, max, &n, st->cur->data, st->cur->len, &o);
            st->off = st->idlen + o;
            if (!done)
                break;
            sse->cursor++;
            sse->unsent -= st->cur->len;
            sh_msg_unref(st->cur);
            st->cur = NULL;
            trim(sse);
            continue;
        }
        if (sh_buf_avail(&st->pre)) {
            size_t o = 0;
            copy_part(buf, max, &n, sh_buf_peek(&st->pre), sh_buf_avail(&st->pre), &o);
            sh_buf_consume(&st->pre, o);
            continue;
        }
        if (sse->cursor < last_seq(sse)) {
            uint64_t seq = sse->cursor + 1;
            st->cur = sh_msg_ref(sh_msgq_at(&sse->ring, (size_t)(seq - sse->first_seq)));
            memcpy(st->idline, "id: ", 4);
            size_t len = 4 + sh_sse_format_event_id(st->idline + 4, sse->sid, seq);
            st->idline[len++] = '\n';
            st->idlen = len;
            st->off = 0;
            continue;
        }
        break;
    }
    if (n > 0)
        return (long)n;
    if (sse->ended && sse->drain)
        return -1; /* everything written: the response ends */
    st->waiting = true;
    return 0;
}

void sh_sse_stream_free(sh_sse_stream_t *st)
{
    if (!st)
        return;
    sh_sse_t *sse = st->sse;
    sh_msg_unref(st->cur);
    sh_buf_release(&st->pre);
    free(st);
    if (!sse)
        return;
    /* The live stream ended from the client's side (or after draining). */
    sse->stream = NULL;
    sse->stats->streams--;
    if (!sse->owned && sse->drain)
        sse->stats->draining--;
    if (sse->owned && sse->on_detach)
        sse->on_detach(sse, sse->data);
    sse_unref(sse);
}

/* ---- the HTTP glue */

static void on_http_wake(sh_sse_stream_t *st, void *data)
{
    sh_http_req_resume(data);
}

static long on_http_read(char *buf, size_t max, void *data)
{
    return sh_sse_stream_read(data, buf, max);
}

static void on_http_done(sh_http_req_t *req, void *owner)
{
    sh_sse_stream_free(owner);
}

int sh_sse_attach(sh_sse_t *sse, sh_http_req_t *req, const sh_sse_from_t *from, bool *was_reset)
{
    sh_sse_stream_t *st = sh_sse_stream_new(sse, from, on_http_wake, req, was_reset);
    sh_http_req_set_owner(req, st, on_http_done);
    if (sh_http_respond_stream(req, 200, "text/event-stream; charset=utf-8", on_http_read, st) <
        0) {
        sh_http_req_set_owner(req, NULL, NULL);
        /* Not a stream the client ever had: the owner hears nothing. */
        sh_sse_detach_cb cb = sse->on_detach;
        sse->on_detach = NULL;
        sh_sse_stream_free(st);
        sse->on_detach = cb;
        return -EIO;
    }
    return 0;
}
