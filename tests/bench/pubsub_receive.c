/* pubsub_receive — feeds one pub/sub message (a file, e.g. from
 * tests/bench/pubsub_messages.py) to a fleet adapter COUNT times, for
 * measuring what a node spends on a message of the fleet under callgrind:
 *
 *   valgrind --tool=callgrind --toggle-collect=sh_adapter_receive \
 *       tests/bench/pubsub_receive MSGFILE 1000
 *
 * counts the instructions of sh_adapter_receive alone; divide by COUNT.
 * The node is the adapter's local half with namespace "/" and no sockets
 * (no Redis: nothing is published or subscribed), so an emit to a room
 * measures a node on which the room has no member. With a third argument
 * "observe" the node watches broadcasts to the namespace (as the Open
 * WebUI app does for presence), so a broadcast (pubsub_messages.py's
 * all.*) is decoded: the decoding path, without sockets to send to.
 * Prints the adapter's counters at the end, so the run shows how the
 * messages were taken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/adapter.h"
#include "core/buf.h"
#include "hub/hub.h"
#include "loop/loop.h"
#include "socketio/server.h"

static int read_file(const char *path, sh_buf_t *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        sh_buf_append(out, chunk, got);
    int rc = ferror(fp) ? -1 : 0;
    fclose(fp);
    return rc;
}

static void observe(const char *nsp, const char *event, json_t *args, void *data)
{
    (*(size_t *)data)++;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || (argc == 4 && strcmp(argv[3], "observe"))) {
        fprintf(stderr, "usage: %s MSGFILE [COUNT [observe]]\n", argv[0]);
        return 2;
    }
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    sh_buf_t msg = SH_BUF_INIT;
    if (count <= 0 || read_file(argv[1], &msg) < 0) {
        fprintf(stderr, "%s: cannot read %s (or bad COUNT)\n", argv[0], argv[1]);
        return 2;
    }
    sh_loop_t *loop = sh_loop_new();
    sh_sio_options_t so = {.connect_timeout = 5000};
    sh_sio_server_t *sio = sh_sio_server_new(loop, &so);
    sh_hub_t *hub = sh_hub_new(sio);
    static const sh_sio_nsp_handler_t app = {0};
    sh_hub_add_nsp(hub, "/", &app, NULL);
    size_t observed = 0;
    sh_adapter_options_t ao = {.loop = loop, .sio = sio, .hub = hub, .channel = "socketio"};
    if (argc == 4) {
        ao.on_remote_broadcast = observe;
        ao.data = &observed;
    }
    sh_adapter_t *a = sh_adapter_new(&ao);
    for (long i = 0; i < count; i++)
        sh_adapter_receive(a, sh_buf_peek(&msg), sh_buf_avail(&msg));
    const sh_adapter_stats_t *st = sh_adapter_stats(a);
    printf("%ld messages of %zu bytes: received %llu, own %llu, not here %llu, dropped %llu, "
           "ignored %llu; decoded %llu, observed %zu\n",
           count, sh_buf_avail(&msg), (unsigned long long)st->received,
           (unsigned long long)st->skipped_own, (unsigned long long)st->skipped_not_here,
           (unsigned long long)st->dropped, (unsigned long long)st->ignored,
           (unsigned long long)st->decoded, observed);
    sh_adapter_free(a);
    sh_hub_free(hub);
    sh_sio_server_free(sio);
    sh_loop_run_deferred(loop);
    sh_loop_free(loop);
    sh_buf_release(&msg);
    return 0;
}
