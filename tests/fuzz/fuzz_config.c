/* fuzz_config — the config parsers on untrusted bytes.
 *
 * The first byte picks what the rest is:
 *   0..      a config file body for sh_config_parse_text(); when it parses,
 *            the dump of the result must parse back to the same dump;
 *   'E'      NUL-separated "NAME=value" strings for sh_config_apply_env();
 *   'A'      NUL-separated arguments for sh_config_load_default() (with no
 *            default file; arguments that would read a file are skipped).
 * Every path ends with sh_config_release(): LeakSanitizer checks it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/buf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* --help and --version print to stdout. */
    if (!freopen("/dev/null", "w", stdout))
        abort();
    return 0;
}

/* Splits data at NULs into a NULL-terminated array of strings (the last
 * piece need not end with NUL). Returns the count; free(*out) and the
 * copy in *copy. */
static size_t split(const uint8_t *data, size_t size, char ***out, char **copy)
{
    char *c = sh_malloc(size + 1);
    memcpy(c, data, size);
    c[size] = '\0';
    size_t n = 0;
    for (size_t i = 0; i <= size; i++)
        if (i == size || c[i] == '\0')
            n++;
    char **v = sh_calloc(n + 2, sizeof(*v));
    size_t k = 0;
    char *start = c;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || c[i] == '\0') {
            v[k++] = start;
            start = c + i + 1;
        }
    }
    *out = v;
    *copy = c;
    return n;
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    sh_config_t cfg;
    sh_buf_t err = SH_BUF_INIT;
    sh_config_init(&cfg);
    if (sh_config_parse_text(&cfg, "fuzz", (const char *)data, size, &err) == 0) {
        sh_config_validate(&cfg, &err);
        sh_buf_t a = SH_BUF_INIT, b = SH_BUF_INIT;
        sh_config_dump(&cfg, &a, true);
        sh_config_t again;
        sh_config_init(&again);
        if (sh_config_parse_text(&again, "dump", sh_buf_peek(&a), sh_buf_avail(&a), &err) != 0)
            abort(); /* a dump must read back */
        sh_config_dump(&again, &b, true);
        if (sh_buf_avail(&a) != sh_buf_avail(&b) ||
            memcmp(sh_buf_peek(&a), sh_buf_peek(&b), sh_buf_avail(&a)) != 0)
            abort(); /* ... to the same settings */
        sh_config_release(&again);
        sh_buf_release(&a);
        sh_buf_release(&b);
    } else if (sh_buf_avail(&err) == 0) {
        abort(); /* every error has a reason */
    }
    sh_config_release(&cfg);
    sh_buf_release(&err);
}

static void fuzz_env(const uint8_t *data, size_t size)
{
    char **envp, *copy;
    split(data, size, &envp, &copy);
    sh_config_t cfg;
    sh_buf_t err = SH_BUF_INIT;
    sh_config_init(&cfg);
    if (sh_config_apply_env(&cfg, envp, &err) < 0 && sh_buf_avail(&err) == 0)
        abort();
    sh_config_release(&cfg);
    sh_buf_release(&err);
    free(envp);
    free(copy);
}

static void fuzz_argv(const uint8_t *data, size_t size)
{
    char **args, *copy;
    size_t n = split(data, size, &args, &copy);
    /* args[0] plays argv[0]; -c/--config would read files. */
    for (size_t i = 1; i < n; i++)
        if (strncmp(args[i], "-c", 2) == 0 || strncmp(args[i], "--config", 8) == 0)
            goto out;
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    int rc = sh_config_load_default(&cfg, NULL, (int)n, args, NULL, &cmd, &err);
    if (rc < 0 && sh_buf_avail(&err) == 0)
        abort();
    if (rc == 0 && cmd.name && (cmd.argc < 1 || cmd.argv[0] != cmd.name))
        abort();
    sh_config_release(&cfg);
    sh_buf_release(&err);
out:
    free(args);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 'E')
        fuzz_env(data + 1, size - 1);
    else if (size > 0 && data[0] == 'A')
        fuzz_argv(data + 1, size - 1);
    else
        fuzz_text(data, size);
    return 0;
}
