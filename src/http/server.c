#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"

#define MAX_ROUTES 16

typedef struct route {
    char *path;
    size_t path_len;
    bool exact;
    size_t body_limit;
    sh_http_handler_cb cb;
    void *data;
} route_t;

typedef struct header {
    char *name;
    char *value;
} header_t;

/* Bounds of the spare body buffers (see sh_http_t): 8 x 256 KiB. */
#define SPARE_BODIES   8
#define SPARE_BODY_MAX (256u << 10)

struct sh_http {
    sh_loop_t *loop;
    struct MHD_Daemon *mhd;
    sh_io_t io;         /* MHD's epoll fd */
    sh_timer_t timer;   /* MHD's own timeouts */
    sh_defer_t run_now; /* "needs a run" after resume / upgrade close */
    bool closing;
    uint16_t port;
    route_t routes[MAX_ROUTES];
    size_t nroutes;
    sh_list_t requests; /* every live request */
    /* Request body buffers kept from finished requests for the next ones:
     * a backend posting batches on keep-alive connections would otherwise
     * cost a large malloc per request (and glibc consolidates its fast
     * bins before each one: 6.6% of siohubd's time in the chat bench).
     * At most SPARE_BODIES, each of at most SPARE_BODY_MAX bytes. */
    sh_buf_t spare_bodies[SPARE_BODIES];
    size_t nspare_bodies;
    sh_http_stats_t stats;
    /* libmicrohttpd's last message, the reason when its next one says it
     * refused a request; refusals logged at info level at most once a
     * while (core/log.h) per kind: 400, 413, 431, any other. */
    char mhd_last[200];
    sh_log_limit_t refused_log[4];
};

struct sh_http_req {
    sh_list_t link;
    sh_http_t *http;
    struct MHD_Connection *conn;
    const char *url;    /* MHD's, valid for the request */
    const char *method; /* MHD's */
    sh_http_method_t method_id;
    const route_t *route;
    sh_buf_t body;
    bool too_large;
    bool ready; /* headers and body complete: handler may run */
    bool suspended;
    bool resumed;
    bool resume_requested; /* resumed during the current handler call */
    bool in_handler;
    bool responded;
    bool ended; /* the done callback ran: a stream's reader is not called */
    header_t *headers;
    size_t nheaders;
    void *owner;
    sh_http_done_cb done;
    sh_http_upgrade_cb upgrade_cb;
    void *upgrade_data;
    sh_http_read_cb stream_read;
    void *stream_data;
    char peer[INET6_ADDRSTRLEN + 8];
};

static void schedule_run(sh_http_t *http);

/* ---- the loop side ---- */

static void run_mhd(sh_http_t *http)
{
    if (http->mhd)
        MHD_run(http->mhd);
}

static void on_mhd_io(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    run_mhd(io->data);
}

static void on_mhd_timer(sh_loop_t *loop, sh_timer_t *t)
{
    run_mhd(t->data);
}

static void on_run_now(sh_loop_t *loop, sh_defer_t *d)
{
    run_mhd(d->data);
}

static void schedule_run(sh_http_t *http)
{
    sh_defer_schedule(http->loop, &http->run_now, on_run_now, http);
}

static int on_prepare(sh_loop_t *loop, void *data)
{
    sh_http_t *http = data;
    MHD_UNSIGNED_LONG_LONG to;
    if (http->mhd && MHD_get_timeout(http->mhd, &to) == MHD_YES) {
        uint64_t ms = to > 3600000 ? 3600000 : (uint64_t)to;
        sh_timer_start(loop, &http->timer, ms, on_mhd_timer, http);
        return (int)ms;
    }
    sh_timer_stop(loop, &http->timer);
    return -1;
}

/* ---- requests ---- */

static sh_http_method_t method_id(const char *m)
{
    static const struct {
        const char *name;
        sh_http_method_t id;
    } table[] = {
        {"GET", SH_HTTP_GET},       {"POST", SH_HTTP_POST},       {"PUT", SH_HTTP_PUT},
        {"DELETE", SH_HTTP_DELETE}, {"OPTIONS", SH_HTTP_OPTIONS}, {"HEAD", SH_HTTP_HEAD},
        {"PATCH", SH_HTTP_PATCH},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (!strcmp(m, table[i].name))
            return table[i].id;
    return SH_HTTP_OTHER;
}

static const route_t *match_route(const sh_http_t *http, const char *url)
{
    const route_t *best = NULL;
    size_t url_len = strlen(url);
    for (size_t i = 0; i < http->nroutes; i++) {
        const route_t *r = &http->routes[i];
        bool hit;
        if (r->exact)
            hit = url_len == r->path_len && !memcmp(url, r->path, url_len);
        else
            hit = url_len >= r->path_len && !memcmp(url, r->path, r->path_len);
        /* "/socket.io" without the slash reaches the "/socket.io/" route, as
         * Node's engine.io accepts both. */
        if (!hit && !r->exact && r->path_len > 1 && r->path[r->path_len - 1] == '/' &&
            url_len == r->path_len - 1 && !memcmp(url, r->path, url_len))
            hit = true;
        if (hit && (!best || r->path_len > best->path_len))
            best = r;
    }
    return best;
}

/* A finished request's body buffer becomes a spare when there is room. */
static void body_done(sh_http_t *http, sh_buf_t *body)
{
    if (body->cap && body->cap <= SPARE_BODY_MAX && http->nspare_bodies < SPARE_BODIES) {
        sh_buf_reset(body);
        http->spare_bodies[http->nspare_bodies++] = *body;
        *body = (sh_buf_t)SH_BUF_INIT;
        return;
    }
    sh_buf_release(body);
}

static void req_free(sh_http_req_t *req)
{
    sh_list_remove(&req->link);
    body_done(req->http, &req->body);
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    free(req);
}

static void req_end(sh_http_req_t *req)
{
    req->ended = true;
    sh_http_done_cb done = req->done;
    req->done = NULL;
    if (done)
        done(req, req->owner);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    sh_http_req_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    req_end(req);
    req_free(req);
}

static int queue(sh_http_req_t *req, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return -EIO;
    for (size_t i = 0; i < req->nheaders; i++)
        MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
    enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    if (r != MHD_YES)
        return -EIO;
    req->responded = true;
    if (status / 100 < 6)
        req->http->stats.responses_by_class[status / 100]++;
    return 0;
}

static void dispatch(sh_http_req_t *req)
{
    sh_http_t *http = req->http;
    if (http->closing) {
        sh_http_respond(req, 503, "text/plain", "shutting down\n", 14);
        return;
    }
    if (!req->route) {
        sh_http_respond_error_json(req, 404, 404, "Not found");
        return;
    }
    req->in_handler = true;
    req->resume_requested = false;
    req->route->cb(req, req->route->data);
    req->in_handler = false;
    /* A handler may hold its request and have the answer ready before it
     * returns (an operation that completed at once): the resume stands and
     * MHD calls the handler again. */
    if (!req->resume_requested)
        req->resumed = false;
    if (!req->responded && !req->suspended && !req->upgrade_cb && !req->resume_requested) {
        sh_error("http: %s %s: handler gave no response", req->method, req->url);
        sh_http_respond(req, 500, "text/plain", "internal error\n", 15);
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    sh_http_t *http = cls;
    sh_http_req_t *req = *con_cls;
    if (!req) {
        /* First call: headers only. Answering now would make MHD close the
         * connection after the response, so wait for the next call. */
        req = sh_new0(sh_http_req_t);
        req->http = http;
        req->conn = conn;
        req->url = url;
        req->method = method;
        req->method_id = method_id(method);
        req->route = match_route(http, url);
        sh_list_insert_tail(&http->requests, &req->link);
        http->stats.requests++;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t limit = req->route ? req->route->body_limit : 0;
        if (!req->too_large && req->body.len + *upload_data_size <= limit) {
            if (!req->body.cap && http->nspare_bodies)
                req->body = http->spare_bodies[--http->nspare_bodies];
            sh_buf_append(&req->body, upload_data, *upload_data_size);
        } else
            req->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->responded)
        return MHD_YES;
    req->ready = true;
    dispatch(req);
    return MHD_YES;
}

/* libmicrohttpd's messages are its own diagnostics (a peer that reset,
 * a read that failed), so debug level; except that a request it refuses
 * itself (a request line or headers past the connection's memory, a
 * malformed request) is bad input that siohubd never sees, so that one is
 * logged at info level with the reason, the message before it. */
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    sh_http_t *http = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    sh_debug("http: libmicrohttpd: %s", line);
    static const char refused[] = "Error processing request (HTTP response code is ";
    unsigned status;
    if (!strncmp(line, refused, sizeof(refused) - 1) &&
        sscanf(line + sizeof(refused) - 1, "%u", &status) == 1) {
        unsigned kind = status == 400 ? 0 : status == 413 ? 1 : status == 431 ? 2 : 3;
        const char *why = http->mhd_last[0] ? http->mhd_last
                          : status == 431   ? "request line or headers past the connection's memory"
                          : status == 413   ? "request too large"
                          : status == 400   ? "malformed request"
                                            : "no reason given";
        sh_log_limited(&http->refused_log[kind], SH_LOG_INFO,
                       "http: refused a request with HTTP %u (libmicrohttpd: %s)", status, why);
        http->mhd_last[0] = '\0';
        return;
    }
    snprintf(http->mhd_last, sizeof(http->mhd_last), "%s", line);
}

/* ---- public API ---- */

sh_http_t *sh_http_new(sh_loop_t *loop, const sh_http_options_t *opts, sh_buf_t *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags =
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opts->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(opts->port);
    } else if (inet_pton(AF_INET6, opts->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(opts->port);
        flags |= MHD_USE_IPv6;
    } else {
        sh_buf_appendf(err, "listen address '%s' is not a numeric IPv4 or IPv6 address",
                       opts->host);
        return NULL;
    }
    sh_http_t *http = sh_new0(sh_http_t);
    http->loop = loop;
    sh_list_init(&http->requests);
    unsigned timeout_s = opts->idle_timeout_ms ? (opts->idle_timeout_ms + 999) / 1000 : 0;
    http->mhd = MHD_start_daemon(flags, opts->port, NULL, NULL, on_access, http,
                                 MHD_OPTION_EXTERNAL_LOGGER, log_mhd, http, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                 http, MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)opts->header_memory,
                                 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!http->mhd) {
        sh_buf_appendf(err, "cannot listen on %s:%u (address in use, or not permitted)", opts->host,
                       (unsigned)opts->port);
        free(http);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    int epfd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : opts->port;
    /* New requests after frames already waiting on WebSockets (loop.h). */
    http->io.late = true;
    if (epfd < 0 || sh_io_start(loop, &http->io, epfd, SH_IO_READ, on_mhd_io, http) < 0 ||
        sh_loop_add_prepare(loop, on_prepare, http) < 0) {
        sh_buf_appendf(err, "cannot attach libmicrohttpd to the event loop");
        sh_io_stop(loop, &http->io);
        MHD_stop_daemon(http->mhd);
        free(http);
        return NULL;
    }
    return http;
}

void sh_http_free(sh_http_t *http)
{
    if (!http)
        return;
    http->closing = true;
    /* MHD_stop_daemon() aborts on a suspended connection: resume them all
     * (their handlers are not called again while closing: they get 503)
     * after telling each owner its request is over. */
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &http->requests) {
        sh_http_req_t *req = sh_container_of(pos, sh_http_req_t, link);
        req_end(req);
        if (req->suspended) {
            req->suspended = false;
            MHD_resume_connection(req->conn);
        }
    }
    for (int i = 0; i < 3; i++)
        MHD_run(http->mhd);
    sh_loop_remove_prepare(http->loop, on_prepare, http);
    sh_defer_cancel(http->loop, &http->run_now);
    sh_timer_stop(http->loop, &http->timer);
    sh_io_stop(http->loop, &http->io);
    MHD_stop_daemon(http->mhd);
    http->mhd = NULL;
    for (size_t i = 0; i < http->nroutes; i++)
        free(http->routes[i].path);
    for (size_t i = 0; i < http->nspare_bodies; i++)
        sh_buf_release(&http->spare_bodies[i]);
    free(http);
}

uint16_t sh_http_port(const sh_http_t *http)
{
    return http->port;
}

const sh_http_stats_t *sh_http_stats(const sh_http_t *http)
{
    return &http->stats;
}

unsigned sh_http_connections(const sh_http_t *http)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

int sh_http_route(sh_http_t *http, const char *path, bool exact, size_t body_limit,
                  sh_http_handler_cb cb, void *data)
{
    if (http->nroutes == MAX_ROUTES)
        return -ENOSPC;
    route_t *r = &http->routes[http->nroutes++];
    r->path = sh_strdup(path);
    r->path_len = strlen(path);
    r->exact = exact;
    r->body_limit = body_limit;
    r->cb = cb;
    r->data = data;
    return 0;
}

sh_http_method_t sh_http_req_method(const sh_http_req_t *req)
{
    return req->method_id;
}

const char *sh_http_req_method_name(const sh_http_req_t *req)
{
    return req->method;
}

const char *sh_http_req_path(const sh_http_req_t *req)
{
    return req->url;
}

const char *sh_http_req_query(const sh_http_req_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *sh_http_req_header(const sh_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sh_http_req_cookie(const sh_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *sh_http_req_body(const sh_http_req_t *req, size_t *len)
{
    if (len)
        *len = sh_buf_avail(&req->body);
    return sh_buf_peek(&req->body);
}

bool sh_http_req_body_too_large(const sh_http_req_t *req)
{
    return req->too_large;
}

bool sh_http_req_resumed(const sh_http_req_t *req)
{
    return req->resumed;
}

const char *sh_http_req_peer(sh_http_req_t *req)
{
    if (req->peer[0])
        return req->peer;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr) {
        snprintf(req->peer, sizeof(req->peer), "?");
        return req->peer;
    }
    const struct sockaddr *sa = info->client_addr;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(req->peer, sizeof(req->peer), "%s:%u", host, port);
    return req->peer;
}

void sh_http_req_set_owner(sh_http_req_t *req, void *owner, sh_http_done_cb done)
{
    req->owner = owner;
    req->done = done;
}

void *sh_http_req_owner(const sh_http_req_t *req)
{
    return req->owner;
}

void sh_http_req_add_header(sh_http_req_t *req, const char *name, const char *value)
{
    req->headers = sh_realloc(req->headers, (req->nheaders + 1) * sizeof(*req->headers));
    req->headers[req->nheaders].name = sh_strdup(name);
    req->headers[req->nheaders].value = sh_strdup(value);
    req->nheaders++;
}

int sh_http_respond(sh_http_req_t *req, unsigned status, const char *content_type, const void *body,
                    size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp && content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return queue(req, status, resp);
}

int sh_http_respond_error_json(sh_http_req_t *req, unsigned status, int code, const char *message)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "{\"code\":%d,\"message\":\"", code);
    for (const char *p = message; *p; p++) {
        if (*p == '"' || *p == '\\')
            sh_buf_append_byte(&b, '\\');
        sh_buf_append_byte(&b, *p);
    }
    sh_buf_append_str(&b, "\"}");
    int rc = sh_http_respond(req, status, "application/json", sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    return rc;
}

typedef struct msgs_body {
    sh_msg_t **msgs;
    size_t n;
} msgs_body_t;

static void free_msgs_body(void *cls)
{
    msgs_body_t *mb = cls;
    for (size_t i = 0; i < mb->n; i++)
        sh_msg_unref(mb->msgs[i]);
    free(mb->msgs);
    free(mb);
}

int sh_http_respond_msgs(sh_http_req_t *req, unsigned status, const char *content_type,
                         sh_msg_t **msgs, size_t n, const char *sep)
{
    /* The iovec points into the messages themselves (and at the caller's
     * static separator string); MHD copies the array, not the bytes, and calls
     * free_msgs_body when the response is gone. */
    msgs_body_t *mb = sh_new0(msgs_body_t);
    mb->msgs = sh_memdup(msgs, n * sizeof(*msgs));
    mb->n = n;
    struct MHD_IoVec *iov = sh_calloc(2 * n + 1, sizeof(*iov));
    size_t seplen = sep ? strlen(sep) : 0;
    unsigned cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && seplen) {
            iov[cnt].iov_base = sep;
            iov[cnt].iov_len = seplen;
            cnt++;
        }
        sh_msg_t *wire = sh_msg_base64(msgs[i]);
        iov[cnt].iov_base = wire->data;
        iov[cnt].iov_len = wire->len;
        cnt++;
    }
    struct MHD_Response *resp = MHD_create_response_from_iovec(iov, cnt, free_msgs_body, mb);
    free(iov);
    if (!resp) {
        free_msgs_body(mb);
        return -EIO;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return queue(req, status, resp);
}

/* MHD's content reader for sh_http_respond_stream. A reader with nothing
 * to say suspends its connection right here: MHD allows that from a
 * content reader, and it is the only way to return "no data" without
 * MHD calling again at once. Once the request has ended (the owner was
 * told) or the server is closing, the stream ends instead. */
static ssize_t on_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sh_http_req_t *req = cls;
    if (req->ended || req->http->closing || !req->stream_read)
        return MHD_CONTENT_READER_END_OF_STREAM;
    long n = req->stream_read(buf, max, req->stream_data);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == 0) {
        req->suspended = true;
        req->resumed = false;
        MHD_suspend_connection(req->conn);
    }
    return (ssize_t)n;
}

int sh_http_respond_stream(sh_http_req_t *req, unsigned status, const char *content_type,
                           sh_http_read_cb read, void *data)
{
    /* MHD asks for at most block_size bytes per call; 4 KiB keeps one SSE
     * event per call for most events without a large connection buffer. */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, on_stream_read, req, NULL);
    if (resp && content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    req->stream_read = read;
    req->stream_data = data;
    int rc = queue(req, status, resp);
    if (rc < 0)
        req->stream_read = NULL;
    return rc;
}

void sh_http_req_suspend(sh_http_req_t *req)
{
    if (req->suspended || req->responded)
        return;
    req->suspended = true;
    MHD_suspend_connection(req->conn);
}

void sh_http_req_resume(sh_http_req_t *req)
{
    if (!req->suspended)
        return;
    req->suspended = false;
    req->resumed = true;
    req->resume_requested = true;
    MHD_resume_connection(req->conn);
    schedule_run(req->http);
}

bool sh_http_req_suspended(const sh_http_req_t *req)
{
    return req->suspended;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    sh_http_t *http = cls;
    sh_http_req_t *req = con_cls;
    sh_http_upgrade_cb cb = req->upgrade_cb;
    void *data = req->upgrade_data;
    /* Take the socket and the bytes MHD already read, then let MHD close
     * its copy and free the connection's memory pool (~9-22 KiB): the
     * WebSocket lives on with our state only. CLOSE does not shutdown() a
     * non-TLS socket, so our duplicate stays connected (tested by the
     * interop suite, which would see every WebSocket die). CLOSE may end
     * the request (freeing req), so copy everything first. */
    int fd = dup(sock);
    char *extra = extra_in_size ? sh_memdup(extra_in, extra_in_size) : NULL;
    req->upgrade_cb = NULL;
    /* The upgrade callback replaces the done callback: exactly one runs. */
    req->done = NULL;
    req->owner = NULL;
    http->stats.upgrades++;
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    schedule_run(http);
    if (fd < 0) {
        sh_warn("http: upgrade: dup failed: %s", strerror(errno));
        free(extra);
        cb(-1, NULL, 0, data);
        return;
    }
    /* MHD turns Nagle back on for upgraded sockets; WebSocket frames are
     * small and latency matters. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    cb(fd, extra, extra_in_size, data);
    free(extra);
}

int sh_http_respond_upgrade(sh_http_req_t *req, sh_http_upgrade_cb cb, void *data)
{
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, req->http);
    if (!resp)
        return -EIO;
    /* MHD adds "Connection: Upgrade" itself; adding it again doubles it. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    req->upgrade_cb = cb;
    req->upgrade_data = data;
    int rc = queue(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    if (rc < 0)
        req->upgrade_cb = NULL;
    return rc;
}
