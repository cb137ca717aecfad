/* fuzz_pubsub_route — the routing read of a pub/sub message against the
 * full parser, on arbitrary bytes (JSON, or pickle when the first byte is
 * 0x80). Whenever both read a message they must agree on every routing
 * field (a node decides from the route alone whether to decode); a message
 * the parser ignores (-ENOTSUP) must not get a route; the skimmer must
 * refuse whatever opcode the decoder refuses, for the same reason. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pickle.h"
#include "adapter/pubsub_msg.h"
#include "adapter/pubsub_route.h"
#include "core/json_span.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "route and parser disagree: %s\n", what);
        abort();
    }
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void count_field(const char *key, size_t klen, const sh_pickle_item_t *value, void *data)
{
    (*(size_t *)data)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_pubsub_route_t r;
    const char *rerr = NULL, *perr = NULL;
    int rrc = sh_pubsub_route_read(data, size, &r, &rerr);
    check(rrc == 0 || (rrc == -EINVAL && rerr), "route error code and reason");
    if (rrc == 0) {
        check(r.names_used <= sizeof(r.names), "names in bounds");
        check(r.nrooms <= SH_PUBSUB_ROUTE_MAX_ROOMS, "rooms in bounds");
        check(r.method == SH_PUBSUB_CALLBACK || r.nsp != NULL, "namespace");
    }

    /* The skimmer refuses what the decoder refuses, with its reason, but
     * for what it leaves to the decoder (pickle.h). */
    if (size > 0 && data[0] == 0x80) {
        sh_pickle_t pk;
        const char *derr = NULL, *serr = NULL;
        size_t fields = 0;
        int drc = sh_pickle_decode(data, size, &pk, &derr);
        int src = sh_pickle_skim(data, size, count_field, &fields, &serr);
        if (drc < 0 && !strstr(derr, "UTF-8") && !strstr(derr, "cycle") &&
            !strstr(derr, "nested too deep") && !strstr(derr, "expands") &&
            !strstr(derr, "too many"))
            check(src < 0 && strcmp(serr, derr) == 0, "skim accepts what decode refuses");
        if (drc == 0) {
            /* A dict that is the first container (Python's every message)
             * skims too. */
            if (src < 0)
                check(!json_is_object(pk.value) || strstr(serr, "dict") || strstr(serr, "too many"),
                      "skim refuses what decode accepts");
            else
                check(fields >= json_object_size(pk.value), "a field for each entry");
            sh_pickle_release(&pk);
        }
    }

    sh_pubsub_msg_t m;
    int prc = sh_pubsub_msg_parse(data, size, &m, &perr);
    if (prc == -ENOTSUP)
        check(rrc < 0, "a route for a message the parser ignores");
    /* What a node delivers from the text (sh_adapter_receive: a text
     * emit, which the route read validated as plain JSON) is valid, and
     * the parser reads it the same way: the event, and the data as the
     * argument list. */
    sh_json_info_t info;
    if (rrc == 0 && r.text_emit) {
        check(sh_json_validate((const char *)data, size, &info) == 0 && sh_json_info_plain(&info),
              "a text emit that does not validate as plain JSON");
        check(prc == 0, "a text emit the parser refuses");
        check(!m.skip_sids && !m.has_callback && m.nbins == 0, "a text emit that is not plain");
        json_t *ev = json_loadb(r.event_json.p, r.event_json.len, JSON_DECODE_ANY, NULL);
        check(json_is_string(ev) && strcmp(json_string_value(ev), m.event) == 0, "event text");
        json_decref(ev);
        json_t *d = json_loadb(r.data_json.p, r.data_json.len, JSON_DECODE_ANY, NULL);
        check(d != NULL, "data text");
        json_t *args = json_is_null(d)    ? json_array()
                       : json_is_array(d) ? json_incref(d)
                                          : json_pack("[O]", d);
        check(json_equal(args, m.args), "data text as arguments");
        json_decref(args);
        json_decref(d);
    }
    if (prc != 0 || rrc != 0) {
        if (prc == 0)
            sh_pubsub_msg_release(&m);
        return 0;
    }
    check(r.method == m.method, "method");
    check(same_str(r.host_id, m.host_id), "host_id");
    check(same_str(r.nsp, m.nsp), "namespace");
    check(same_str(r.sid, m.sid), "sid");
    check(r.nrooms == json_array_size(m.rooms), "room count");
    for (size_t i = 0; i < r.nrooms; i++)
        check(strcmp(r.rooms[i], json_string_value(json_array_get(m.rooms, i))) == 0, "room");
    check(same_str(r.cb_room, m.has_callback ? m.cb_room : NULL), "callback room");
    check(m.method != SH_PUBSUB_CALLBACK || r.id == m.id, "id");
    sh_pubsub_msg_release(&m);
    return 0;
}
