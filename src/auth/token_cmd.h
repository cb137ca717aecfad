/* auth/token_cmd.h — `siohubd token`: mints an HS256 token with the
 * configured secret, for scripts and tests.
 *
 *   siohubd [OPTIONS] token --user ID [--name N] [--email E] [--role R]
 *                           [--channels c1,c2] [--ttl SECONDS]
 *
 * The token and a newline go to stdout (the only place siohub ever prints
 * a credential); errors go to stderr and never show the secret.
 */
#ifndef SH_AUTH_TOKEN_CMD_H
#define SH_AUTH_TOKEN_CMD_H

#include "config/config.h"

/* Default lifetime of a minted token, in seconds; --ttl 0 mints one
 * without "exp". */
#define SH_TOKEN_CMD_DEFAULT_TTL 86400

/* argv[0] is "token" (sh_config_cmd_t's argv). Returns the process exit
 * status: 0 printed a token (or --help), 1 could not mint (no secret, an
 * algorithm other than HS256), 2 bad usage. Reentrant: no getopt state. */
int sh_token_cmd(const sh_config_t *cfg, int argc, char **argv);

#endif
