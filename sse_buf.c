/*
 * sse_buf.c: the byte buffer and the payload reader (see sse_buf.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sse_buf.h"

int sse_buf_put(sse_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap - b->len < n) {
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (!d) {
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return 0;
}

int sse_buf_put_u32(sse_buf_t *b, uint32_t v)
{
    return sse_buf_put(b, &v, sizeof(v));
}

int sse_buf_put_u64(sse_buf_t *b, uint64_t v)
{
    uint32_t two[2] = { (uint32_t)(v >> 32), (uint32_t)v };

    return sse_buf_put(b, two, sizeof(two));
}

int sse_buf_put_str(sse_buf_t *b, const char *s, size_t n)
{
    if (n > SSE_BUF_MAX_STR) {
        return -1;
    }
    if (sse_buf_put_u32(b, (uint32_t)n) || sse_buf_put(b, s, n)
        || sse_buf_put(b, "", 1)) {
        return -1;
    }
    return 0;
}

void sse_buf_consume(sse_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void sse_buf_free(sse_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int sse_rd_u32(sse_rd_t *rd, uint32_t *v)
{
    if (rd->left < sizeof(*v)) {
        return -1;
    }
    memcpy(v, rd->p, sizeof(*v));
    rd->p += sizeof(*v);
    rd->left -= sizeof(*v);
    return 0;
}

int sse_rd_u64(sse_rd_t *rd, uint64_t *v)
{
    uint32_t hi, lo;

    if (rd->left < 2 * sizeof(hi)) {
        return -1;
    }
    sse_rd_u32(rd, &hi);
    sse_rd_u32(rd, &lo);
    *v = ((uint64_t)hi << 32) | lo;
    return 0;
}

int sse_rd_str(sse_rd_t *rd, const char **s, size_t *n)
{
    uint32_t len;

    if (sse_rd_u32(rd, &len) || rd->left < (size_t)len + 1
        || rd->p[len] != '\0') {
        return -1;
    }
    *s = rd->p;
    *n = len;
    rd->p += (size_t)len + 1;
    rd->left -= (size_t)len + 1;
    return 0;
}

