/*
 * sse_buf.h: a growing byte buffer and a reader over bytes, the encoding of
 * the relay protocol's payloads: 32-bit and 64-bit integers and
 * length-prefixed, NUL-terminated strings.  Buffers are malloc'ed and
 * owned by whoever holds the sse_buf_t; each is used from one thread at a
 * time.
 */
#ifndef SSE_BUF_H
#define SSE_BUF_H

#include <stddef.h>
#include <stdint.h>

/* The longest string a buffer takes (and so a frame's payload). */
#define SSE_BUF_MAX_STR (16u * 1024u * 1024u)

typedef struct {
    char  *data;
    size_t len;
    size_t cap;
} sse_buf_t;

/* Append n bytes; returns 0, or -1 when out of memory (buffer unchanged). */
int sse_buf_put(sse_buf_t *b, const void *p, size_t n);
/* Append a u32, a u64 (as two u32: high, low) / a length-prefixed
 * NUL-terminated string; 0 or -1. */
int sse_buf_put_u32(sse_buf_t *b, uint32_t v);
int sse_buf_put_u64(sse_buf_t *b, uint64_t v);
int sse_buf_put_str(sse_buf_t *b, const char *s, size_t n);
/* Drop the first n bytes (after they were written out). */
void sse_buf_consume(sse_buf_t *b, size_t n);
void sse_buf_free(sse_buf_t *b);

/* Reading a payload. */
typedef struct {
    const char *p;
    size_t left;
} sse_rd_t;

/* Each returns 0, or -1 when the payload is short or malformed. */
int sse_rd_u32(sse_rd_t *rd, uint32_t *v);
int sse_rd_u64(sse_rd_t *rd, uint64_t *v);
int sse_rd_str(sse_rd_t *rd, const char **s, size_t *n);

#endif
