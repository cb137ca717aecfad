/* api/api.h — a small JSON-over-HTTP API framework on http/server.h: a
 * table of routes with path patterns, bearer-key authentication, body
 * limits and JSON parsing, JSON answers, and requests held open while an
 * asynchronous operation (a store read, a client's ack) completes.
 *
 * Errors are JSON: {"error": "<reason>"} with the right status (400 bad
 * body, 401 no or wrong key, 404 no such route or object, 405 wrong
 * method, 413 body over the limit). The key is compared in constant time
 * and never logged.
 *
 * A held request (sh_api_hold) and its operation meet in a sh_api_pending_t
 * that lives until both are done with it: sh_api_complete() may come
 * before or after the client leaves, and exactly one answer is sent.
 *
 * Batches: a route marked batch also takes a JSON array of objects. Its
 * handler runs once per item, in order, within the one request; what each
 * run answers is collected instead of sent, and the request is answered
 * 200 with the array of those answers (an item's error is its {"error"}
 * object plus "status"). An item that is not an object gets a 400 entry and
 * the rest still run. A batch handler must answer before it returns: it may
 * not hold.
 *
 * Raw items: a route may also give a raw handler, which sees each item (the
 * body, or one object of a batch) as its JSON text before anything is
 * parsed, so that it can forward the bytes instead of building a tree. The
 * text is then an object, valid JSON without duplicate keys, "\u0000" or
 * numbers beyond int64 and double (core/json_span.h); a body that is not
 * all that goes the parsed way whole, so its errors are the parser's. The
 * handler gets the object's members as spans too, found while the body
 * was validated (sh_json_validate_batch): it need not walk the text again.
 */
#ifndef SH_API_API_H
#define SH_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/json_span.h"
#include "http/server.h"

typedef struct sh_api sh_api_t;
typedef struct sh_api_pending sh_api_pending_t;

/* The captured '*' segments of the route pattern, URL-decoded. */
typedef struct sh_api_call {
    sh_api_t *api;
    sh_http_req_t *req;
    json_t *body; /* parsed JSON body (borrowed), NULL for bodiless methods */
    const char *params[4];
    size_t nparams;
    /* The framework's own: while a batch item runs, where its answer goes. */
    struct sh_api_batch_item *batch_item;
    /* For a raw handler: a string of the body holds a \u escape
     * (sh_json_info_t's unicode_escapes; see sh_adapter_emit_text). */
    bool text_unicode_escapes;
} sh_api_call_t;

/* Must answer (sh_api_reply*) or hold (sh_api_hold) before returning. */
typedef void (*sh_api_handler_cb)(sh_api_call_t *call, void *data);

/* Answers (sh_api_reply*) and returns 0, or returns -EAGAIN having done
 * nothing, and the item is parsed and handed to the route's cb. */
typedef int (*sh_api_raw_cb)(sh_api_call_t *call, sh_json_span_t item,
                             const sh_json_member_t *members, size_t nmembers, void *data);

typedef struct sh_api_route {
    sh_http_method_t method;
    const char *pattern; /* below the prefix, '*' for one segment: "rooms/<*>/join" */
    bool needs_body;     /* a JSON object body is required */
    sh_api_handler_cb cb;
    bool batch;        /* the body may also be an array of objects (see above) */
    sh_api_raw_cb raw; /* optional: tries items as text first (see above) */
} sh_api_route_t;

typedef struct sh_api_stats {
    uint64_t by_status[6]; /* index status / 100 */
    uint64_t unauthorized;
} sh_api_stats_t;

/* Serves routes (an array of n, static storage) under prefix ("/api/v1/")
 * for callers presenting `key`; an empty key disables the API (every
 * request gets 404 "API disabled: no api_key configured"). */
sh_api_t *sh_api_new(sh_http_t *http, const char *prefix, const char *key, size_t body_limit,
                     const sh_api_route_t *routes, size_t n, void *data, sh_buf_t *err);
void sh_api_free(sh_api_t *api);
const sh_api_stats_t *sh_api_stats(const sh_api_t *api);

/* Answers with body (stolen; NULL sends {}). */
void sh_api_reply(sh_api_call_t *call, unsigned status, json_t *body);
/* Answers 200 {"<key>": n}, written as text without a tree: the answer
 * of every item of a busy batch route. key is plain ASCII (no escapes). */
void sh_api_reply_count(sh_api_call_t *call, const char *key, uint64_t n);
/* Answers {"error": message}. */
void sh_api_reply_error(sh_api_call_t *call, unsigned status, const char *message);

/* Holds the request open; answer later with sh_api_complete. Not in a
 * batch. */
sh_api_pending_t *sh_api_hold(sh_api_call_t *call);
/* Delivers the held request's answer (body stolen). Safe after the client
 * left (the answer is dropped). Frees p: do not use it again. */
void sh_api_complete(sh_api_pending_t *p, unsigned status, json_t *body);
/* False once the client has gone (the operation may stop early). */
bool sh_api_pending_alive(const sh_api_pending_t *p);

#endif
