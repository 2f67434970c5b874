/*
 * sse_wire.c: the relay's requests, its RESULT and the text answers in it
 * (see sse_wire.h).
 *
 * PUBLISH payload: str key, str id ("" = assign one), str event, str
 * retry, str data, u32 history count, u32 history age in seconds.
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
        || sse_buf_put_u32(b, pub->keep) || sse_buf_put_u32(b, pub->age)) {
        return -1;
    }
    sse_frame_end(b, off);
    return 0;
}

int sse_wire_publish_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_publish_t *pub)
{
    const char *f[5];
    size_t n[5];
    int i;

    for (i = 0; i < 5; i++) {
        if (sse_rd_str(rd, &f[i], &n[i])) {
            return -1;
        }
    }
    if (sse_rd_u32(rd, &pub->keep) || sse_rd_u32(rd, &pub->age)) {
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
