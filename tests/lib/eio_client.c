#include "eio_client.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

int th_eio_open(th_eio_t *c, th_env_t *env, const char *path, const char *extra_query, th_resp_t *r)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    snprintf(c->path, sizeof(c->path), "%s", path);
    th_conn_connect(&c->get, env->loop, env->port);
    th_conn_connect(&c->post, env->loop, env->port);
    c->open = true;
    char target[256];
    snprintf(target, sizeof(target), "%s?EIO=4&transport=polling%s", path,
             extra_query ? extra_query : "");
    th_http_send(&c->get, "GET", target, NULL, NULL, 0);
    if (!th_http_read(&c->get, r, TH_WAIT_MS))
        return -1;
    if (r->status == 200) {
        json_t *j = th_eio_open_json(r);
        ck_assert_ptr_nonnull(j);
        const char *sid = json_string_value(json_object_get(j, "sid"));
        ck_assert_ptr_nonnull(sid);
        snprintf(c->sid, sizeof(c->sid), "%s", sid);
        json_decref(j);
    }
    return r->status;
}

json_t *th_eio_open_json(const th_resp_t *r)
{
    const char *b = sh_buf_peek(&r->body);
    size_t n = sh_buf_avail(&r->body);
    if (n < 2 || b[0] != '0')
        return NULL;
    const char *end = memchr(b, '\x1e', n);
    size_t len = end ? (size_t)(end - b) : n;
    return json_loadb(b + 1, len - 1, 0, NULL);
}

void th_eio_get_send(th_eio_t *c)
{
    ck_assert_msg(!c->get_out, "a GET is already out");
    char target[256];
    snprintf(target, sizeof(target), "%s?EIO=4&transport=polling&sid=%s", c->path, c->sid);
    th_http_send(&c->get, "GET", target, NULL, NULL, 0);
    c->get_out = true;
}

typedef struct seen {
    th_env_t *env;
    uint64_t before;
} seen_t;

static bool request_seen(void *arg)
{
    seen_t *s = arg;
    return sh_http_stats(s->env->http)->requests > s->before;
}

void th_eio_get_hold(th_eio_t *c)
{
    /* libmicrohttpd calls the handler twice for a GET in the one pass that
     * parses it, so once the layer has counted the request, the handler
     * has run: no time-based guess, which a loaded machine would break. */
    seen_t s = {c->env, sh_http_stats(c->env->http)->requests};
    th_eio_get_send(c);
    ck_assert_msg(th_run_until(c->env->loop, request_seen, &s, TH_WAIT_MS),
                  "the server did not see the GET");
    th_run_for(c->env->loop, 2);
    ck_assert_msg(sh_buf_avail(&c->get.in) == 0, "the GET was answered: %s",
                  sh_buf_peek(&c->get.in));
}

bool th_eio_get_wait(th_eio_t *c, th_resp_t *r, unsigned timeout_ms)
{
    ck_assert_msg(c->get_out, "no GET is out");
    if (!th_http_read(&c->get, r, timeout_ms))
        return false;
    c->get_out = false;
    return true;
}

bool th_eio_poll(th_eio_t *c, th_resp_t *r, unsigned timeout_ms)
{
    th_eio_get_send(c);
    return th_eio_get_wait(c, r, timeout_ms);
}

int th_eio_post(th_eio_t *c, const char *payload, size_t len, th_resp_t *r)
{
    char target[256];
    snprintf(target, sizeof(target), "%s?EIO=4&transport=polling&sid=%s", c->path, c->sid);
    th_http_send(&c->post, "POST", target, "Content-Type: text/plain;charset=UTF-8\r\n", payload,
                 len);
    if (!th_http_read(&c->post, r, TH_WAIT_MS))
        return -1;
    return r->status;
}

int th_eio_post_str(th_eio_t *c, const char *payload)
{
    th_resp_t r = {0};
    int status = th_eio_post(c, payload, strlen(payload), &r);
    if (status == 200)
        ck_assert_str_eq(sh_buf_peek(&r.body), "ok");
    th_resp_release(&r);
    return status;
}

void th_eio_close(th_eio_t *c)
{
    if (!c->open)
        return;
    th_conn_close(&c->get);
    th_conn_close(&c->post);
    c->open = false;
}

bool th_sio_connect(th_eio_t *c, const char *nsp, const char *auth, char *sid_out, size_t sid_len)
{
    bool root = !nsp || !strcmp(nsp, "/");
    char pkt[512];
    snprintf(pkt, sizeof(pkt), "40%s%s%s", root ? "" : nsp, root ? "" : ",", auth ? auth : "");
    ck_assert_int_eq(th_eio_post_str(c, pkt), 200);
    th_resp_t r = {0};
    bool ok = th_eio_poll(c, &r, TH_WAIT_MS);
    ck_assert_msg(ok, "no answer to CONNECT");
    /* "40{"sid":...}" or "40/nsp,{"sid":...}", first in the payload. */
    char want[300];
    snprintf(want, sizeof(want), "40%s%s{", root ? "" : nsp, root ? "" : ",");
    const char *b = sh_buf_peek(&r.body);
    ok = !strncmp(b, want, strlen(want));
    if (ok) {
        const char *j = b + strlen(want) - 1;
        const char *end = strchr(j, '\x1e');
        json_t *o = json_loadb(j, end ? (size_t)(end - j) : strlen(j), 0, NULL);
        const char *sid = json_string_value(json_object_get(o, "sid"));
        ok = sid != NULL;
        if (ok)
            snprintf(sid_out, sid_len, "%s", sid);
        json_decref(o);
    }
    th_resp_release(&r);
    return ok;
}
