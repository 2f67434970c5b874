/* fuzz_event.h: comparing and printing sse_event_t values, for the event targets.
 * Include after fuzz_common.h.
 */
#ifndef SSE_FUZZ_EVENT_H
#define SSE_FUZZ_EVENT_H

#include "sse_event.h"

static inline int fz_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static inline int fz_event_eq(const sse_event_t *a, const sse_event_t *b)
{
    return fz_str_eq(a->id, b->id) && fz_str_eq(a->event, b->event)
        && fz_str_eq(a->retry, b->retry) && a->data_len == b->data_len
        && (a->data_len == 0 || !memcmp(a->data, b->data, a->data_len));
}

static inline void fz_event_dump(const char *label, const sse_event_t *ev)
{
    fprintf(stderr, " %s:\n", label);
    fz_dump("id", ev->id, ev->id ? strlen(ev->id) : 0);
    fz_dump("event", ev->event, ev->event ? strlen(ev->event) : 0);
    fz_dump("retry", ev->retry, ev->retry ? strlen(ev->retry) : 0);
    fz_dump("data", ev->data, ev->data_len);
}

/* The events of two parses are the same list. */
static inline int fz_events_eq(const apr_array_header_t *a, const apr_array_header_t *b)
{
    int i;

    if (a->nelts != b->nelts)
        return 0;
    for (i = 0; i < a->nelts; i++)
        if (!fz_event_eq(&APR_ARRAY_IDX(a, i, sse_event_t), &APR_ARRAY_IDX(b, i, sse_event_t)))
            return 0;
    return 1;
}

/* What every event sse_event_parse_stream accepts must satisfy. */
static inline void fz_event_sane(apr_pool_t *p, const sse_event_t *ev)
{
    FZ_ASSERT(ev->data != NULL);
    FZ_ASSERT(ev->data[ev->data_len] == '\0');
    FZ_ASSERT(strlen(ev->data) == ev->data_len);
    FZ_ASSERT(!memchr(ev->data, '\r', ev->data_len));
    FZ_ASSERT(!ev->id || (*ev->id && !strpbrk(ev->id, "\r\n")));
    FZ_ASSERT(!ev->event || (*ev->event && !strpbrk(ev->event, "\r\n")));
    FZ_ASSERT(!ev->retry || (strspn(ev->retry, "0123456789") == strlen(ev->retry)
                             && *ev->retry && strlen(ev->retry) <= 10));
    FZ_ASSERT(sse_event_check(p, ev) == NULL);
}

#endif /* SSE_FUZZ_EVENT_H */
