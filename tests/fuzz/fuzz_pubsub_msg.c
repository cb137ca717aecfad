/* fuzz_pubsub_msg — the pub/sub message parser on arbitrary bytes (JSON, or
 * pickle when the first byte is 0x80). Whatever parses must encode, and the
 * encoding must parse back to the same message: what siohub publishes for
 * a message it read says the same thing. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pubsub_msg.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "round trip mismatch: %s\n", what);
        abort();
    }
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_json(const json_t *a, const json_t *b)
{
    return a == b || (a && b && json_equal(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_pubsub_msg_t m;
    const char *err = NULL;
    int rc = sh_pubsub_msg_parse(data, size, &m, &err);
    if (rc != 0) {
        check(rc == -EINVAL || rc == -ENOTSUP, "error code");
        check(err != NULL, "rejection without a reason");
        check(m.args == NULL && m.bins == NULL && m.nsp == NULL, "empty on failure");
        return 0;
    }
    check(m.method != SH_PUBSUB_EMIT || (m.event && m.nsp && m.args), "emit fields");
    check(m.method != SH_PUBSUB_CALLBACK || (m.host_id && m.sid && m.args), "callback fields");

    sh_buf_t out = SH_BUF_INIT;
    check(sh_pubsub_msg_encode(&m, &out) == 0, "encode");
    sh_pubsub_msg_t again;
    rc = sh_pubsub_msg_parse(sh_buf_peek(&out), sh_buf_avail(&out), &again, &err);
    if (rc != 0)
        fprintf(stderr, "own output rejected (%s): %s\n", err, sh_buf_peek(&out));
    check(rc == 0, "re-parse");
    check(again.method == m.method, "method");
    check(same_str(again.host_id, m.host_id), "host_id");
    /* a callback without namespace is written with "/" */
    check(same_str(again.nsp, m.nsp) || (!m.nsp && strcmp(again.nsp, "/") == 0), "namespace");
    check(same_str(again.event, m.event), "event");
    check(same_json(again.rooms, m.rooms), "rooms");
    check(same_json(again.skip_sids, m.skip_sids), "skip_sids");
    check(again.has_callback == m.has_callback && same_str(again.cb_room, m.cb_room) &&
              same_str(again.cb_nsp, m.cb_nsp) && again.cb_id == m.cb_id,
          "callback");
    check(same_str(again.sid, m.sid) && again.id == m.id, "sid, id");
    check(same_json(again.args, m.args), "args");
    check(again.nbins == m.nbins, "attachment count");
    for (size_t i = 0; i < m.nbins; i++)
        check(again.bins[i]->len == m.bins[i]->len &&
                  memcmp(again.bins[i]->data, m.bins[i]->data, m.bins[i]->len) == 0,
              "attachment bytes");
    sh_pubsub_msg_release(&again);
    sh_buf_release(&out);
    sh_pubsub_msg_release(&m);
    return 0;
}
