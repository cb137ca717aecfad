#include "socketio/sse.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "socketio/packet.h"

/* "event: <name>\ndata: <json>\n\n" as a new message, or NULL when the
 * name cannot be framed or the JSON cannot be written. */
static sh_msg_t *event_msg(const char *name, size_t name_len, const json_t *data)
{
    for (size_t i = 0; i < name_len; i++)
        if (name[i] == '\r' || name[i] == '\n' || name[i] == '\0')
            return NULL;
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "event: ");
    sh_buf_append(&b, name, name_len);
    sh_buf_append_str(&b, "\ndata: ");
    if (sh_json_append(&b, data) < 0) {
        sh_buf_release(&b);
        return NULL;
    }
    sh_buf_append_str(&b, "\n\n");
    sh_msg_t *out = sh_msg_new(sh_buf_peek(&b), sh_buf_avail(&b), false);
    sh_buf_release(&b);
    return out;
}

static sh_msg_t *render_event(const json_t *data)
{
    const json_t *first = json_array_get(data, 0);
    char num[32];
    const char *name;
    size_t name_len;
    if (json_is_string(first)) {
        name = json_string_value(first);
        name_len = json_string_length(first);
    } else if (json_is_integer(first)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(first));
        name = num;
        name_len = strlen(num);
    } else {
        return NULL;
    }
    json_t *args = json_array();
    for (size_t i = 1; i < json_array_size(data); i++)
        json_array_append(args, json_array_get(data, i));
    sh_msg_t *out = event_msg(name, name_len, args);
    json_decref(args);
    return out;
}

sh_msg_t *sh_sio_sse_render(const sh_msg_t *m)
{
    /* Engine.IO MESSAGE packets only: "4" + a Socket.IO packet. */
    if (m->binary || m->len < 2 || m->data[0] != '4')
        return NULL;
    sh_sio_packet_t pkt;
    if (sh_sio_packet_decode(m->data + 1, m->len - 1, &pkt, NULL) < 0)
        return NULL;
    sh_msg_t *out = NULL;
    switch (pkt.type) {
    case SH_SIO_EVENT:
        out = render_event(pkt.data);
        break;
    case SH_SIO_CONNECT:
        if (pkt.data)
            out = event_msg("connect", 7, pkt.data);
        break;
    case SH_SIO_CONNECT_ERROR:
        out = event_msg("connect_error", 13, pkt.data);
        break;
    case SH_SIO_DISCONNECT: {
        json_t *why = json_pack("{s:s}", "reason", "io server disconnect");
        out = event_msg("disconnect", 10, why);
        json_decref(why);
        break;
    }
    default:
        break;
    }
    sh_sio_packet_release(&pkt);
    return out;
}
