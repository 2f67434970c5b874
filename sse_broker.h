/*
 * sse_broker.h: the per-child broker thread.
 *
 * One thread per child process owns every parked stream of that child: the
 * epoll set, the channel table, each subscriber's output queue and the
 * child's connection to the relay.  Nothing else touches them, so the
 * delivery path takes no lock.  Worker threads hand a stream over with
 * sse_broker_park(), the one thread-safe entry point: it pushes the
 * subscriber on a lock-free stack (compare-and-swap) and, when the stack
 * was empty, wakes the loop through an eventfd; the woken loop takes the
 * whole stack at once.
 */
#ifndef SSE_BROKER_H
#define SSE_BROKER_H

#include "httpd.h"
#include "apr_pools.h"

typedef struct sse_sub_t sse_sub_t;

/* Start this child's broker thread (child_init).  Registers a pre-cleanup
 * on pchild that stops and joins the thread and closes every stream.
 * Returns APR_SUCCESS or the error that prevented the start. */
apr_status_t sse_broker_start(apr_pool_t *pchild, server_rec *s);

/* A stream the broker may write to without its socket: a suspended TLS
 * stream (sse_suspend.c), whose socket is a socketpair to the thread that
 * encrypts, until it leaves httpd (sse_broker_adopt).  When nothing waits in the subscriber's queue, the broker
 * first offers an event to deliver(); only when that declines does it go
 * through the socket as for any stream.  Not for a write of several
 * events (the stream is behind): then the socket takes them, and the
 * sink's own thread writes what piled up at once.  Called on the broker
 * thread, except release. */
typedef struct {
    /* Write the len bytes to the client now, all of them (1), or none and
     * decline (0): the broker then writes them to the socket.  It must
     * not wait, and must decline while earlier bytes are in the socket. */
    int (*deliver)(void *ctx, const char *data, size_t len);
    /* n more bytes went into the socket. */
    void (*sent)(void *ctx, size_t n);
    /* The broker is done with ctx (the subscriber is freed). */
    void (*release)(void *ctx);
    /* ctx's subscriber is sub from now on (NULL: freed, before release),
     * and which it is; what sse_broker_adopt() finds it by.  Both or
     * neither may be NULL. */
    void (*bind)(void *ctx, sse_sub_t *sub);
    sse_sub_t *(*bound)(void *ctx);
} sse_sink_t;

/* A sink's stream leaves its thread for the client's own socket: from the
 * broker's next pass the subscriber bound to ctx writes fd itself, each
 * write a TLS record of tls (an SSL object made ready by sse_tls_adopt,
 * sse_tls.c), reads it for the client's hang-up, and closes both when it
 * ends.  What it had written to its old socket and drain_fd (that
 * socket's other end) still holds goes out first; then the old socket,
 * drain_fd and the sink are let go (release).  The call takes a
 * reference to ctx of its own (released there too), and fd, tls and
 * drain_fd: if the stream has ended meanwhile, or no broker runs, they
 * are closed and freed.  Any thread. */
void sse_broker_adopt(const sse_sink_t *sink, void *ctx, int fd, void *tls,
                      int drain_fd);

/* What a new stream is: everything the broker needs after the request is
 * gone. */
typedef struct {
    const char *const *channels;
    int nchannels;
    const char *remote;         /* client address */
    apr_size_t max_backlog;     /* SSEMaxBacklog */
    const char *preamble;       /* first bytes of the body */
    const char *last_id;        /* resume after this id; NULL: live only */
    int keepalive;              /* SSEKeepalive seconds, 0: off */
    int lost_event;             /* SSEHistoryLostEvent: a lost history is
                                   also told as an sse-history-lost event */
    int held;                   /* 1: a held (TLS/HTTP/2) stream's pipe,
                                   2: a suspended one's (not counted as
                                   held: it has no thread) */
    const sse_sink_t *sink;     /* NULL, or how to write it directly: */
    void *sink_ctx;             /* the subscriber owns this reference */
    unsigned client;            /* its client address's place
                                   (sse_client.h), 0: none */
    /* A Mercure hub's stream (its one channel is the hub's): its topic
     * selectors, and its token's subscribe selectors (the claim), all
     * valid (sse_topic.h); hub_topics NULL: not a hub's. */
    const char *const *hub_topics;
    int nhub_topics;
    const char *const *hub_claims;
    int nhub_claims;
} sse_sub_spec_t;

/* Make a subscriber for the socket fd (a private, non-blocking duplicate).
 * All strings are copied: the result is one malloc'ed block that needs no
 * request memory (and the hub's selectors compiled); it owns
 * spec->sink_ctx (released when it is freed).  Any thread.  Returns NULL
 * when out of memory (sink_ctx is then the caller's). */
sse_sub_t *sse_sub_create(int fd, const sse_sub_spec_t *spec);

/* Hand sub to the broker, which owns it (and its fd) from then on: it sends
 * the preamble once the stream is registered, so a client that has read it
 * is counted by every later publish; then, when resuming, the events it
 * missed (from the relay's history), then live events.  Any thread.  On failure (no
 * broker running) the caller still owns sub and frees it with
 * sse_sub_free(). */
apr_status_t sse_broker_park(sse_sub_t *sub);

/* A graceful restart (SSERestartSpread): over the next window, tell each
 * stream of this child to reconnect after a delay of its own ("retry: R",
 * R at random over the window, then a blank line) and close it R after
 * now, a slice at a time; streams that arrive meanwhile get the same, cut
 * at the window's end.  The broker's stop (the child's exit) waits for
 * the spread to be over, at most the window.  Any thread. */
void sse_broker_spread(apr_interval_time_t window);
/* Cut the spread short: the streams left are closed at once and the stop
 * no longer waits.  Async-signal-safe (the SIGTERM of a stop calls it). */
void sse_broker_spread_cut(void);

/* A new stream of this child was refused with 503 at a limit
 * (SSEMaxSubscribers, SSEMaxHeldStreams): counted for the status page.
 * Any thread. */
void sse_broker_note_refused(void);

/* Free a subscriber that was never parked; closes its fd. */
void sse_sub_free(sse_sub_t *sub);

#endif
