/* fuzz_common.h: what every mod_sse libFuzzer target shares.
 *
 * One APR pool for the whole run, cleared after each input (fz_pool / fz_done), so a
 * target allocates as the module does. fuzz_palloc.c makes every apr_palloc an
 * exact-size malloc, which is what lets ASan see a write past a pool buffer.
 * FZ_ASSERT aborts with the failed condition and the input's shape, so a property
 * violation leaves a crash artifact exactly like a memory error does.
 * Include from exactly one .c file per target.
 */
#ifndef SSE_FUZZ_COMMON_H
#define SSE_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

/* fuzz_palloc.c: keep the blocks handed out so far for good; free those handed out
 * since the last keep. */
void fz_palloc_keep(void);
void fz_palloc_release(void);

static apr_pool_t *fz_global_pool;

#define FZ_ASSERT(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

/* Prints s[0..n) with non-printable bytes as \xNN, for a failure message. */
static inline void fz_dump(const char *label, const char *s, size_t n)
{
    size_t i;

    fprintf(stderr, "  %s (%zu bytes): ", label, n);
    if (!s) {
        fputs("NULL\n", stderr);
        return;
    }
    fputc('"', stderr);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02X", c);
    }
    fputs("\"\n", stderr);
}

/* The pool for one input; call fz_done when the input is finished. */
static inline apr_pool_t *fz_pool(void)
{
    if (!fz_global_pool) {
        if (apr_initialize() != APR_SUCCESS
            || apr_pool_create(&fz_global_pool, NULL) != APR_SUCCESS)
            abort();
        fz_palloc_keep();
    }
    return fz_global_pool;
}

static inline void fz_done(void)
{
    apr_pool_clear(fz_global_pool);
    fz_palloc_release();
}

/* An exact-size malloc copy of data[0..n) plus a NUL at [n], so reading one byte past
 * the NUL is an ASan error (libFuzzer's own buffer has no NUL). Free with free(). */
static inline char *fz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    if (!s)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* sse_event.h promises reasons are one line of printable ASCII. */
static inline int fz_reason_ok(const char *r)
{
    if (!r || !*r)
        return 0;
    for (; *r; r++)
        if ((unsigned char)*r < 0x20 || (unsigned char)*r > 0x7e)
            return 0;
    return 1;
}

/* Takes the next byte of the input (0 once it is used up). */
static inline uint8_t fz_take(const uint8_t **data, size_t *n)
{
    uint8_t b;

    if (!*n)
        return 0;
    b = **data;
    (*data)++;
    (*n)--;
    return b;
}

#endif /* SSE_FUZZ_COMMON_H */
