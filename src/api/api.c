#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/log.h"
#include "socketio/packet.h"

#define MAX_SEGMENTS 16
/* A raw batch of up to this many items is walked by the spans the
 * validator found; a longer one by a cursor. */
#define RAW_BATCH_SPANS 32
/* Members found while validating, for all the items of a raw batch; a
 * batch with more has each item's members listed by a cursor, up to
 * RAW_ITEM_MEMBERS (an item with more goes the parsed way). */
#define RAW_BATCH_MEMBERS 256
#define RAW_ITEM_MEMBERS  64

struct sh_api {
    sh_http_t *http;
    char *prefix;
    char *key;
    size_t key_len;
    const sh_api_route_t *routes;
    size_t nroutes;
    void *data;
    sh_api_stats_t stats;
    /* Refusals, logged at info level at most once a while per kind
     * (core/log.h): a backend with the wrong key or a malformed body is
     * then visible at the default level without a client flooding it. */
    sh_log_limit_t unauthorized_log, not_found_log, bad_request_log;
};

/* Shared by a held request and its operation; freed when both let go. */
struct sh_api_pending {
    sh_api_t *api;
    sh_http_req_t *req; /* NULL once the request ended */
    bool completed;
    unsigned status;
    json_t *body;
};

/* Where a batch item's answer goes: appended, as text, to the array of the
 * batch's answers. */
struct sh_api_batch_item {
    sh_buf_t *out;
    size_t start; /* where the answer begins in out: a second one replaces it */
    bool answered;
};

/* ---- answers ---- */

/* Sends text (a JSON value and its newline). */
static void send_text(sh_api_t *api, sh_http_req_t *req, unsigned status, const sh_buf_t *text)
{
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, status, "application/json", sh_buf_peek(text), sh_buf_avail(text));
    if (status / 100 < 6)
        api->stats.by_status[status / 100]++;
}

static void send_json(sh_api_t *api, sh_http_req_t *req, unsigned status, json_t *body)
{
    sh_buf_t b = SH_BUF_INIT;
    if (!body)
        body = json_object();
    sh_json_append(&b, body);
    sh_buf_append_byte(&b, '\n');
    json_decref(body);
    send_text(api, req, status, &b);
    sh_buf_release(&b);
}

static void log_refusal(sh_api_t *api, sh_http_req_t *req, unsigned status, const char *message)
{
    if (status < 400 || status > 499)
        return;
    sh_log_limit_t *lim = status == 401                    ? &api->unauthorized_log
                          : status == 404 || status == 405 ? &api->not_found_log
                                                           : &api->bad_request_log;
    sh_log_limited(lim, SH_LOG_INFO, "api: refused %s %s from %s: %u %s",
                   sh_http_req_method_name(req), sh_http_req_path(req), sh_http_req_peer(req),
                   status, message);
}

static void send_error(sh_api_t *api, sh_http_req_t *req, unsigned status, const char *message)
{
    log_refusal(api, req, status, message);
    send_json(api, req, status, json_pack("{s:s}", "error", message));
}

/* Where the batch item's answer is to be written, over an earlier one. */
static sh_buf_t *batch_answer_out(struct sh_api_batch_item *item)
{
    sh_buf_truncate(item->out, item->start);
    item->answered = true;
    return item->out;
}

/* A batch item's answer: kept for the batch's array; an error says its
 * status. */
static void batch_keep(sh_api_call_t *call, unsigned status, json_t *body)
{
    if (!body)
        body = json_object();
    if ((status < 200 || status > 299) && json_is_object(body))
        json_object_set_new(body, "status", json_integer(status));
    sh_json_append(batch_answer_out(call->batch_item), body);
    json_decref(body);
}

void sh_api_reply(sh_api_call_t *call, unsigned status, json_t *body)
{
    if (call->batch_item)
        batch_keep(call, status, body);
    else
        send_json(call->api, call->req, status, body);
}

/* {"<key>":n}, as jansson's compact dump writes it. */
static void append_count(sh_buf_t *out, const char *key, uint64_t n)
{
    char digits[20];
    size_t nd = 0;
    do {
        digits[sizeof(digits) - ++nd] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    sh_buf_append(out, "{\"", 2);
    sh_buf_append_str(out, key);
    sh_buf_append(out, "\":", 2);
    sh_buf_append(out, digits + sizeof(digits) - nd, nd);
    sh_buf_append_byte(out, '}');
}

void sh_api_reply_count(sh_api_call_t *call, const char *key, uint64_t n)
{
    if (call->batch_item) {
        append_count(batch_answer_out(call->batch_item), key, n);
        return;
    }
    sh_buf_t b = SH_BUF_INIT;
    append_count(&b, key, n);
    sh_buf_append_byte(&b, '\n');
    send_text(call->api, call->req, 200, &b);
    sh_buf_release(&b);
}

void sh_api_reply_error(sh_api_call_t *call, unsigned status, const char *message)
{
    log_refusal(call->api, call->req, status, message);
    sh_api_reply(call, status, json_pack("{s:s}", "error", message));
}

/* ---- held requests ---- */

static void on_pending_req_done(sh_http_req_t *req, void *owner)
{
    sh_api_pending_t *p = owner;
    p->req = NULL;
    if (p->completed) {
        json_decref(p->body);
        free(p);
    }
}

sh_api_pending_t *sh_api_hold(sh_api_call_t *call)
{
    sh_api_pending_t *p = sh_new0(sh_api_pending_t);
    p->api = call->api;
    p->req = call->req;
    sh_http_req_set_owner(call->req, p, on_pending_req_done);
    sh_http_req_suspend(call->req);
    return p;
}

void sh_api_complete(sh_api_pending_t *p, unsigned status, json_t *body)
{
    if (!p->req) {
        /* The client left: nobody to answer. */
        json_decref(body);
        free(p);
        return;
    }
    p->completed = true;
    p->status = status;
    p->body = body;
    sh_http_req_resume(p->req);
}

bool sh_api_pending_alive(const sh_api_pending_t *p)
{
    return p->req != NULL;
}

/* ---- routing ---- */

/* Splits path (after the prefix) on '/'; returns the count, or -1 when
 * there are too many segments. Segments point into buf. */
static int split_path(char *buf, char **seg)
{
    int n = 0;
    char *p = buf;
    while (*p) {
        if (n == MAX_SEGMENTS)
            return -1;
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

/* Whether the path's segments fit the pattern, read in place (no copy to
 * split: it runs for every route of every request). */
static bool match(const char *pattern, char **seg, int nseg, sh_api_call_t *call)
{
    const char *p = pattern;
    size_t nparams = 0;
    for (int i = 0; i < nseg; i++) {
        if (i > 0 && *p++ != '/')
            return false;
        size_t n = strcspn(p, "/");
        if (n == 1 && *p == '*') {
            if (!seg[i][0] || nparams == sizeof(call->params) / sizeof(call->params[0]))
                return false;
            call->params[nparams++] = seg[i];
        } else if (strlen(seg[i]) != n || memcmp(seg[i], p, n) != 0) {
            return false;
        }
        p += n;
    }
    if (*p)
        return false;
    call->nparams = nparams;
    return true;
}

static bool authorized(const sh_api_t *api, sh_http_req_t *req)
{
    const char *h = sh_http_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    const char *k = h + 7;
    while (*k == ' ')
        k++;
    size_t n = strlen(k);
    while (n > 0 && (k[n - 1] == ' ' || k[n - 1] == '\t'))
        n--;
    /* Constant time in the key's content (lengths are not secret enough to
     * matter: an attacker learns only the key's length). */
    return n == api->key_len && CRYPTO_memcmp(k, api->key, n) == 0;
}

/* A batch's answers: "[", then each item's answer after a comma but the
 * first, then "]". */
static void batch_item_start(struct sh_api_batch_item *item, sh_buf_t *out)
{
    sh_buf_append_byte(out, sh_buf_avail(out) ? ',' : '[');
    *item = (struct sh_api_batch_item){.out = out, .start = sh_buf_avail(out)};
}

static void send_batch(sh_api_t *api, sh_http_req_t *req, sh_buf_t *out)
{
    sh_buf_append(out, sh_buf_avail(out) ? "]\n" : "[]\n", sh_buf_avail(out) ? 2 : 3);
    send_text(api, req, 200, out);
    sh_buf_release(out);
}

/* A handler that did not answer: a bug, said so. */
static void check_answered(sh_api_call_t *one)
{
    if (!one->batch_item->answered)
        sh_api_reply_error(one, 500, "no answer for this item");
}

/* Runs a batch item through the handler; its answer goes to item. */
static void run_item(sh_api_t *api, const sh_api_route_t *route, const sh_api_call_t *call,
                     json_t *body, struct sh_api_batch_item *item)
{
    sh_api_call_t one = *call;
    one.body = body;
    one.batch_item = item;
    if (json_is_object(body))
        route->cb(&one, api->data);
    else
        sh_api_reply_error(&one, 400, "each item of the array must be an object");
    check_answered(&one);
}

/* Runs a batch route's handler for each item of the array body, in
 * order, and answers the array of their answers. */
static void run_batch(sh_api_t *api, const sh_api_route_t *route, const sh_api_call_t *call,
                      json_t *items)
{
    sh_buf_t out = SH_BUF_INIT;
    size_t i;
    json_t *body;
    json_array_foreach (items, i, body) {
        struct sh_api_batch_item item;
        batch_item_start(&item, &out);
        run_item(api, route, call, body, &item);
    }
    send_batch(api, call->req, &out);
}

/* The members of the object text (validated) by a cursor; false when it
 * is not an object or has more than max. */
static bool list_members(sh_json_span_t text, sh_json_member_t *members, size_t max, size_t *n)
{
    sh_json_cursor_t c;
    sh_json_span_t key, value;
    *n = 0;
    if (!sh_json_object_begin(&c, text))
        return false;
    while (sh_json_object_next(&c, &key, &value)) {
        if (*n == max)
            return false;
        members[(*n)++] = (sh_json_member_t){key, value};
    }
    return true;
}

/* One item of a raw batch: the raw handler, else parsed for cb. members
 * NULL: not known yet (list them). */
static void run_raw_item(sh_api_t *api, const sh_api_route_t *route, const sh_api_call_t *call,
                         sh_json_span_t text, const sh_json_member_t *members, size_t nmembers,
                         struct sh_api_batch_item *item)
{
    sh_api_call_t one = *call;
    one.batch_item = item;
    sh_json_member_t listed[RAW_ITEM_MEMBERS];
    bool object = text.len && text.p[0] == '{';
    if (object && !members) {
        object = list_members(text, listed, RAW_ITEM_MEMBERS, &nmembers);
        members = listed;
    }
    if (object && route->raw(&one, text, members, nmembers, api->data) == 0) {
        check_answered(&one);
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb(text.p, text.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (body)
        run_item(api, route, call, body, item);
    else /* cannot be: the whole body was valid JSON */
        sh_api_reply_error(&one, 500, "item does not parse again");
    json_decref(body);
}

/* Serves the body through the route's raw handler when the body allows;
 * false when it went no way (then nothing was done). */
static bool try_raw(sh_api_t *api, const sh_api_route_t *route, const sh_api_call_t *body_call,
                    const char *text, size_t len)
{
    sh_json_info_t info;
    sh_json_span_t items[RAW_BATCH_SPANS];
    sh_json_member_t members[RAW_BATCH_MEMBERS];
    size_t nitems, nmembers;
    if (sh_json_validate_batch(text, len, &info, items, RAW_BATCH_SPANS, &nitems, members,
                               RAW_BATCH_MEMBERS, &nmembers) < 0 ||
        !sh_json_info_plain(&info))
        return false;
    sh_api_call_t raw_call = *body_call;
    raw_call.text_unicode_escapes = info.unicode_escapes;
    const sh_api_call_t *call = &raw_call;
    sh_json_span_t body = {text, len}, item;
    sh_json_cursor_t c;
    if (sh_json_object_begin(&c, body)) {
        sh_api_call_t one = *call;
        return nmembers <= RAW_BATCH_MEMBERS &&
               route->raw(&one, body, members, nmembers, api->data) == 0;
    }
    if (!route->batch || !sh_json_array_begin(&c, body))
        return false;
    /* Items and their members as the validation found them, or, past
     * either table, by a cursor. */
    bool by_spans = nitems <= RAW_BATCH_SPANS && nmembers <= RAW_BATCH_MEMBERS;
    sh_buf_t out = SH_BUF_INIT;
    /* Room for the usual answers ({"recipients":N}, ~18 bytes each) up
     * front: one allocation rather than a chain of reallocs. */
    sh_buf_reserve(&out, nitems * 20 + 2);
    size_t m = 0;
    for (size_t i = 0; by_spans ? i < nitems : sh_json_array_next(&c, &item); i++) {
        struct sh_api_batch_item answer;
        batch_item_start(&answer, &out);
        if (!by_spans) {
            run_raw_item(api, route, call, item, NULL, 0, &answer);
            continue;
        }
        const char *end = items[i].p + items[i].len;
        size_t first = m;
        while (m < nmembers && members[m].key.p < end)
            m++;
        run_raw_item(api, route, call, items[i], members + first, m - first, &answer);
    }
    send_batch(api, call->req, &out);
    return true;
}

static void on_request(sh_http_req_t *req, void *data)
{
    sh_api_t *api = data;
    sh_api_pending_t *p = sh_http_req_owner(req);
    if (p) {
        /* A held request resumed with its answer. */
        sh_http_req_set_owner(req, NULL, NULL);
        json_t *body = p->body;
        p->body = NULL;
        send_json(api, req, p->status, body);
        free(p);
        return;
    }
    if (!api->key_len) {
        send_error(api, req, 404, "API disabled: no api_key configured");
        return;
    }
    if (!authorized(api, req)) {
        api->stats.unauthorized++;
        sh_http_req_add_header(req, "WWW-Authenticate", "Bearer");
        send_error(api, req, 401, "missing or wrong API key (Authorization: Bearer <api_key>)");
        return;
    }
    const char *path = sh_http_req_path(req) + strlen(api->prefix);
    char buf[1024];
    if (strlen(path) >= sizeof(buf)) {
        send_error(api, req, 404, "no such endpoint");
        return;
    }
    snprintf(buf, sizeof(buf), "%s", path);
    size_t blen = strlen(buf);
    if (blen > 0 && buf[blen - 1] == '/')
        buf[blen - 1] = '\0';
    char *seg[MAX_SEGMENTS];
    int nseg = split_path(buf, seg);
    sh_api_call_t call = {.api = api, .req = req};
    const sh_api_route_t *route = NULL;
    bool path_known = false;
    for (size_t i = 0; nseg >= 0 && i < api->nroutes; i++) {
        if (!match(api->routes[i].pattern, seg, nseg, &call))
            continue;
        path_known = true;
        if (api->routes[i].method == sh_http_req_method(req)) {
            route = &api->routes[i];
            break;
        }
    }
    if (!route) {
        send_error(api, req, path_known ? 405 : 404,
                   path_known ? "method not allowed" : "no such endpoint");
        return;
    }
    if (sh_http_req_body_too_large(req)) {
        send_error(api, req, 413, "request body too large");
        return;
    }
    json_t *body = NULL;
    if (route->needs_body) {
        size_t len;
        const char *text = sh_http_req_body(req, &len);
        if (route->raw && try_raw(api, route, &call, text, len))
            return;
        json_error_t jerr;
        body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!body || !(json_is_object(body) || (route->batch && json_is_array(body)))) {
            char msg[300];
            if (!body)
                snprintf(msg, sizeof(msg), "invalid JSON body: %s (line %d, column %d)", jerr.text,
                         jerr.line, jerr.column);
            else
                snprintf(msg, sizeof(msg), "the JSON body must be an object%s",
                         route->batch ? " or an array of objects" : "");
            json_decref(body);
            send_error(api, req, 400, msg);
            return;
        }
    }
    call.body = body;
    if (json_is_array(body))
        run_batch(api, route, &call, body);
    else
        route->cb(&call, api->data);
    json_decref(body);
}

sh_api_t *sh_api_new(sh_http_t *http, const char *prefix, const char *key, size_t body_limit,
                     const sh_api_route_t *routes, size_t n, void *data, sh_buf_t *err)
{
    sh_api_t *api = sh_new0(sh_api_t);
    api->http = http;
    api->prefix = sh_strdup(prefix);
    api->key = sh_strdup(key ? key : "");
    api->key_len = strlen(api->key);
    api->routes = routes;
    api->nroutes = n;
    api->data = data;
    if (sh_http_route(http, prefix, false, body_limit, on_request, api) < 0) {
        sh_buf_appendf(err, "cannot add the API route %s", prefix);
        sh_api_free(api);
        return NULL;
    }
    return api;
}

void sh_api_free(sh_api_t *api)
{
    if (!api)
        return;
    OPENSSL_cleanse(api->key, api->key_len);
    free(api->key);
    free(api->prefix);
    free(api);
}

const sh_api_stats_t *sh_api_stats(const sh_api_t *api)
{
    return &api->stats;
}
