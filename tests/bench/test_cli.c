/* siohub-bench's command line (src/bench/cli.c, with the scenarios'
 * completion hooks): the defaults --help and siohub-bench(1) promise, each
 * option landing in its field, what is derived at start-up (the trailing
 * '/' of --path, the room from --user, the emit port, --procs and
 * --sources from the client count, the sse scenario's table), and every
 * kind of bad usage exiting 2 with a message naming the problem. Scripts
 * and the comparison runs rely on these: a default that drifts or a typo
 * that is silently accepted changes what a benchmark measures. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/cli.h"
#include "bench/scenario.h"

#define MAX_ARGS 40

/* An argv the parser may permute and point into: getopt_long reorders
 * the array and the options keep pointers to its strings, so they live
 * until cmdline_release. */
typedef struct cmdline {
    int argc;
    char *argv[MAX_ARGS + 2];
} cmdline_t;

static void cmdline_parse(cmdline_t *c, sb_opts_t *o, const char *const *args)
{
    c->argc = 0;
    c->argv[c->argc++] = strdup("siohub-bench");
    for (; *args; args++) {
        ck_assert_int_lt(c->argc, MAX_ARGS + 1);
        c->argv[c->argc++] = strdup(*args);
    }
    c->argv[c->argc] = NULL;
    /* getopt_long keeps its position in globals: optind = 0 makes glibc
     * start over (re-initialising its permutation state too), as every
     * parse after the first needs. */
    optind = 0;
    sb_cli_parse(o, c->argc, c->argv);
}

static void cmdline_release(cmdline_t *c, sb_opts_t *o)
{
    sb_cli_release(o);
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    c->argc = 0;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* What a child that ran the parser did: its exit status (-1: killed) and
 * what it wrote. */
typedef struct outcome {
    int status;
    char out[16384];
    char err[4096];
} outcome_t;

static void read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char sink[512];
    for (;;) {
        char *to = len + 1 < cap ? buf + len : sink;
        size_t room = len + 1 < cap ? cap - 1 - len : sizeof(sink);
        ssize_t n = read(fd, to, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (to == buf + len)
            len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
}

/* Parses args in a forked child (sb_cli_parse exits on bad usage and
 * --help), its stdout and stderr captured. nofile: when not 0, the
 * descriptor limit (soft and hard) the child parses under. The child
 * exits 0 when the parse returns. */
static void run_child(const char *const *args, rlim_t nofile, outcome_t *r)
{
    int out[2], err[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    fflush(NULL); /* else the child's exit flushes the parent's buffers again */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(out[0]);
        close(err[0]);
        if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(err[1], STDERR_FILENO) < 0)
            _exit(100);
        close(out[1]);
        close(err[1]);
        if (nofile) {
            struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(101);
        }
        cmdline_t c;
        sb_opts_t o;
        cmdline_parse(&c, &o, args);
        cmdline_release(&c, &o);
        _exit(0);
    }
    close(out[1]);
    close(err[1]);
    read_all(out[0], r->out, sizeof(r->out));
    read_all(err[0], r->err, sizeof(r->err));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void join_args(const char *const *args, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (; *args && len < cap; args++)
        len += (size_t)snprintf(buf + len, cap - len, " %s", *args);
}

/* Bad usage: exit 2, nothing on stdout, and on stderr the program's name,
 * the message naming the problem and the pointer to --help. */
static void expect_bad_with_limit(const char *const *args, rlim_t nofile, const char *needle)
{
    outcome_t *r = calloc(1, sizeof(*r));
    char line[512];
    join_args(args, line, sizeof(line));
    run_child(args, nofile, r);
    ck_assert_msg(r->status == 2, "'%s': exit %d, stderr: %s", line, r->status, r->err);
    ck_assert_msg(strstr(r->err, needle), "'%s': stderr lacks \"%s\": %s", line, needle, r->err);
    ck_assert_msg(!strncmp(r->err, "siohub-bench: ", 14), "'%s': stderr: %s", line, r->err);
    ck_assert_msg(strstr(r->err, "Try 'siohub-bench --help'.\n"), "'%s': stderr: %s", line, r->err);
    ck_assert_msg(!r->out[0], "'%s': stdout: %s", line, r->out);
    free(r);
}

static void expect_bad(const char *const *args, const char *needle)
{
    expect_bad_with_limit(args, 0, needle);
}

/* The clients of chat as the man page puts it: user u has
 * a + u mod (b - a + 1) tabs. */
static unsigned chat_clients(unsigned users, unsigned a, unsigned b)
{
    unsigned n = 0;
    for (unsigned u = 0; u < users; u++)
        n += a + u % (b - a + 1);
    return n;
}

START_TEST(test_fanout_defaults)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o, ARGS("fanout", "--port", "8090"));
    ck_assert_ptr_eq(o.scenario, sb_scenario_find("fanout"));
    ck_assert_str_eq(o.scenario->name, "fanout");
    ck_assert_str_eq(o.host, "127.0.0.1");
    ck_assert_uint_eq(ntohl(o.host_addr.s_addr), 0x7f000001);
    ck_assert_uint_eq(o.nports, 1);
    ck_assert_uint_eq(o.ports[0], 8090);
    ck_assert_uint_eq(o.emit_port, 8090);
    ck_assert_str_eq(o.path, "/ws/socket.io/");
    ck_assert_int_eq(o.protocol, SB_PROTO_SOCKETIO);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_WEBSOCKET);
    ck_assert_str_eq(o.sub_path, "/sub/bench");
    ck_assert_str_eq(o.pub_path, "/pub/bench");
    ck_assert_str_eq(o.user, "bench");
    ck_assert_str_eq(o.room, "user:bench");
    ck_assert_str_eq(o.emit_api, "emit");
    ck_assert_ptr_null(o.secret);
    ck_assert_ptr_null(o.token);
    ck_assert_ptr_null(o.api_key);
    ck_assert_uint_eq(o.redis_port, 0);
    ck_assert_str_eq(o.redis_channel, "socketio");
    ck_assert_uint_eq(o.npids, 0);
    ck_assert_uint_eq(o.clients, 1000);
    ck_assert_uint_eq(o.procs, 1);
    ck_assert_uint_eq(o.sources, 1);
    ck_assert_double_eq(o.rate, 100);
    ck_assert_double_eq(o.duration_s, 10);
    ck_assert_uint_eq(o.size, 200);
    ck_assert(!o.pad_zh);
    ck_assert(!o.find_max);
    ck_assert_double_eq(o.p99_limit_ms, 50);
    ck_assert_double_eq(o.max_rate, 0);
    ck_assert_uint_eq(o.publishers, 8);
    ck_assert_uint_eq(o.connect_batch, 200);
    ck_assert_double_eq(o.connect_timeout_s, 60);
    ck_assert_double_eq(o.drain_timeout_s, 5);
    ck_assert_double_eq(o.settle_s, 1);
    ck_assert_ptr_null(o.json_path);
    ck_assert(!o.verbose);
    ck_assert_ptr_null(o.path_buf);
    ck_assert_ptr_null(o.scenario_buf);
    cmdline_release(&c, &o);
    ck_assert_ptr_null(o.room_buf);
}
END_TEST

START_TEST(test_scenario_defaults)
{
    cmdline_t c;
    sb_opts_t o;

    cmdline_parse(&c, &o, ARGS("idle", "--port", "1"));
    ck_assert_str_eq(o.scenario->name, "idle");
    ck_assert_uint_eq(o.clients, 1000);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_WEBSOCKET);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("churn", "--port", "1"));
    ck_assert_str_eq(o.scenario->name, "churn");
    ck_assert_uint_eq(o.clients, 64);
    cmdline_release(&c, &o);

    /* polling: always the polling transport. */
    cmdline_parse(&c, &o, ARGS("polling", "--port", "1"));
    ck_assert_str_eq(o.scenario->name, "polling");
    ck_assert_uint_eq(o.clients, 100);
    ck_assert_uint_eq(o.concurrency, 64);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_POLLING);
    cmdline_release(&c, &o);

    /* sse: fanout's table under its own name, over SSE. */
    cmdline_parse(&c, &o, ARGS("sse", "--port", "1"));
    ck_assert_str_eq(o.scenario->name, "sse");
    ck_assert_ptr_nonnull(o.scenario_buf);
    ck_assert_ptr_eq(o.scenario, o.scenario_buf);
    ck_assert(o.scenario->run == sb_scenario_find("fanout")->run);
    ck_assert(o.scenario->window_begin == sb_scenario_find("fanout")->window_begin);
    ck_assert_ptr_null(o.scenario->complete);
    ck_assert(!o.scenario->raw_ws);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_SSE);
    ck_assert_uint_eq(o.clients, 1000);
    cmdline_release(&c, &o);
    ck_assert_ptr_null(o.scenario_buf);

    /* chat: the clients are the users' tabs. */
    cmdline_parse(&c, &o, ARGS("chat", "--port", "1", "--secret", "s"));
    ck_assert_str_eq(o.scenario->name, "chat");
    ck_assert_uint_eq(o.users, 100);
    ck_assert_uint_eq(o.tabs_min, 1);
    ck_assert_uint_eq(o.tabs_max, 3);
    ck_assert_double_eq(o.tokens_per_s, 20);
    ck_assert_uint_eq(o.channel_size, 10);
    ck_assert_double_eq(o.typing_rate, 1);
    ck_assert_uint_eq(o.burst, 5);
    ck_assert_uint_eq(o.batch, 100);
    ck_assert_uint_eq(o.reply_tokens, 0);
    ck_assert(!o.reply_zh);
    ck_assert_uint_eq(o.clients, chat_clients(100, 1, 3));
    ck_assert_uint_eq(o.clients, 199);
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_numbers_reach_fields)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "65535", "-n", "300", "--procs", "3", "--sources", "7",
                       "--rate", "250.5", "--duration", "0.25", "--size", "64", "--p99-limit",
                       "12.5", "--max-rate", "4000", "--publishers", "64", "--connect-batch", "17",
                       "--connect-timeout", "9", "--drain-timeout", "2.5", "--settle", "0"));
    ck_assert_uint_eq(o.ports[0], 65535);
    ck_assert_uint_eq(o.clients, 300);
    ck_assert_uint_eq(o.procs, 3);
    ck_assert_uint_eq(o.sources, 7);
    ck_assert_double_eq(o.rate, 250.5);
    ck_assert_double_eq(o.duration_s, 0.25);
    ck_assert_uint_eq(o.size, 64);
    ck_assert_double_eq(o.p99_limit_ms, 12.5);
    ck_assert_double_eq(o.max_rate, 4000);
    ck_assert_uint_eq(o.publishers, 64);
    ck_assert_uint_eq(o.connect_batch, 17);
    ck_assert_double_eq(o.connect_timeout_s, 9);
    ck_assert_double_eq(o.drain_timeout_s, 2.5);
    ck_assert_double_eq(o.settle_s, 0);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o,
                  ARGS("chat", "--port", "1", "--secret", "s", "--users", "10", "--tabs", "2-5",
                       "--tokens-per-second", "7.5", "--channel-size", "1000", "--typing-rate",
                       "0.1", "--batch", "1", "--burst", "3", "--reply-tokens", "40"));
    ck_assert_uint_eq(o.users, 10);
    ck_assert_uint_eq(o.tabs_min, 2);
    ck_assert_uint_eq(o.tabs_max, 5);
    ck_assert_double_eq(o.tokens_per_s, 7.5);
    ck_assert_uint_eq(o.channel_size, 1000);
    ck_assert_double_eq(o.typing_rate, 0.1);
    ck_assert_uint_eq(o.batch, 1);
    ck_assert_uint_eq(o.burst, 3);
    ck_assert_uint_eq(o.reply_tokens, 40);
    ck_assert_uint_eq(o.clients, chat_clients(10, 2, 5));
    ck_assert_uint_eq(o.clients, 33);
    cmdline_release(&c, &o);

    /* One tab count is a range of one. */
    cmdline_parse(&c, &o,
                  ARGS("chat", "--port", "1", "--secret", "s", "--users", "7", "--tabs", "4",
                       "--tokens-per-second", "0", "--typing-rate", "0"));
    ck_assert_uint_eq(o.tabs_min, 4);
    ck_assert_uint_eq(o.tabs_max, 4);
    ck_assert_uint_eq(o.clients, 28);
    ck_assert_double_eq(o.tokens_per_s, 0);
    ck_assert_double_eq(o.typing_rate, 0);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("polling", "--port", "1", "--concurrency", "0", "-n", "5"));
    ck_assert_uint_eq(o.concurrency, 0);
    ck_assert_uint_eq(o.clients, 5);
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_ports_pids_emit_port)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o, ARGS("fanout", "--port", "1000,1001,1002", "--pid", "12,34"));
    ck_assert_uint_eq(o.nports, 3);
    ck_assert_uint_eq(o.ports[0], 1000);
    ck_assert_uint_eq(o.ports[1], 1001);
    ck_assert_uint_eq(o.ports[2], 1002);
    ck_assert_uint_eq(o.emit_port, 1000);
    ck_assert_uint_eq(o.npids, 2);
    ck_assert_int_eq(o.pids[0], 12);
    ck_assert_int_eq(o.pids[1], 34);
    cmdline_release(&c, &o);

    /* The last --port wins; --emit-port before it still holds. */
    cmdline_parse(&c, &o, ARGS("fanout", "--emit-port", "2000", "--port", "5,6", "--port", "7"));
    ck_assert_uint_eq(o.nports, 1);
    ck_assert_uint_eq(o.ports[0], 7);
    ck_assert_uint_eq(o.emit_port, 2000);
    cmdline_release(&c, &o);

    /* As many ports and pids as there is room for. */
    char ports[SB_MAX_PORTS * 6 + 1], pids[SB_MAX_PIDS * 6 + 1];
    size_t pl = 0, dl = 0;
    for (unsigned i = 0; i < SB_MAX_PORTS; i++)
        pl += (size_t)snprintf(ports + pl, sizeof(ports) - pl, "%s%u", i ? "," : "", 9000 + i);
    for (unsigned i = 0; i < SB_MAX_PIDS; i++)
        dl += (size_t)snprintf(pids + dl, sizeof(pids) - dl, "%s%u", i ? "," : "", 100 + i);
    cmdline_parse(&c, &o, ARGS("idle", "--port", ports, "--pid", pids));
    ck_assert_uint_eq(o.nports, SB_MAX_PORTS);
    ck_assert_uint_eq(o.ports[SB_MAX_PORTS - 1], 9000 + SB_MAX_PORTS - 1);
    ck_assert_uint_eq(o.emit_port, 9000);
    ck_assert_uint_eq(o.npids, SB_MAX_PIDS);
    ck_assert_int_eq(o.pids[SB_MAX_PIDS - 1], 100 + SB_MAX_PIDS - 1);
    cmdline_release(&c, &o);

    /* One more is too many. */
    snprintf(ports + pl, sizeof(ports) - pl, ",1");
    expect_bad(ARGS("idle", "--port", ports), "too many ports (at most 64)");
    snprintf(pids + dl, sizeof(pids) - dl, ",1");
    expect_bad(ARGS("idle", "--port", "1", "--pid", pids), "too many pids (at most 64)");
}
END_TEST

START_TEST(test_paths)
{
    cmdline_t c;
    sb_opts_t o;
    /* --path gets its trailing '/' (in path_buf); sub and pub paths are
     * taken as they are. */
    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--path", "/sock", "--sub-path", "/s/x",
                       "--pub-path", "/p/y"));
    ck_assert_str_eq(o.path, "/sock/");
    ck_assert_ptr_eq(o.path, o.path_buf);
    ck_assert_str_eq(o.sub_path, "/s/x");
    ck_assert_str_eq(o.pub_path, "/p/y");
    cmdline_release(&c, &o);
    ck_assert_ptr_null(o.path_buf);

    cmdline_parse(&c, &o, ARGS("fanout", "--port", "1", "--path", "/sock/"));
    ck_assert_str_eq(o.path, "/sock/");
    ck_assert_ptr_null(o.path_buf);
    cmdline_release(&c, &o);

    /* Given twice: the second, the first's buffer freed (valgrind). */
    cmdline_parse(&c, &o, ARGS("fanout", "--port", "1", "--path", "/a", "--path", "/bc"));
    ck_assert_str_eq(o.path, "/bc/");
    ck_assert_ptr_eq(o.path, o.path_buf);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("fanout", "--port", "1", "--path", "/"));
    ck_assert_str_eq(o.path, "/");
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_words_and_room)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--user", "alice-7", "--token", "t.o.k",
                       "--api-key", "K", "--emit-api", "chat-events", "--host", "127.1.2.3",
                       "--json", "/tmp/x.json", "--secret", "s e"));
    ck_assert_str_eq(o.user, "alice-7");
    ck_assert_str_eq(o.room, "user:alice-7");
    ck_assert_ptr_eq(o.room, o.room_buf);
    ck_assert_str_eq(o.token, "t.o.k");
    ck_assert_str_eq(o.api_key, "K");
    ck_assert_str_eq(o.emit_api, "chat-events");
    ck_assert_str_eq(o.host, "127.1.2.3");
    ck_assert_uint_eq(ntohl(o.host_addr.s_addr), 0x7f010203);
    ck_assert_str_eq(o.json_path, "/tmp/x.json");
    ck_assert_str_eq(o.secret, "s e");
    cmdline_release(&c, &o);
    ck_assert_ptr_null(o.room_buf);

    /* --room wins over the derived one, in either order. */
    cmdline_parse(&c, &o, ARGS("fanout", "--room", "r1", "--port", "1", "--user", "bob"));
    ck_assert_str_eq(o.room, "r1");
    ck_assert_ptr_null(o.room_buf);
    ck_assert_str_eq(o.user, "bob");
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_flags_and_languages)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--find-max", "-v", "--pad-language", "zh",
                       "--reply-language", "zh"));
    ck_assert(o.find_max);
    ck_assert(o.verbose);
    ck_assert(o.pad_zh);
    ck_assert(o.reply_zh);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--verbose", "--pad-language", "zh",
                       "--pad-language", "en", "--reply-language", "en"));
    ck_assert(o.verbose);
    ck_assert(!o.pad_zh);
    ck_assert(!o.reply_zh);
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_redis)
{
    cmdline_t c;
    sb_opts_t o;
    /* One pipelined connection, whatever --publishers says. */
    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--publishers", "4", "--redis", "127.0.0.5:6390",
                       "--redis-channel", "ch1"));
    ck_assert_uint_eq(ntohl(o.redis_addr.s_addr), 0x7f000005);
    ck_assert_uint_eq(o.redis_port, 6390);
    ck_assert_str_eq(o.redis_channel, "ch1");
    ck_assert_uint_eq(o.publishers, 1);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("chat", "--port", "1", "--secret", "s", "--redis", "127.0.0.1:1"));
    ck_assert_uint_eq(o.redis_port, 1);
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_transport_and_protocol)
{
    cmdline_t c;
    sb_opts_t o;
    cmdline_parse(&c, &o, ARGS("fanout", "--port", "1", "--transport", "polling"));
    ck_assert_int_eq(o.transport, SB_TRANSPORT_POLLING);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("idle", "--port", "1", "--protocol", "raw-ws"));
    ck_assert_int_eq(o.protocol, SB_PROTO_RAW_WS);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("churn", "--port", "1", "--protocol", "raw-ws"));
    ck_assert_int_eq(o.protocol, SB_PROTO_RAW_WS);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o,
                  ARGS("fanout", "--port", "1", "--transport", "sse", "--protocol", "raw-sse"));
    ck_assert_int_eq(o.protocol, SB_PROTO_RAW_SSE);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_SSE);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("sse", "--port", "1", "--protocol", "raw-sse"));
    ck_assert_int_eq(o.protocol, SB_PROTO_RAW_SSE);
    ck_assert_int_eq(o.transport, SB_TRANSPORT_SSE);
    ck_assert_str_eq(o.scenario->name, "sse");
    cmdline_release(&c, &o);

    /* sse accepts its own transport named; the last --protocol wins. */
    cmdline_parse(&c, &o,
                  ARGS("sse", "--port", "1", "--transport", "sse", "--protocol", "raw-sse",
                       "--protocol", "socketio"));
    ck_assert_int_eq(o.protocol, SB_PROTO_SOCKETIO);
    cmdline_release(&c, &o);
}
END_TEST

START_TEST(test_procs_and_sources_derived)
{
    cmdline_t c;
    sb_opts_t o;
    /* ceil(n / 18000) processes, ceil(n / 25000) source addresses. */
    static const struct {
        const char *clients;
        unsigned procs, sources;
    } derived[] = {{"50001", 3, 3}, {"18000", 1, 1}, {"25001", 2, 2}};
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
        cmdline_parse(&c, &o, ARGS("idle", "--port", "1", "-n", derived[i].clients));
        ck_assert_msg(o.procs == derived[i].procs, "-n %s: %u processes", derived[i].clients,
                      o.procs);
        ck_assert_msg(o.sources == derived[i].sources, "-n %s: %u sources", derived[i].clients,
                      o.sources);
        cmdline_release(&c, &o);
    }

    /* No clients still makes one process and one source. */
    cmdline_parse(&c, &o, ARGS("idle", "--port", "1", "--clients", "0"));
    ck_assert_uint_eq(o.clients, 0);
    ck_assert_uint_eq(o.procs, 1);
    ck_assert_uint_eq(o.sources, 1);
    cmdline_release(&c, &o);

    /* Given, they stay: --sources 0 means no bind. */
    cmdline_parse(&c, &o,
                  ARGS("idle", "--port", "1", "-n", "256", "--procs", "256", "--sources", "0"));
    ck_assert_uint_eq(o.procs, 256);
    ck_assert_uint_eq(o.sources, 0);
    cmdline_release(&c, &o);

    cmdline_parse(&c, &o, ARGS("idle", "--port", "1", "-n", "10", "--sources", "250"));
    ck_assert_uint_eq(o.sources, 250);
    cmdline_release(&c, &o);

    /* chat derives them from its tabs. */
    cmdline_parse(&c, &o,
                  ARGS("chat", "--port", "1", "--secret", "s", "--users", "20000", "--tabs", "2"));
    ck_assert_uint_eq(o.clients, 40000);
    ck_assert_uint_eq(o.procs, 3);
    ck_assert_uint_eq(o.sources, 2);
    cmdline_release(&c, &o);
}
END_TEST

/* Under a low descriptor limit: the share of one process must fit it,
 * counting two sockets for clients that emit over polling or SSE. */
START_TEST(test_descriptor_limit)
{
    outcome_t *r = calloc(1, sizeof(*r));
    run_child(ARGS("idle", "--port", "1", "-n", "150"), 256, r);
    if (r->status == 101) {
        /* valgrind refuses to move the hard limit (EPERM). */
        fputs("test_descriptor_limit: cannot lower RLIMIT_NOFILE here, skipped\n", stderr);
        free(r);
        return;
    }
    ck_assert_msg(r->status == 0, "exit %d: %s", r->status, r->err);
    run_child(ARGS("idle", "--port", "1", "-n", "300", "--procs", "2"), 256, r);
    ck_assert_msg(r->status == 0, "exit %d: %s", r->status, r->err);
    free(r);
    expect_bad_with_limit(ARGS("idle", "--port", "1", "-n", "300"), 256,
                          "364 sockets per process exceed the descriptor limit (256): raise "
                          "--procs");
    expect_bad_with_limit(ARGS("polling", "--port", "1", "-n", "150"), 256,
                          "364 sockets per process exceed the descriptor limit (256)");
}
END_TEST

START_TEST(test_help)
{
    const char *const *const forms[] = {ARGS("--help"), ARGS("-h"),
                                        ARGS("fanout", "--port", "1", "--help")};
    outcome_t *r = calloc(1, sizeof(*r));
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        run_child(forms[i], 0, r);
        ck_assert_int_eq(r->status, 0);
        ck_assert_str_eq(r->err, "");
        ck_assert_ptr_eq(strstr(r->out, "Usage: siohub-bench SCENARIO [OPTION]...\n"), r->out);
        for (const sb_scenario_t *const *s = sb_scenarios; *s; s++) {
            char line[256];
            snprintf(line, sizeof(line), "\n  %-22s %s\n", (*s)->name, (*s)->summary);
            ck_assert_msg(strstr(r->out, line), "no line for %s", (*s)->name);
        }
        ck_assert(strstr(r->out, "at least 64 (200)"));
        ck_assert(strstr(r->out, "2 on bad usage.\n"));
    }
    free(r);
}
END_TEST

typedef struct bad_case {
    const char *args[12];
    const char *message;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    /* getopt's own */
    {{"fanout", "--port", "1", "--bogus"}, "unrecognized option '--bogus'"},
    {{"fanout", "--port", "1", "-x"}, "invalid option -- 'x'"},
    {{"fanout", "--port"}, "option '--port' requires an argument"},
    {{"fanout", "--port", "1", "-n"}, "option requires an argument -- 'n'"},
    {{"fanout", "--port", "1", "--find-max=yes"}, "doesn't allow an argument"},
    /* the scenario */
    {{"--port", "1"}, "no scenario given"},
    {{"fanout", "idle", "--port", "1"}, "one scenario at a time ('idle' is extra)"},
    {{"fan-out", "--port", "1"}, "unknown scenario 'fan-out'"},
    {{"fanouts", "--port", "1"}, "unknown scenario 'fanouts'"},
    /* --port */
    {{"fanout"}, "--port is required"},
    {{"fanout", "--port", "http"}, "bad port 'http' (1..65535)"},
    {{"fanout", "--port", "0"}, "bad port '0' (1..65535)"},
    {{"fanout", "--port", "65536"}, "bad port '65536' (1..65535)"},
    {{"fanout", "--port", "80x"}, "bad port '80x'"},
    {{"fanout", "--port", "1,-2"}, "bad port '-2'"},
    {{"fanout", "--port", ","}, "no port in ','"},
    /* options that do not go together */
    {{"fanout", "--port", "1", "--rate", "100", "--max-rate", "50"},
     "--max-rate 50 is below --rate 100"},
    {{"idle", "--port", "1", "-n", "2", "--procs", "3"}, "--procs 3 is more than the 2 clients"},
    {{"idle", "--port", "1", "--redis", "127.0.0.1:6379"},
     "--redis publishes Socket.IO emits: the fanout and chat scenarios only"},
    {{"fanout", "--port", "1", "--protocol", "raw-ws", "--redis", "127.0.0.1:6379"},
     "--redis publishes Socket.IO emits"},
    {{"polling", "--port", "1", "--protocol", "raw-ws"},
     "scenario polling does not run with --protocol raw-ws"},
    {{"sse", "--port", "1", "--protocol", "raw-ws"},
     "scenario sse does not run with --protocol raw-ws"},
    {{"fanout", "--port", "1", "--protocol", "raw-ws", "--transport", "polling"},
     "--protocol raw-ws is WebSocket only"},
    {{"idle", "--port", "1", "--protocol", "raw-sse"},
     "scenario idle does not run with --protocol raw-sse"},
    {{"fanout", "--port", "1", "--protocol", "raw-sse"},
     "--protocol raw-sse is SSE only (the sse scenario, or --transport sse)"},
    {{"polling", "--port", "1", "--transport", "sse"},
     "the polling scenario is Socket.IO over long-polling, not SSE"},
    {{"polling", "--port", "1", "--concurrency", "0", "-n", "0"},
     "polling: --concurrency 0 and --clients 0 leave nothing to do"},
    {{"sse", "--port", "1", "--transport", "polling"},
     "the sse scenario is siohubd's SSE endpoint, not polling"},
    {{"chat", "--port", "1"}, "chat mints a token per user: give --secret (and no --token)"},
    {{"chat", "--port", "1", "--secret", "s", "--token", "t"}, "chat mints a token per user"},
    {{"chat", "--port", "1", "--secret", "s", "--channel-size", "1001"},
     "chat: --channel-size 1001 is over 1000"},
    {{"chat", "--port", "1", "--secret", "s", "--users", "10000000", "--tabs", "100"},
     "chat: 1000000000 tabs are too many"},
    {{"chat", "--port", "1", "--secret", "s", "-n", "5"},
     "chat: the clients are --users x --tabs (199 here); leave --clients out"},
};

/* A bad value for one option, given to "fanout --port 1". */
typedef struct bad_value {
    const char *option, *value;
    const char *message;
} bad_value_t;

static const bad_value_t bad_values[] = {
    /* numbers */
    {"--emit-port", "70000", "bad port '70000'"},
    {"--pid", "0", "bad pid '0'"},
    {"-n", "-1", "bad client count '-1' (0..10000000)"},
    {"-n", "10000001", "bad client count '10000001'"},
    {"-n", "", "bad client count ''"},
    {"-n", "-0", "bad client count '-0'"},
    {"--procs", "0", "bad process count '0' (1..256)"},
    {"--procs", "257", "bad process count '257'"},
    {"--sources", "251", "bad source count '251' (0..250)"},
    {"--size", "63", "bad --size '63' (64..16777216)"},
    {"--size", "16777217", "bad --size '16777217'"},
    {"--publishers", "65", "bad --publishers '65' (1..64)"},
    {"--connect-batch", "0", "bad --connect-batch '0'"},
    {"--rate", "0", "bad --rate '0'"},
    {"--rate", "fast", "bad --rate 'fast'"},
    {"--rate", "nan", "bad --rate 'nan'"},
    {"--rate", "1e10", "bad --rate '1e10'"},
    {"--rate", "5/s", "bad --rate '5/s'"},
    {"--duration", "-3", "bad --duration '-3'"},
    {"--p99-limit", "0", "bad --p99-limit '0'"},
    {"--max-rate", "x", "bad --max-rate 'x'"},
    {"--connect-timeout", "", "bad --connect-timeout ''"},
    {"--drain-timeout", "0", "bad --drain-timeout '0'"},
    {"--settle", "-0.5", "bad --settle '-0.5'"},
    {"--typing-rate", "-1", "bad --typing-rate '-1'"},
    {"--tokens-per-second", "inf", "bad --tokens-per-second 'inf'"},
    {"--users", "0", "bad --users '0'"},
    {"--channel-size", "0", "bad --channel-size '0'"},
    {"--batch", "0", "bad --batch '0'"},
    {"--burst", "10001", "bad --burst '10001'"},
    {"--reply-tokens", "100001", "bad --reply-tokens '100001'"},
    {"--concurrency", "1000001", "bad --concurrency '1000001'"},
    /* ranges */
    {"--tabs", "3-1", "bad tab range '3-1' (A-B with A <= B)"},
    {"--tabs", "-3", "bad tab range '-3' (A-B)"},
    {"--tabs", "0-2", "bad tab count '0' (1..100)"},
    {"--tabs", "1-101", "bad tab count '101' (1..100)"},
    {"--tabs", "1-", "bad tab count ''"},
    {"--tabs", "1-2-3", "bad tab count '2-3'"},
    /* names */
    {"--transport", "webtransport", "bad --transport 'webtransport' (websocket, polling or sse)"},
    {"--protocol", "mqtt", "bad --protocol 'mqtt' (socketio, raw-ws or raw-sse)"},
    {"--emit-api", "post", "bad --emit-api 'post' (emit or chat-events)"},
    {"--pad-language", "fr", "bad --pad-language 'fr' (en or zh)"},
    {"--reply-language", "EN", "bad --reply-language 'EN' (en or zh)"},
    /* addresses */
    {"--host", "localhost", "bad --host 'localhost' (an IPv4 address)"},
    {"--host", "10.0.0.1",
     "--host 10.0.0.1 is not in 127.0.0.0/8: siohub-bench loads this host only"},
    {"--redis", "127.0.0.1", "bad --redis '127.0.0.1' (ADDR:PORT)"},
    {"--redis", ":6379", "bad --redis ':6379' (ADDR:PORT)"},
    {"--redis", "redis:6379", "bad --redis address 'redis' (an IPv4 address)"},
    {"--redis", "192.168.1.1:6379", "--redis 192.168.1.1 is not in 127.0.0.0/8"},
    {"--redis", "127.0.0.1:0", "bad --redis port '0' (1..65535)"},
    {"--redis", "127.0.0.1:", "bad --redis port ''"},
    /* paths and words */
    {"--path", "ws/", "bad --path 'ws/' (a path starting with '/')"},
    {"--path", "/a b/", "bad --path '/a b/'"},
    {"--path", "/a?b", "bad --path '/a?b'"},
    {"--path", "", "bad --path ''"},
    {"--sub-path", "sub", "bad --sub-path 'sub'"},
    {"--pub-path", "/p\"", "bad --pub-path '/p\"'"},
    {"--user", "a b",
     "bad --user: spaces, quotes, backslashes and control characters are not allowed"},
    {"--user", "", "empty --user"},
    {"--room", "r\"1", "bad --room: spaces"},
    {"--token", "a\\b", "bad --token: spaces"},
    {"--api-key", "k\x7f", "bad --api-key: spaces"},
    {"--api-key", "\xc3\xa9", "bad --api-key: spaces"},
    {"--redis-channel", "a\tb", "bad --redis-channel: spaces"},
    {"--secret", "", "empty --secret"},
};

START_TEST(test_bad_usage)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        expect_bad(bad_cases[i].args, bad_cases[i].message);
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        const bad_value_t *b = &bad_values[i];
        expect_bad(ARGS("fanout", "--port", "1", b->option, b->value), b->message);
    }
}
END_TEST

/* The names the functions give are the ones the options take back. */
START_TEST(test_names)
{
    static const sb_protocol_t protocols[] = {SB_PROTO_SOCKETIO, SB_PROTO_RAW_WS, SB_PROTO_RAW_SSE};
    static const sb_transport_t transports[] = {SB_TRANSPORT_WEBSOCKET, SB_TRANSPORT_POLLING,
                                                SB_TRANSPORT_SSE};
    ck_assert_str_eq(sb_protocol_name(SB_PROTO_SOCKETIO), "socketio");
    ck_assert_str_eq(sb_protocol_name(SB_PROTO_RAW_WS), "raw-ws");
    ck_assert_str_eq(sb_protocol_name(SB_PROTO_RAW_SSE), "raw-sse");
    ck_assert_str_eq(sb_transport_name(SB_TRANSPORT_WEBSOCKET), "websocket");
    ck_assert_str_eq(sb_transport_name(SB_TRANSPORT_POLLING), "polling");
    ck_assert_str_eq(sb_transport_name(SB_TRANSPORT_SSE), "sse");
    cmdline_t c;
    sb_opts_t o;
    for (size_t i = 0; i < 3; i++) {
        /* raw-ws is WebSocket only, raw-sse SSE only. */
        const char *transport = protocols[i] == SB_PROTO_RAW_SSE ? "sse" : "websocket";
        cmdline_parse(&c, &o,
                      ARGS("fanout", "--port", "1", "--transport", transport, "--protocol",
                           sb_protocol_name(protocols[i])));
        ck_assert_int_eq(o.protocol, protocols[i]);
        cmdline_release(&c, &o);
        cmdline_parse(
            &c, &o, ARGS("fanout", "--port", "1", "--transport", sb_transport_name(transports[i])));
        ck_assert_int_eq(o.transport, transports[i]);
        cmdline_release(&c, &o);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_fanout_defaults);
    tcase_add_test(tc, test_scenario_defaults);
    tcase_add_test(tc, test_numbers_reach_fields);
    tcase_add_test(tc, test_ports_pids_emit_port);
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_words_and_room);
    tcase_add_test(tc, test_flags_and_languages);
    tcase_add_test(tc, test_redis);
    tcase_add_test(tc, test_transport_and_protocol);
    tcase_add_test(tc, test_procs_and_sources_derived);
    tcase_add_test(tc, test_descriptor_limit);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_bad_usage);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
