/* fuzz_ref.h: independent reference implementations the fuzz targets compare against.
 *
 * Written from the specifications, not from sse_event.c, so that a shared mistake is
 * unlikely: a UTF-8 validator that decodes code points and range-checks them (RFC 3629),
 * and the WHATWG HTML "event stream interpretation" algorithm that a browser's
 * EventSource runs (section 9.2.6), which is the parser our serialized bytes are for.
 * Everything returned lives in the pool given.
 */
#ifndef SSE_FUZZ_REF_H
#define SSE_FUZZ_REF_H

#include <apr_pools.h>
#include <apr_tables.h>

/* 1 if s[0..len) is well-formed UTF-8, else 0. */
int ref_utf8_valid(const char *s, apr_size_t len);

/* One event a browser dispatches. */
typedef struct {
    const char *type;        /* "message" when the block had no event field */
    const char *data;        /* the data buffer without its last LF, NUL-terminated */
    apr_size_t data_len;
    const char *last_id;     /* the stream's last event ID at dispatch ("" if none yet) */
    const char *retry;       /* digits of a valid retry field in this block, or NULL */
} ref_event_t;

/* Runs the WHATWG algorithm over the whole of body[0..len), which must be valid UTF-8,
 * and returns the events dispatched, in order (an array of ref_event_t). As in a
 * browser, an unterminated last block is not dispatched, nor is a block without data. */
apr_array_header_t *ref_whatwg_parse(apr_pool_t *p, const char *body, apr_size_t len);

#endif /* SSE_FUZZ_REF_H */
