/* fuzz_sio_packet — Socket.IO packet decoder on arbitrary bytes. Whatever
 * decodes must encode and decode again to the same packet (type, namespace,
 * ack id, attachment count, payload): the encoder writes only what the
 * decoder reads back. */
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
    sh_sio_packet_t pkt;
    const char *err = NULL;
    if (sh_sio_packet_decode((const char *)data, size, &pkt, &err) != 0) {
        check(err != NULL, "rejection without a reason");
        return 0;
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
