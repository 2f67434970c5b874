/*
 * sse_wire.c: the relay's requests, its RESULT and the text answers in it
 * (see sse_wire.h).
 *
 * PUBLISH payload: str key, str id ("" = assign one), str event, str
 * retry, str data, u32 history count, u32 history age in seconds, str
 * tail ("" = none).
 * RESULT payload: str id, u32 n, n x str (one text per broker).
 */
#include <string.h>

#include "sse_wire.h"

int sse_wire_publish_put(sse_buf_t *b, const sse_wire_publish_t *pub)
{
    const sse_event_t *ev = &pub->ev;
    const char *f[4] = { pub->key, ev->id ? ev->id : "",
                         ev->event ? ev->event : "",
                         ev->retry ? ev->retry : "" };
    long off = sse_frame_begin(b, SSE_OP_PUBLISH, 0);
    int i;

    for (i = 0; i < 4 && off >= 0; i++) {
        if (sse_buf_put_str(b, f[i], strlen(f[i]))) {
            return -1;
        }
    }
    if (off < 0 || sse_buf_put_str(b, ev->data ? ev->data : "", ev->data_len)
        || sse_buf_put_u32(b, pub->keep) || sse_buf_put_u32(b, pub->age)
        || sse_buf_put_str(b, pub->tail ? pub->tail : "",
                           pub->tail ? strlen(pub->tail) : 0)) {
        return -1;
    }
    sse_frame_end(b, off);
    return 0;
}

int sse_wire_publish_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_publish_t *pub)
{
    const char *f[5], *tail;
    size_t n[5], tlen;
    int i;

    for (i = 0; i < 5; i++) {
        if (sse_rd_str(rd, &f[i], &n[i])) {
            return -1;
        }
    }
    if (sse_rd_u32(rd, &pub->keep) || sse_rd_u32(rd, &pub->age)
        || sse_rd_str(rd, &tail, &tlen)) {
        return -1;
    }
    pub->tail = tlen ? tail : NULL;
    if (tlen && (!sse_key_is_hub(f[0], n[0]) || tail[0] != '\x1f'
                 || tail[tlen - 1] != '\n' || memchr(tail, '\n', tlen - 1))) {
        return -1;
    }
    pub->key = f[0];
    memset(&pub->ev, 0, sizeof(pub->ev));
    pub->ev.id = n[1] ? f[1] : NULL;
    pub->ev.event = n[2] ? f[2] : NULL;
    pub->ev.retry = n[3] ? f[3] : NULL;
    pub->ev.data = f[4];
    pub->ev.data_len = n[4];
    if (!sse_key_valid(f[0], n[0]) || sse_event_check(p, &pub->ev)) {
        return -1;
    }
    return 0;
}

/* Each text of a RESULT takes at least its length and its NUL. */
#define SSE_WIRE_MIN_STR 5

int sse_wire_result_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_result_t *res)
{
    const char *s;
    size_t n;
    uint32_t i, count;

    if (sse_rd_str(rd, &res->id, &n) || sse_rd_u32(rd, &count)
        || count > rd->left / SSE_WIRE_MIN_STR) {
        return -1;              /* a count the payload cannot hold */
    }
    res->replies = apr_array_make(p, count ? (int)count : 1, sizeof(char *));
    for (i = 0; i < count; i++) {
        if (sse_rd_str(rd, &s, &n)) {
            return -1;
        }
        APR_ARRAY_PUSH(res->replies, const char *) = s;
    }
    return 0;
}

int sse_wire_line(char **text, char eol, char sep, char **f, int max)
{
    char *p = *text, *end;
    int n = 0;

    while (*p == eol) {
        p++;
    }
    if (!*p) {
        *text = p;
        return 0;
    }
    if ((end = strchr(p, eol)) != NULL) {
        *end = '\0';
        *text = end + 1;
    }
    else {
        *text = p + strlen(p);
    }
    f[n++] = p;
    while (n < max && (p = strchr(p, sep)) != NULL) {
        *p++ = '\0';
        f[n++] = p;
    }
    return n;
}

/* --- between a broker and the relay ------------------------------------- */

/* End the frame begun at off, or take it back when ok is false. */
static int frame_close(sse_buf_t *b, long off, int ok)
{
    if (off < 0) {
        return -1;
    }
    if (!ok) {
        b->len = (size_t)off;
        return -1;
    }
    sse_frame_end(b, off);
    return 0;
}

int sse_wire_hello_put(sse_buf_t *b, uint32_t pid)
{
    long off = sse_frame_begin(b, SSE_OP_HELLO, 0);

    return frame_close(b, off, off >= 0 && !sse_buf_put_u32(b, pid));
}

int sse_wire_hello_get(sse_rd_t *rd, uint32_t *pid)
{
    return sse_rd_u32(rd, pid);
}

int sse_wire_delta_put(sse_buf_t *deltas, const char *key, size_t len,
                       int32_t delta)
{
    size_t before = deltas->len;

    if (sse_buf_put_str(deltas, key, len)
        || sse_buf_put_u32(deltas, (uint32_t)delta)) {
        deltas->len = before;
        return -1;
    }
    return 0;
}

int sse_wire_count_put(sse_buf_t *b, uint32_t n, const sse_buf_t *deltas)
{
    long off = sse_frame_begin(b, SSE_OP_COUNT, 0);

    return frame_close(b, off, off >= 0 && !sse_buf_put_u32(b, n)
                               && !sse_buf_put(b, deltas->data, deltas->len));
}

int sse_wire_count_get(sse_rd_t *rd, uint32_t *n)
{
    return sse_rd_u32(rd, n);
}

int sse_wire_delta_get(sse_rd_t *rd, const char **key, size_t *len,
                       int32_t *delta)
{
    uint32_t d;

    if (sse_rd_str(rd, key, len) || sse_rd_u32(rd, &d)) {
        return -1;
    }
    *delta = (int32_t)d;
    return 0;
}

int sse_wire_resume_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                        const char *last_id, const char *const *keys, int n)
{
    long off = sse_frame_begin(b, op, seq);
    int i, ok = off >= 0 && !sse_buf_put_str(b, last_id, strlen(last_id))
                && !sse_buf_put_u32(b, (uint32_t)n);

    for (i = 0; ok && i < n; i++) {
        ok = !sse_buf_put_str(b, keys[i], strlen(keys[i]));
    }
    return frame_close(b, off, ok);
}

/* A count and that many channel keys, as a NULL-ended array in p. */
static int rd_keys(apr_pool_t *p, sse_rd_t *rd, const char ***keys,
                   uint32_t *n)
{
    size_t len;
    uint32_t i;

    if (sse_rd_u32(rd, n) || *n > SSE_WIRE_MAX_RESUME) {
        return -1;
    }
    *keys = apr_palloc(p, (*n + 1) * sizeof(char *));
    for (i = 0; i < *n; i++) {
        if (sse_rd_str(rd, &(*keys)[i], &len)) {
            return -1;
        }
    }
    (*keys)[*n] = NULL;
    return 0;
}

int sse_wire_resume_get(apr_pool_t *p, sse_rd_t *rd, const char **last_id,
                        const char ***keys, uint32_t *n)
{
    size_t len;

    return sse_rd_str(rd, last_id, &len) ? -1 : rd_keys(p, rd, keys, n);
}

int sse_wire_catchup_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                         uint64_t since, const char *const *keys, int n)
{
    long off = sse_frame_begin(b, op, seq);
    int i, ok = off >= 0 && !sse_buf_put_u64(b, since)
                && !sse_buf_put_u32(b, (uint32_t)n);

    for (i = 0; ok && i < n; i++) {
        ok = !sse_buf_put_str(b, keys[i], strlen(keys[i]));
    }
    return frame_close(b, off, ok);
}

int sse_wire_catchup_get(apr_pool_t *p, sse_rd_t *rd, uint64_t *since,
                         const char ***keys, uint32_t *n)
{
    return sse_rd_u64(rd, since) ? -1 : rd_keys(p, rd, keys, n);
}

int sse_wire_refused_put(sse_buf_t *b, uint32_t seq, const char *why)
{
    long off = sse_frame_begin(b, SSE_OP_REFUSED, seq);

    return frame_close(b, off, off >= 0
                               && !sse_buf_put_str(b, why, strlen(why)));
}

int sse_wire_refused_get(sse_rd_t *rd, const char **why, size_t *len)
{
    return sse_rd_str(rd, why, len);
}

int sse_wire_replayed_put(sse_buf_t *b, uint32_t seq, int lost,
                          const char *events, size_t len, uint64_t upto)
{
    long off = sse_frame_begin(b, SSE_OP_REPLAYED, seq);

    return frame_close(b, off, off >= 0 && !sse_buf_put_u32(b, lost != 0)
                               && !sse_buf_put_str(b, events ? events : "", len)
                               && !sse_buf_put_u64(b, upto));
}

int sse_wire_replayed_get(sse_rd_t *rd, uint32_t *lost, const char **events,
                          size_t *len, uint64_t *upto)
{
    return sse_rd_u32(rd, lost) || sse_rd_str(rd, events, len)
           || sse_rd_u64(rd, upto) ? -1 : 0;
}

int sse_wire_mark_put(sse_buf_t *b, uint32_t op, uint64_t mark)
{
    long off = sse_frame_begin(b, op, 0);

    return frame_close(b, off, off >= 0 && !sse_buf_put_u64(b, mark));
}

int sse_wire_mark_get(sse_rd_t *rd, uint64_t *mark)
{
    return sse_rd_u64(rd, mark);
}

int sse_wire_request_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                         const char *key)
{
    long off = sse_frame_begin(b, op, seq);

    return frame_close(b, off, off >= 0
                               && (!key || !sse_buf_put_str(b, key, strlen(key))));
}

int sse_wire_request_get(sse_rd_t *rd, const char **key, size_t *len)
{
    return sse_rd_str(rd, key, len);
}

int sse_wire_reply_put(sse_buf_t *b, uint32_t seq, const char *text,
                       size_t len)
{
    long off = sse_frame_begin(b, SSE_OP_REPLY, seq);

    return frame_close(b, off, off >= 0
                               && !sse_buf_put_str(b, text ? text : "", len));
}

int sse_wire_reply_get(sse_rd_t *rd, const char **text, size_t *len)
{
    return sse_rd_str(rd, text, len);
}

int sse_wire_text_add(sse_buf_t *texts, const char *text, size_t len)
{
    size_t before = texts->len;

    if (sse_buf_put_str(texts, text ? text : "", len)) {
        texts->len = before;
        return -1;
    }
    return 0;
}

int sse_wire_text_get(sse_rd_t *rd, const char **text, size_t *len)
{
    return sse_rd_str(rd, text, len);
}

int sse_wire_result_put(sse_buf_t *b, uint32_t seq, const char *id,
                        uint32_t n, const sse_buf_t *texts)
{
    long off = sse_frame_begin(b, SSE_OP_RESULT, seq);

    return frame_close(b, off, off >= 0 && !sse_buf_put_str(b, id, strlen(id))
                               && !sse_buf_put_u32(b, n)
                               && (!texts || !sse_buf_put(b, texts->data,
                                                          texts->len)));
}
