/*
 * sse_update.c: a Mercure update's tail (see sse_update.h).
 */
#include <string.h>

#include "apr_strings.h"

#include "sse_update.h"

#define UPDATE_MARK '\x1f'
#define TOPIC_END   '\x1e'

const char *sse_update_tail(apr_pool_t *p, int private,
                            const char *const *topics, int n)
{
    size_t len = 4;
    char *tail, *q;
    int i;

    for (i = 0; i < n; i++) {
        len += strlen(topics[i]) + 1;
    }
    q = tail = apr_palloc(p, len);
    *q++ = UPDATE_MARK;
    *q++ = private ? '1' : '0';
    for (i = 0; i < n; i++) {
        size_t tl = strlen(topics[i]);
        memcpy(q, topics[i], tl);
        q += tl;
        *q++ = TOPIC_END;
    }
    *q++ = '\n';
    *q = '\0';
    return tail;
}

size_t sse_update_read(const char *bytes, size_t len, sse_update_t *u)
{
    const char *end = bytes + len, *p = bytes, *nl;

    memset(u, 0, sizeof(*u));
    while ((p = memchr(p, '\n', (size_t)(end - p))) && p + 1 < end
           && p[1] != '\n') {
        p++;
    }
    if (!p || p + 1 >= end) {
        return 0;
    }
    u->event = bytes;
    u->event_len = (size_t)(p + 2 - bytes);
    p += 2;
    if (p == end || *p != UPDATE_MARK) {
        return u->event_len;    /* an event without a tail */
    }
    if (end - p < 3 || !(nl = memchr(p, '\n', (size_t)(end - p)))) {
        return 0;
    }
    u->private = p[1] == '1';
    u->topics = p + 2;
    u->topics_len = (size_t)(nl - u->topics);
    return (size_t)(nl + 1 - bytes);
}

int sse_update_topic(const sse_update_t *u, size_t *pos, const char **t,
                     size_t *tlen)
{
    const char *s, *e;

    if (*pos >= u->topics_len) {
        return 0;
    }
    s = u->topics + *pos;
    e = memchr(s, TOPIC_END, u->topics_len - *pos);
    if (!e) {
        e = u->topics + u->topics_len;
    }
    *t = s;
    *tlen = (size_t)(e - s);
    *pos = (size_t)(e - u->topics) + 1;
    return 1;
}
