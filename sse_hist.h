/*
 * sse_hist.h: the event history kept by the relay, so a client that
 * reconnects with Last-Event-ID gets what it missed.
 *
 * Every event the relay publishes gets the next number of one sequence
 * (seq) shared by all channels; a server-assigned id is that number in
 * decimal, so one Last-Event-ID orders events across every channel of a
 * multi-channel stream.  Each channel keeps its last events (bounded by
 * count and age, per the publishing location's SSEHistory) and an index
 * maps every (channel, id) still held, publisher-given ids too, to its
 * entry.
 *
 * Owned and used by the relay's single thread; memory is malloc'ed and
 * freed here.  Pure code: testable without httpd.
 */
#ifndef SSE_HIST_H
#define SSE_HIST_H

#include <stddef.h>
#include <stdint.h>
#include "apr_time.h"
#include "sse_proto.h"

typedef struct sse_hist_t sse_hist_t;

/* A history whose sequence starts after first_seq - 1: anything older is
 * unknown, so asking for it reports a loss.  NULL when out of memory. */
sse_hist_t *sse_hist_create(uint64_t first_seq);
void sse_hist_destroy(sse_hist_t *h);

/* Keep event seq (serialized bytes, its id) on chan, then trim chan to
 * max_count events no older than max_age (0 count: keep none).  Returns 0
 * or -1 when out of memory (the event is then not kept). */
int sse_hist_add(sse_hist_t *h, const char *chan, uint64_t seq,
                 const char *id, const char *bytes, size_t len,
                 apr_time_t now, unsigned max_count, apr_interval_time_t max_age);

/* The seq that a Last-Event-ID stands for on a stream of the n channels:
 * the newest held event with that id on any of them (ids are per channel:
 * a publisher may reuse its ids on each), else a decimal number (a server
 * id whose event has gone).  Returns 1 and sets *seq, or 0 when the id is
 * unknown. */
int sse_hist_lookup(const sse_hist_t *h, const char *id,
                    const char *const *chans, int n, uint64_t *seq);

/* Append to out, in seq order, every held event of the n channels with a
 * seq after `after`; *lost is set to 1 when some such event of one of
 * these channels is no longer held (trimmed, or older than the history).
 * Returns 0 or -1 when out of memory. */
int sse_hist_replay(sse_hist_t *h, const char *const *chans, int n,
                    uint64_t after, sse_buf_t *out, int *lost);

/* 1 when a replay of these channels after `after` would be incomplete. */
int sse_hist_lost(const sse_hist_t *h, const char *const *chans, int n,
                  uint64_t after);

/* The id of the newest event held on any of the n channels, or NULL
 * (it lives until the next change of the history). */
const char *sse_hist_last_id(const sse_hist_t *h, const char *const *chans,
                             int n);

/* Call fn for every held event, in seq order (to hand the history to the
 * relay that replaces this one); fn's non-zero return stops the walk and
 * is returned; -1 when out of memory. */
typedef int sse_hist_fn(void *ctx, const char *chan, uint64_t seq,
                        const char *id, apr_time_t t, const char *bytes,
                        size_t len);
int sse_hist_each(const sse_hist_t *h, sse_hist_fn *fn, void *ctx);

/* A history rebuilt from a store: chan (if held) had dropped everything
 * up to seq gone, so a resume from before it is reported lost. */
void sse_hist_note_gone(sse_hist_t *h, const char *chan, uint64_t gone);

/* Call fn for every held channel that dropped events, with the highest
 * seq it dropped (to hand the history over with sse_hist_each). */
void sse_hist_each_gone(const sse_hist_t *h,
                        void (*fn)(void *ctx, const char *chan, uint64_t gone),
                        void *ctx);

/* Events and bytes held, for status and tests. */
void sse_hist_stats(const sse_hist_t *h, size_t *events, size_t *bytes);

#endif
