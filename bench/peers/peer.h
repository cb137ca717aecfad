/* peer.h — what the C peers of bench/run (floor, chat_floor) share: start-up
 * (a loopback listener, the stop signals, the descriptor limit), HTTP
 * header look-ups and the WebSocket accept key.
 *
 * Each program is one thread with no state here: these are plain functions
 * of their arguments. Messages name the program by its invocation name
 * (glibc's program_invocation_short_name). libc and libcrypto only.
 */
#ifndef BENCH_PEERS_PEER_H
#define BENCH_PEERS_PEER_H

#include <stdbool.h>
#include <stddef.h>

/* 28 characters and a NUL: base64 of a SHA-1. */
#define PEER_WS_ACCEPT_SIZE 29
/* The longest header of an unmasked frame: 0x81, 127, a 64-bit length. */
#define PEER_WS_HEADER_MAX 10

/* Prints "<program>: <what>: <strerror(errno)>" and exits 1. */
void peer_die(const char *what) __attribute__((noreturn));

/* realloc, or exits 1 on failure. */
void *peer_xrealloc(void *p, size_t n);

/* An array v of n elements of elem bytes with room for one more: v itself
 * while *cap > n, else v grown (doubled; 16 the first time), *cap updated.
 * Exits 1 when out of memory. */
void *peer_grow(void *v, size_t n, size_t *cap, size_t elem);

/* A header's value within head (the request line, then header lines, up to
 * and with its "\r\n\r\n"), blanks around it left out; NULL when absent.
 * Borrowed from head. */
const char *peer_header(const char *head, size_t head_len, const char *name, size_t *len);

/* Whether header name's value holds token (case-insensitive). */
bool peer_header_has(const char *head, size_t head_len, const char *name, const char *token);

/* RFC 6455's Sec-WebSocket-Accept for a Sec-WebSocket-Key; false when the
 * key is empty or too long to be one. */
bool peer_ws_accept(const char *key, size_t key_len, char accept[PEER_WS_ACCEPT_SIZE]);

/* Writes the header of an unmasked, final text frame of len payload bytes
 * to h (PEER_WS_HEADER_MAX bytes of room); returns its length. */
size_t peer_ws_text_header(unsigned char *h, size_t len);

/* --port's value: 0 to 65535, or -1 when it is not one. */
long peer_port_arg(const char *arg);

/* A non-blocking listening socket on host:port (port 0: a free one); exits
 * 2 when host is not an IPv4 address in 127.0.0.0/8, 1 when it cannot
 * listen. */
int peer_listen(const char *host, int port);

/* Prints "ready HOST:PORT" on stdout (the port listener fd has), which
 * bench/run and the tests wait for. */
void peer_say_ready(const char *host, int fd);

/* The next connection on listener fd, non-blocking, with TCP_NODELAY (as
 * siohubd and nginx set for WebSockets: each write leaves at once); -1
 * when there is none left (a lack of descriptors is printed). */
int peer_accept(int fd);

/* Blocks SIGTERM and SIGINT and returns a signalfd that reads them. */
int peer_stop_signals(void);

/* Raises the soft limit of open files to the hard one: each client is a
 * descriptor. */
void peer_raise_nofile(void);

#endif
