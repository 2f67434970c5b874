/*
 * sse_wire.h: the relay's requests, one put and one get per op, so that
 * every sender builds a frame the one way its receiver reads it; the get of
 * the relay's RESULT; and the one cutter of the text answers inside it.
 * Only APR, sse_proto.h and sse_event.h: linked by the module (worker
 * threads and the relay) and by tools/sse-publish.
 */
#ifndef SSE_WIRE_H
#define SSE_WIRE_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "sse_proto.h"
#include "sse_event.h"

/* A PUBLISH: the channel's key, the event (its id NULL: the relay assigns
 * one), and how much history its channel keeps (SSEHistory). */
typedef struct sse_wire_publish_t {
    const char *key;
    sse_event_t ev;
    uint32_t keep;              /* events */
    uint32_t age;               /* seconds */
    const char *tail;           /* NULL or "": none; a hub update's topics
                                   (sse_update.h), appended to its bytes */
} sse_wire_publish_t;

/* Append a whole PUBLISH frame (header seq 0: sse_relay_call stamps it)
 * to b.  Returns 0, or -1 when out of memory. */
int sse_wire_publish_put(sse_buf_t *b, const sse_wire_publish_t *pub);

/* Read a PUBLISH payload into pub (its strings point into the payload,
 * which holds them NUL-terminated) and check it: a valid key and an event
 * that sse_event_check() accepts, and a tail only on a hub's channel.  Returns 0, or -1. */
int sse_wire_publish_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_publish_t *pub);

/* A RESULT: the relay's answer to one request (sse_proto.h). */
typedef struct sse_wire_result_t {
    const char *id;             /* PUBLISH: the event's id; CHECK: "1" when
                                   history was lost, else "0"; STATS: the
                                   relay's own "key value" lines; else "" */
    apr_array_header_t *replies;/* const char *: one text per broker */
} sse_wire_result_t;

/* Read a RESULT payload into res.  Its strings point into the payload
 * (which holds them NUL-terminated), so they live as long as it does; the
 * array is allocated in p.  Used by sse_relay_call (worker threads) and
 * tools/sse-publish.  Returns 0, or -1 when the payload is short or
 * malformed (res is then not to be used). */
int sse_wire_result_get(apr_pool_t *p, sse_rd_t *rd, sse_wire_result_t *res);

/* Put a RESULT (seq: the request's) with id and the n texts in texts,
 * each added with sse_wire_text_add (a gather collects them as the
 * brokers' REPLYs come in); texts may be NULL when n is 0.  0 or -1. */
int sse_wire_text_add(sse_buf_t *texts, const char *text, size_t len);
/* The next text of such a list (rd over texts), as sse_wire_reply_get. */
int sse_wire_text_get(sse_rd_t *rd, const char **text, size_t *len);
int sse_wire_result_put(sse_buf_t *b, uint32_t seq, const char *id,
                        uint32_t n, const sse_buf_t *texts);

/* The text answers inside a RESULT (and the counts the relay keeps in
 * Redis) are lines of fields: CONNS "remote\tsince\tpid", LIST and the
 * cluster's counts "channel\tcount", STATS "key value".  One cutter for
 * all of them, in place: no allocation, no APR.
 *
 * Cut the next non-empty line off *text, a NUL-terminated string the
 * caller may write to (a copy of the answer): the line ends at eol ('\n';
 * '\x1e' cuts the relay's gathered STATS into one record per child), or
 * at the end of the string (a last line needs no eol); lines that are
 * empty are skipped.  The line is split at sep into at most max fields, the
 * last one taking the rest of the line (seps included); each field is
 * NUL-terminated in place and f[0..n) point at them (a field may be "").
 * *text moves past the line.  Returns n, 1 to max, or 0 when no line is
 * left.  eol and sep are not '\0' and differ; max >= 1. */
int sse_wire_line(char **text, char eol, char sep, char **f, int max);

/* --- between a broker and the relay --------------------------------------
 * Every put appends one whole frame to b and returns 0, or -1 when out of
 * memory (b unchanged: no half frame).  Every get reads a payload (after
 * sse_frame_peek) and returns 0, or -1 when it is short or malformed; the
 * strings it gives point into the payload, NUL-terminated. */

/* HELLO (broker -> relay): "I am the broker of child pid". */
int sse_wire_hello_put(sse_buf_t *b, uint32_t pid);
int sse_wire_hello_get(sse_rd_t *rd, uint32_t *pid);

/* COUNT (broker -> relay): n census deltas, (channel key, signed delta)
 * each.  A broker gathers them in a buffer of their own with
 * sse_wire_delta_put and frames them at once with sse_wire_count_put; the
 * relay reads n with sse_wire_count_get, then each delta. */
int sse_wire_delta_put(sse_buf_t *deltas, const char *key, size_t len,
                       int32_t delta);
int sse_wire_count_put(sse_buf_t *b, uint32_t n, const sse_buf_t *deltas);
int sse_wire_count_get(sse_rd_t *rd, uint32_t *n);
int sse_wire_delta_get(sse_rd_t *rd, const char **key, size_t *len,
                       int32_t *delta);

/* REPLAY (broker -> relay, seq: the broker's token) and CHECK (requester
 * -> relay): the last id a client had and the n channel keys it resumes.
 * The get refuses more than SSE_WIRE_MAX_RESUME keys; keys is allocated
 * in p (n + 1 entries, NULL last). */
#define SSE_WIRE_MAX_RESUME 4096
int sse_wire_resume_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                        const char *last_id, const char *const *keys, int n);
int sse_wire_resume_get(apr_pool_t *p, sse_rd_t *rd, const char **last_id,
                        const char ***keys, uint32_t *n);

/* CATCHUP and AFTER (op; broker -> relay, seq: the broker's token): the
 * time (the sse_clock_us() clock) a stream began off the relay, or the
 * event seq after which it wants the events, and its n channel keys; the
 * get refuses more than SSE_WIRE_MAX_RESUME keys, keys as
 * sse_wire_resume_get's. */
int sse_wire_catchup_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                         uint64_t since, const char *const *keys, int n);
int sse_wire_catchup_get(apr_pool_t *p, sse_rd_t *rd, uint64_t *since,
                         const char ***keys, uint32_t *n);

/* REFUSED (relay -> publisher, the PUBLISH's seq): why it was not
 * published, one line. */
int sse_wire_refused_put(sse_buf_t *b, uint32_t seq, const char *why);
int sse_wire_refused_get(sse_rd_t *rd, const char **why, size_t *len);

/* REPLAYED (relay -> broker, the REPLAY's seq): whether history was lost,
 * the events (serialized, one string) and the seq they cover up to. */
int sse_wire_replayed_put(sse_buf_t *b, uint32_t seq, int lost,
                          const char *events, size_t len, uint64_t upto);
int sse_wire_replayed_get(sse_rd_t *rd, uint32_t *lost, const char **events,
                          size_t *len, uint64_t *upto);

/* SYNC (relay -> broker) and SYNCED (its echo): a mark. */
int sse_wire_mark_put(sse_buf_t *b, uint32_t op, uint64_t mark);
int sse_wire_mark_get(sse_rd_t *rd, uint64_t *mark);

/* CONNS, CLOSE (one channel key), STATS and LIST (key NULL: none): a
 * request from a requester to the relay, which passes CONNS, CLOSE and
 * STATS on to each broker with its own seq. */
int sse_wire_request_put(sse_buf_t *b, uint32_t op, uint32_t seq,
                         const char *key);
int sse_wire_request_get(sse_rd_t *rd, const char **key, size_t *len);

/* REPLY (broker -> relay, the request's seq): one text answer. */
int sse_wire_reply_put(sse_buf_t *b, uint32_t seq, const char *text,
                       size_t len);
int sse_wire_reply_get(sse_rd_t *rd, const char **text, size_t *len);

#endif
