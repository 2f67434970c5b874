/*
 * sse_proto.c: the relay protocol's frames (see sse_proto.h).
 */
#include <string.h>
#include <time.h>

#include "sse_proto.h"

long sse_frame_begin(sse_buf_t *b, uint32_t type, uint32_t seq)
{
    sse_frame_hdr_t h;
    long off = (long)b->len;

    h.type = (type & SSE_FRAME_OP_MASK) | SSE_FRAME_FORMAT << 16;
    h.seq = seq;
    h.len = 0;
    return sse_buf_put(b, &h, sizeof(h)) ? -1 : off;
}

void sse_frame_end(sse_buf_t *b, long off)
{
    sse_frame_hdr_t h;

    memcpy(&h, b->data + off, sizeof(h));
    h.len = (uint32_t)(b->len - (size_t)off - sizeof(h));
    memcpy(b->data + off, &h, sizeof(h));
}

void sse_frame_stamp(sse_buf_t *req)
{
    sse_frame_hdr_t h;

    memcpy(&h, req->data, sizeof(h));
    h.seq = sse_clock_ms();
    memcpy(req->data, &h, sizeof(h));
}

int sse_frame_hdr_read(const char *in, sse_frame_hdr_t *h)
{
    memcpy(h, in, sizeof(*h));
    if (sse_frame_format(h) != SSE_FRAME_FORMAT) {
        return -2;
    }
    h->type &= SSE_FRAME_OP_MASK;
    return h->len > SSE_PROTO_MAX_FRAME ? -1 : 0;
}

int sse_frame_peek(const char *in, size_t len, sse_frame_hdr_t *h,
                   const char **payload)
{
    int rc;

    if (len < sizeof(*h)) {
        return 0;
    }
    if ((rc = sse_frame_hdr_read(in, h)) < 0) {
        return rc;
    }
    if (len - sizeof(*h) < h->len) {
        return 0;
    }
    *payload = in + sizeof(*h);
    return 1;
}

int sse_event_frame_put(sse_buf_t *b, uint32_t fseq, const char *chan,
                        size_t clen, const char *bytes, size_t len,
                        uint64_t seq)
{
    long off = sse_frame_begin(b, SSE_OP_EVENT, fseq);

    if (off < 0) {
        return -1;
    }
    if (sse_buf_put_str(b, chan, clen) || sse_buf_put_str(b, bytes, len)
        || sse_buf_put_u64(b, seq)) {
        b->len = (size_t)off;
        return -1;
    }
    sse_frame_end(b, off);
    return 0;
}

long sse_run_read(const char *in, size_t len, sse_run_t *run)
{
    sse_frame_hdr_t h;
    const char *payload, *name, *bytes;
    size_t pos = 0, next = 0, total = 0, nlen, blen;
    int has_sync = 0;
    uint64_t mark = 0, seq;

    run->n = 0;
    run->has_sync = 0;
    while (run->n < SSE_RUN_MAX_EVENTS
           && sse_frame_peek(in + next, len - next, &h, &payload) == 1) {
        sse_rd_t rd = { payload, h.len };

        if (h.type == SSE_OP_SYNC && run->n > 0) {
            /* part of the run only if an EVENT of it follows */
            if (sse_rd_u64(&rd, &mark)) {
                return -1;
            }
            has_sync = 1;
            next += sizeof(h) + h.len;
            continue;
        }
        if (h.type != SSE_OP_EVENT) {
            break;
        }
        if (sse_rd_str(&rd, &name, &nlen) || sse_rd_str(&rd, &bytes, &blen)
            || sse_rd_u64(&rd, &seq)) {
            return -1;
        }
        if (run->n == 0) {
            run->name = name;
            run->nlen = nlen;
        }
        else if (nlen != run->nlen || memcmp(name, run->name, nlen)
                 || total + blen > SSE_RUN_MAX_BYTES) {
            break;
        }
        run->ev[run->n].bytes = bytes;
        run->ev[run->n].len = blen;
        run->ev[run->n].seq = seq;
        run->n++;
        total += blen;
        next += sizeof(h) + h.len;
        pos = next;
        run->has_sync = has_sync;
        run->sync_mark = mark;
    }
    return (long)pos;
}

unsigned sse_run_first_after(const sse_run_t *run, uint64_t after)
{
    unsigned k = 0;

    while (k < run->n && run->ev[k].seq <= after) {
        k++;
    }
    return k;
}

size_t sse_run_len(const sse_run_t *run, unsigned k)
{
    size_t len = 0;

    for (; k < run->n; k++) {
        len += run->ev[k].len;
    }
    return len;
}

void sse_run_copy(const sse_run_t *run, unsigned k, char *dst)
{
    for (; k < run->n; k++) {
        memcpy(dst, run->ev[k].bytes, run->ev[k].len);
        dst += run->ev[k].len;
    }
}

uint64_t sse_clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint32_t sse_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u
                      + (uint64_t)ts.tv_nsec / 1000000u);
}

