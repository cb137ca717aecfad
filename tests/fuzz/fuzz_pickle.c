/* fuzz_pickle — the restricted unpickler on arbitrary bytes. Whatever
 * decodes must be a tree jansson can dump, within the depth limit, and
 * every placeholder must name one of the attachments. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapter/pickle.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

/* Walks v; returns its depth. */
static int walk(const sh_pickle_t *pk, json_t *v)
{
    int deepest = 0;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v)) {
        sh_pickle_is_tuple(pk, v);
        json_array_foreach (v, i, e) {
            int d = walk(pk, e);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (!json_is_object(v))
        return 0;
    if (json_is_true(json_object_get(v, "_placeholder"))) {
        json_t *num = json_object_get(v, "num");
        /* Our own placeholders are exact; a dict that only looks like one
         * may say anything. */
        if (json_object_size(v) == 2 && json_is_integer(num) && json_integer_value(num) >= 0 &&
            (size_t)json_integer_value(num) < pk->nbins)
            check(pk->bins[json_integer_value(num)]->binary, "attachment is binary");
    }
    json_object_foreach (v, k, e) {
        int d = walk(pk, e);
        deepest = d > deepest ? d : deepest;
    }
    return deepest + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_pickle_t pk;
    const char *err = NULL;
    if (sh_pickle_decode(data, size, &pk, &err) != 0) {
        check(err != NULL, "rejection without a reason");
        check(pk.value == NULL && pk.bins == NULL && pk.tuples == NULL, "empty on failure");
        return 0;
    }
    check(pk.value != NULL, "value");
    check(pk.nbins <= SH_PICKLE_MAX_BINS, "attachment bound");
    check(walk(&pk, pk.value) <= SH_PICKLE_MAX_DEPTH, "depth bound");
    char *s = json_dumps(pk.value, JSON_COMPACT | JSON_ENCODE_ANY);
    check(s != NULL, "dumps (a cycle?)");
    free(s);
    sh_pickle_release(&pk);
    return 0;
}
