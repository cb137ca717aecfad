/* socketio/sse.h — Socket.IO packets as Server-Sent Events.
 *
 * The renderer the SSE transport applies to each Engine.IO message queued
 * for an SSE session (see transport/sse.h). It runs through sh_msg_form(),
 * so a broadcast to N SSE clients is rendered once; each client then adds
 * only its own "id:" line.
 *
 *   EVENT   42["name",a,b]  ->  event: name\ndata: [a,b]\n\n
 *           (any namespace; an ack id, if any, is not carried)
 *   CONNECT 40{"sid":"S"}   ->  event: connect\ndata: {"sid":"S"}\n\n
 *   CONNECT_ERROR 44{...}   ->  event: connect_error\ndata: {...}\n\n
 *   DISCONNECT 41           ->  event: disconnect\ndata: {"reason":"io server disconnect"}\n\n
 *
 * No form (nothing is sent) for: Engine.IO packets other than MESSAGE
 * (ping, pong, noop, close: SSE has its own keep-alive), ACKs (an SSE
 * client's acks come back in its POST answers), binary events and their
 * attachments (EventSource carries text only), packets that do not decode,
 * and events whose name holds CR, LF or NUL (it would break the framing).
 * The data line is compact JSON, which never holds a raw line break.
 *
 * The event names "connect", "connect_error" and "disconnect" are chosen
 * over "open" and "error", which EventSource fires itself.
 */
#ifndef SH_SOCKETIO_SSE_H
#define SH_SOCKETIO_SSE_H

#include "core/msg.h"

/* A sh_msg_render_cb: the SSE event for one Engine.IO message, or NULL. */
sh_msg_t *sh_sio_sse_render(const sh_msg_t *m);

#endif
