/* sse_event.h: event framing for mod_sse, with no httpd in it.
 *
 * Channel names, publisher input checks, the canonical text/event-stream bytes of one
 * event, and a strict parser for a publisher's ready-made stream (PostRaw). Only APR is
 * used, so the module, the relay daemon, the unit tests and fuzz targets link the same
 * code. Nothing here keeps state: any thread may call any function, passing a pool that
 * thread owns; every result lives in that pool. Reasons returned on error are one line of
 * printable ASCII (bytes outside it appear as \xNN), fit for a log or a 400 response.
 */
#ifndef SSE_EVENT_H
#define SSE_EVENT_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct {
    const char *id;      /* NULL = none (server assigns one later) */
    const char *event;   /* NULL = none */
    const char *retry;   /* NULL = none; else digits only */
    const char *data;    /* never NULL after parsing; may be "" */
    apr_size_t data_len;
} sse_event_t;

#define SSE_CHANNEL_MAX 128

/* Returns 1 if name[0..len) is a valid channel name: 1..128 bytes of [A-Za-z0-9._~:@/-],
 * else 0. */
int sse_channel_valid(const char *name, apr_size_t len);

/* Namespaces.  A channel belongs to a namespace (by default its virtual host's
 * ServerName), and everything past the request handlers -- the brokers' tables, the
 * relay's census and history, Redis -- knows it by its key: the namespace, '/', the
 * name.  A namespace has no '/', so the first '/' of a key splits it and names in
 * different namespaces never collide. */
#define SSE_NAMESPACE_MAX 255
#define SSE_KEY_MAX (SSE_NAMESPACE_MAX + 1 + SSE_CHANNEL_MAX)

/* Returns 1 if ns[0..len) is a valid namespace: 1..255 bytes of [A-Za-z0-9._~:@-]. */
int sse_namespace_valid(const char *ns, apr_size_t len);

/* Returns 1 if key[0..len) is a valid key: a namespace, '/', a channel name
 * (or SSE_HUB_CHANNEL). */
int sse_key_valid(const char *key, apr_size_t len);

/* A namespace's Mercure hub (sse_hub.c) publishes every update on one
 * channel of its own, SSE_HUB_CHANNEL: a name no channel list, query or
 * SSEChannel can give ('#' is not a channel byte), so no native stream
 * reaches a hub's updates; its topics travel with each update
 * (sse_update.h) and the broker matches them (sse_broker_hub.c). */
#define SSE_HUB_CHANNEL "#hub"

/* Returns 1 if key[0..len) is a namespace's hub channel, else 0. */
int sse_key_is_hub(const char *key, apr_size_t len);

/* The key of channel name in namespace ns (both valid), in p. */
const char *sse_key_make(apr_pool_t *p, const char *ns, const char *name);

/* The channel name of a key (what follows its first '/'), or key itself without one. */
const char *sse_key_name(const char *key);

/* A channel whose name begins with '@' is protected: only a stream location whose
 * SSEChannel computes it (and says SSEProtectedChannels on) serves it.  1 or 0. */
int sse_channel_protected(const char *name);

/* A host name made into a namespace: lower case, bytes a namespace cannot hold
 * become '_', cut to SSE_NAMESPACE_MAX; "_" for NULL or "".  In p. */
const char *sse_namespace_from_host(apr_pool_t *p, const char *host);

/* Splits list (items separated by commas and/or ASCII whitespace; empty items skipped;
 * NULL counts as empty), validates each and appends each name not already in out as a
 * pool-allocated const char * to out (an array of const char *).
 * Returns NULL, or a reason naming the bad item ("invalid channel name 'a;b'"); on error
 * out is left as it was. An empty list appends nothing and is not an error. */
const char *sse_channels_parse(apr_pool_t *p, const char *list, apr_array_header_t *out);

/* Returns 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0. */
int sse_utf8_valid(const char *s, apr_size_t len);

/* Checks an event before it is serialized: id and event, if set, must be non-empty
 * UTF-8 without CR or LF (being C strings they cannot hold NUL; sse_event_parse_stream
 * rejects a NUL in them itself); retry must be 1..10 ASCII digits; data must be UTF-8
 * without NUL (CR and LF split it into lines). data NULL with data_len 0 counts as "".
 * Returns NULL, or a reason such as "event name contains CR, LF or NUL". */
const char *sse_event_check(apr_pool_t *p, const sse_event_t *ev);

/* Serializes ev canonically with LF line ends: "id: ", "event: ", "retry: " lines for the
 * fields that are set, then one "data: " line per line of data (split on CRLF, CR or LF,
 * in any mix; empty data gives one empty line, data ending in a break gives a last
 * empty line), then a blank line. Assumes sse_event_check passed.
 * Returns the bytes (NUL-terminated for convenience) and their length in *len. */
char *sse_event_serialize(apr_pool_t *p, const sse_event_t *ev, apr_size_t *len);

/* Parses a text/event-stream body from a publisher into *out, an array of sse_event_t
 * that this function creates in p (even on error). WHATWG line rules (CRLF/CR/LF, one
 * leading BOM, ':' comments, "field:value" with one leading space dropped, a line without
 * ':' is a field with an empty value; data lines join with "\n"; a blank line or the end
 * of the body ends a block; blocks without any field are skipped), but strict: the body
 * must be UTF-8, an unknown field is an error, a NUL in id, event or retry is an error,
 * every event must pass sse_event_check, and a block without data gets data "".
 * Duplicate id, event or retry fields in a block: the last one wins, as in a browser.
 * Returns NULL, or a reason ending in where it was found, e.g.
 * "unknown field 'foo' (line 3)", "empty id (event 2 at line 5)", "no event in body". */
const char *sse_event_parse_stream(apr_pool_t *p, const char *body, apr_size_t len,
                                   apr_array_header_t **out);

/* Returns s as a JSON string literal with its quotes, escaping '"', '\\' and control
 * characters (\n, \r, \t, else \u00XX); other bytes are copied as they are, so s should
 * be UTF-8. NULL gives the JSON literal null (no quotes). */
char *sse_json_str(apr_pool_t *p, const char *s);

#endif /* SSE_EVENT_H */
