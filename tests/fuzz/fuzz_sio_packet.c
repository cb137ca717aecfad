/* fuzz_sio_packet — Socket.IO packet decoder on arbitrary bytes. Whatever
 * decodes must encode and decode again to the same packet (type, namespace,
 * ack id, attachment count, payload): the encoder writes only what the
 * decoder reads back. What the text reader (sh_sio_event_peek and
 * sh_sio_event_read_args) takes, the decoder must take as the same EVENT:
 * namespace, ack id, name and argument values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/packet.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "round trip mismatch: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_sio_event_text_t ev;
    sh_json_span_t args[SH_SIO_TEXT_MAX_ARGS];
    size_t nargs = 0;
    int text = sh_sio_event_peek((const char *)data, size, &ev) == 0 &&
               sh_sio_event_read_args(&ev, args, SH_SIO_TEXT_MAX_ARGS, &nargs) == 0;
    sh_sio_packet_t pkt;
    const char *err = NULL;
    if (sh_sio_packet_decode((const char *)data, size, &pkt, &err) != 0) {
        check(err != NULL, "rejection without a reason");
        check(!text, "read as text, refused by the decoder");
        return 0;
    }
    if (text) {
        check(pkt.type == SH_SIO_EVENT, "text: type");
        check(strcmp(ev.nsp, pkt.nsp) == 0, "text: nsp");
        check(ev.id == pkt.id, "text: id");
        const json_t *name = json_array_get(pkt.data, 0);
        check(json_is_string(name) && strlen(ev.event) == json_string_length(name) &&
                  strcmp(ev.event, json_string_value(name)) == 0,
              "text: name");
        check(nargs + 1 == json_array_size(pkt.data), "text: argument count");
        for (size_t i = 0; i < nargs; i++) {
            json_t *arg =
                json_loadb(args[i].p, args[i].len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            check(arg && json_equal(arg, json_array_get(pkt.data, i + 1)), "text: argument");
            json_decref(arg);
        }
    }

    /* Stand-in attachments: the codec never looks at their bytes. */
    sh_msg_t *bins[SH_SIO_MAX_ATTACHMENTS];
    size_t nbins = pkt.attachments;
    check(nbins <= SH_SIO_MAX_ATTACHMENTS, "attachment bound");
    for (size_t i = 0; i < nbins; i++) {
        uint8_t b = (uint8_t)i;
        bins[i] = sh_msg_new(&b, 1, true);
        int rc = sh_sio_packet_add_attachment(&pkt, bins[i]);
        check(rc == (i + 1 == nbins), "add_attachment");
    }
    check(sh_sio_packet_complete(&pkt), "complete");

    sh_msg_t *msgs[SH_SIO_MAX_ATTACHMENTS + 1];
    int n = sh_sio_packet_encode(pkt.type, pkt.nsp, pkt.id, pkt.data, pkt.bins, pkt.nbins, msgs,
                                 SH_SIO_MAX_ATTACHMENTS + 1);
    check(n == (int)(1 + pkt.nbins), "encode");
    check(msgs[0]->len >= 2 && msgs[0]->data[0] == '4' && !msgs[0]->binary, "message prefix");

    sh_sio_packet_t again;
    if (sh_sio_packet_decode(msgs[0]->data + 1, msgs[0]->len - 1, &again, &err) != 0) {
        fprintf(stderr, "re-decode failed: %s\n", err);
        check(0, "re-decode");
    }
    check(again.type == pkt.type, "type");
    check(strcmp(again.nsp, pkt.nsp) == 0, "nsp");
    check(again.id == pkt.id, "id");
    check(again.attachments == pkt.attachments, "attachments");
    check(pkt.data ? again.data && json_equal(again.data, pkt.data) : again.data == NULL, "data");
    for (int i = 1; i < n; i++)
        check(msgs[i] == pkt.bins[i - 1], "attachment identity");

    sh_sio_packet_release(&again);
    for (int i = 0; i < n; i++)
        sh_msg_unref(msgs[i]);
    sh_sio_packet_release(&pkt);
    for (size_t i = 0; i < nbins; i++)
        sh_msg_unref(bins[i]);
    return 0;
}
