/* fuzz_channels.c: libFuzzer target for sse_channels_parse and sse_channel_valid, which
 * read the channel lists of ?channel=, of publish forms and of SSEChannel.
 *
 * The first input byte picks 0..3 names already in the output array (bits 0-1), from a
 * fixed set, since the handler appends list after list into one array; the rest is the
 * list as a C string (it ends at a NUL, as a query value does). The result is compared
 * with a reference written from sse_event.h's contract: items split at commas and ASCII
 * whitespace; refused iff some item is not 1..128 bytes of [A-Za-z0-9._~:@/-], and then
 * the array is as it was; else exactly the new names, in order, each once, and no name
 * in the whole array twice. sse_channel_valid must agree with the reference rule on
 * the raw input too.
 */
#include "fuzz_common.h"

#include <apr_tables.h>

#include "sse_event.h"

static int ref_name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr("._~:@/-", c));
}

static int ref_name_ok(const char *s, size_t n)
{
    size_t i;

    if (n < 1 || n > 128)
        return 0;
    for (i = 0; i < n; i++)
        if (!ref_name_byte((unsigned char)s[i]))
            return 0;
    return 1;
}

static int ref_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f'
        || c == '\r';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of the first of out[0..upto) equal to s[0..n), or -1. */
static int find(const apr_array_header_t *out, int upto, const char *s, size_t n)
{
    int i;

    for (i = 0; i < upto; i++) {
        const char *c = APR_ARRAY_IDX(out, i, const char *);
        if (strlen(c) == n && !memcmp(c, s, n))
            return i;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const known[] = { "news", "a", "x.y", "A" };
    apr_pool_t *p = fz_pool();
    apr_array_header_t *out = apr_array_make(p, 1, sizeof(const char *));
    const char *before[4], **sorted;
    const char *err, *s;
    char *list;
    int nbefore, i, want_bad = 0, next;

    FZ_ASSERT(sse_channel_valid((const char *)data, size)
              == ref_name_ok((const char *)data, size));

    nbefore = fz_take(&data, &size) & 3;
    for (i = 0; i < nbefore; i++)
        before[i] = APR_ARRAY_PUSH(out, const char *) = known[i];
    list = fz_cstr(data, size);

    err = sse_channels_parse(p, list, out);

    /* the reference: walk the items, checking each against out */
    next = nbefore;
    for (s = list; *s;) {
        size_t n = 0;
        while (*s && ref_sep(*s))
            s++;
        while (s[n] && !ref_sep(s[n]))
            n++;
        if (!n)
            break;
        if (!ref_name_ok(s, n)) {
            want_bad = 1;
            break;
        }
        if (!err && find(out, next, s, n) < 0) {
            /* a new name: it must be the next one appended */
            FZ_ASSERT(next < out->nelts);
            FZ_ASSERT(strlen(APR_ARRAY_IDX(out, next, const char *)) == n);
            FZ_ASSERT(!memcmp(APR_ARRAY_IDX(out, next, const char *), s, n));
            next++;
        }
        s += n;
    }

    if (err) {
        if (!want_bad || !fz_reason_ok(err)) {
            fprintf(stderr, "refused: %s\n", err);
            fz_dump("list", list, strlen(list));
            abort();
        }
    }
    else {
        FZ_ASSERT(!want_bad);
        FZ_ASSERT(next == out->nelts);
    }
    FZ_ASSERT(out->nelts >= nbefore);
    for (i = 0; i < nbefore; i++)
        FZ_ASSERT(APR_ARRAY_IDX(out, i, const char *) == before[i]);
    if (err)
        FZ_ASSERT(out->nelts == nbefore);

    /* no name twice */
    sorted = malloc(sizeof(*sorted) * (size_t)(out->nelts + 1));
    if (!sorted)
        abort();
    for (i = 0; i < out->nelts; i++) {
        sorted[i] = APR_ARRAY_IDX(out, i, const char *);
        FZ_ASSERT(sse_channel_valid(sorted[i], strlen(sorted[i])));
    }
    qsort(sorted, (size_t)out->nelts, sizeof(*sorted), cmp_str);
    for (i = 1; i < out->nelts; i++)
        FZ_ASSERT(strcmp(sorted[i - 1], sorted[i]) != 0);
    free(sorted);

    free(list);
    fz_done();
    return 0;
}
