/* peer.c — see peer.h. */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void peer_die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
    exit(1);
}

void *peer_xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
        exit(1);
    }
    return p;
}

void *peer_grow(void *v, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 16;
    return peer_xrealloc(v, *cap * elem);
}

const char *peer_header(const char *head, size_t head_len, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    const char *end = head + head_len;
    const char *line = memchr(head, '\n', head_len); /* skip the request line */
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

bool peer_header_has(const char *head, size_t head_len, const char *name, const char *token)
{
    size_t len;
    const char *v = peer_header(head, head_len, name, &len);
    size_t tlen = strlen(token);
    for (; v && len >= tlen; v++, len--)
        if (!strncasecmp(v, token, tlen))
            return true;
    return false;
}

bool peer_ws_accept(const char *key, size_t key_len, char accept[PEER_WS_ACCEPT_SIZE])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char material[128];
    if (key_len == 0 || key_len + sizeof(ws_guid) > sizeof(material))
        return false;
    memcpy(material, key, key_len);
    memcpy(material + key_len, ws_guid, sizeof(ws_guid) - 1);
    SHA1((const unsigned char *)material, key_len + sizeof(ws_guid) - 1, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    return true;
}

size_t peer_ws_text_header(unsigned char *h, size_t len)
{
    size_t n = 0;
    h[n++] = 0x81; /* FIN, text */
    if (len < 126) {
        h[n++] = (unsigned char)len;
    } else if (len < 65536) {
        h[n++] = 126;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            h[n++] = (unsigned char)((unsigned long long)len >> shift);
    }
    return n;
}

long peer_port_arg(const char *arg)
{
    char *end;
    long port = strtol(arg, &end, 10);
    return *arg && !*end && port >= 0 && port <= 65535 ? port : -1;
}

int peer_listen(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "%s: --host must be an IPv4 address in 127.0.0.0/8\n",
                program_invocation_short_name);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        peer_die("socket");
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        peer_die("bind");
    if (listen(fd, 4096) < 0)
        peer_die("listen");
    return fd;
}

void peer_say_ready(const char *host, int fd)
{
    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0)
        peer_die("getsockname");
    printf("ready %s:%d\n", host, ntohs(bound.sin_port));
    fflush(stdout);
}

int peer_accept(int fd)
{
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
        if (errno == EMFILE || errno == ENFILE)
            fprintf(stderr, "%s: accept: %s\n", program_invocation_short_name, strerror(errno));
        return -1; /* EAGAIN: all taken; anything else: the client is gone */
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

int peer_stop_signals(void)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0)
        peer_die("sigprocmask");
    int fd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (fd < 0)
        peer_die("signalfd");
    return fd;
}

void peer_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
