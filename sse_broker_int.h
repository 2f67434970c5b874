/*
 * sse_broker_int.h: the broker thread's state and the calls between its
 * rooms (see sse_broker.h for what the broker is).  Everything here is the
 * broker thread's alone, except sse_broker_t.queue (workers push on it).
 *
 *   sse_broker.c         the thread: its loop, the hand-over queue, the
 *                        keepalive timer, start and stop
 *   sse_broker_sub.c     subscribers: messages, writes, queues, ends
 *   sse_broker_fanout.c  a run of events to its channel's streams (laps)
 *   sse_broker_link.c    the link to the relay: census, replays, requests
 *   sse_broker_hub.c     a Mercure hub's updates: which streams get each
 *
 * The state is a handle (sse_broker_t), not a file's singleton, so the
 * unit tests (test/unit/test_sse_broker.c) drive the fan-out, the census
 * and the relay requests with a broker of their own.
 */
#ifndef SSE_BROKER_INT_H
#define SSE_BROKER_INT_H

#include "apr_hash.h"
#include "apr_thread_proc.h"

#include "sse_broker.h"
#include "sse_chan.h"
#include "sse_loop.h"
#include "sse_peer.h"
#include "sse_proto.h"

typedef struct sse_hub_sub_t sse_hub_sub_t;

/* An event's bytes, shared by every subscriber that still has to send it. */
typedef struct {
    unsigned refs;
    size_t len;
    char data[];
} sse_msg_t;

/* A replay request in flight; the relay answers them in order. */
typedef struct sse_replay_t {
    uint32_t token;
    uint32_t op;                /* SSE_OP_REPLAY (by the stream's last id),
                                   _CATCHUP or _AFTER */
    uint64_t since;             /* a CATCHUP's time (sse_sub_t.off_since),
                                   an AFTER's seq (.resend_after) */
    struct sse_sub_t *sub;      /* NULL once the stream is gone */
    struct sse_replay_t *next;
} sse_replay_t;

typedef struct sse_out_t {
    sse_msg_t *msg;
    struct sse_out_t *next;
} sse_out_t;

struct sse_sub_t {
    sse_io_t io;                /* io.fd: the stream's socket */
    int dead;                   /* closing: skipped by delivery */
    struct sse_replay_t *replaying; /* waiting for its history: live events
                                   before the answer are in the answer */
    int keepalive;              /* seconds */
    int lost_event;             /* SSEHistoryLostEvent */
    int held;                   /* fd is a held (1) or suspended (2)
                                   stream's socketpair */
    const sse_sink_t *sink;     /* NULL, or its direct writes (sse_broker.h) */
    sse_hub_sub_t *hub;         /* a hub's stream: what it may get
                                   (sse_broker_hub.c), owned; else NULL */
    void *sink_ctx;
    void *tls;                  /* adopted (sse_broker_adopt): io.fd is the
                                   client's socket, written through this
                                   SSL object (sse_tls.c), owned; else NULL */
    apr_time_t last_write;
    uint64_t after_seq;         /* its replay covered events up to here */
    uint64_t off_since;         /* began while the broker was off the relay,
                                   at this sse_clock_us(): what went out
                                   since then is asked for when the broker
                                   is back on the same relay; else 0 */
    int resume_pending;         /* its resume (last_id) waits for the
                                   broker to be on a relay: asked then */
    uint64_t resend_after;      /* it was on another relay before the one
                                   the broker is (re)connecting to: the
                                   events after this seq are asked for */
    uint64_t events, bytes;     /* sent to it, for the end-of-stream log */
    const char *preamble;       /* in this block */
    const char *last_id;        /* in this block, or NULL */
    int nlinks;
    sse_link_t *links;          /* one per channel, in this block */
    char **names;               /* channel names, in this block */
    sse_out_t *out_head, *out_tail;
    size_t out_off;             /* bytes of out_head already sent */
    size_t backlog;             /* unsent bytes queued */
    size_t max_backlog;
    size_t backlog_extra;       /* a history answer's bytes, allowed beyond
                                   max_backlog until the queue empties */
    apr_time_t since;
    unsigned client;            /* its client address's place, given back
                                   with its SSEMaxSubscribers one */
    char remote[64];
    struct sse_sub_t *next, *prev;  /* the broker's list of all, or queue */
    struct sse_sub_t *next_dead;
    apr_time_t spread_at;       /* a graceful restart's spread: when it is
                                   closed (its retry: sent), 0: not yet */
};

/* A fan-out in progress (sse_broker_fanout.c): the messages that joined
 * it, at most SSE_LAP_MAX_MSGS. */
#define SSE_LAP_MAX_MSGS 16

typedef struct {
    sse_msg_t *msg;             /* the run's events, one reference */
    sse_run_t run;              /* them: seqs, and bytes pointing into msg */
} sse_lap_msg_t;

typedef struct {
    sse_chan_t *ch;
    unsigned k;                 /* messages */
    size_t bytes;
    int closed;                 /* something else came next: no more join */
    sse_lap_msg_t m[SSE_LAP_MAX_MSGS];
    sse_msg_t *cat[SSE_LAP_MAX_MSGS];   /* m[j..k) in one message, or NULL */
    uint64_t sync[SSE_LAP_MAX_MSGS + 1];/* mark of a SYNC seen after m[j-1],
                                           or 0 */
    unsigned before[SSE_LAP_MAX_MSGS + 1];  /* events in m[0..j) */
    unsigned synced;            /* SYNCs after m[0..synced) are answered */
    unsigned gen;               /* sse_link_t.lap_gen of this fan-out */
} sse_lap_t;

typedef struct sse_broker_t {
    server_rec *s;              /* for logging; NULL in the unit tests */
    pid_t pid;
    sse_loop_t *loop;
    apr_thread_t *thread;
    sse_io_t wake;              /* wake.fd: the eventfd workers write */
    volatile int running;       /* the thread was started */
    sse_sub_t *queue;           /* parked, not yet taken by the loop: a
                                   lock-free stack (atomic push, the loop
                                   takes it whole) */
    struct sse_adopt_t *adopt;  /* sse_broker_adopt's, the same way */

    apr_hash_t *chans;
    apr_hash_t *hubs;           /* hub channel key -> its index
                                   (sse_broker_hub.c) */
    apr_hash_t *hub_sels;       /* hub key '\n' selector -> its streams */
    unsigned long hub_gen;      /* updates fanned out, to write each once */
    sse_sub_t *all;             /* every registered subscriber */
    sse_sub_t *dead;            /* to be freed after the current pass */
    sse_msg_t *keepalive;
    sse_msg_t *lost;
    sse_timer_t tick;           /* keepalives, once a second */

    sse_peer_t relay;           /* the link to the relay; io.fd -1: none */
    sse_timer_t retry;          /* the next try to connect to it */
    pid_t relay_pid;            /* of the last relay connected to, or 0 */
    uint64_t relay_seq;         /* the last event's seq from that relay */
    size_t join_budget;         /* bytes a fan-out may still read in this
                                   sse_link_readable */
    sse_buf_t census;           /* deltas not yet sent: (channel, delta)... */
    uint32_t census_n;
    uint32_t next_token;
    sse_replay_t *replays, *replays_tail;
    sse_lap_t lap;
    int burst;                  /* the message being sent carries more
                                   than one event: the stream is behind,
                                   no direct write (sse_sub_send) */
    /* A graceful restart's spread (SSERestartSpread, sse_broker_spread):
     * each stream is sent "retry: R" (R uniform over the window) and is
     * closed R after the start, in slices of SSE_SPREAD_SLICE.
     * spread_req, spread_cut and spread_done are shared with other
     * threads (atomics); the rest is the broker thread's. */
    apr_interval_time_t spread_req; /* the window asked for, 0: none */
    volatile int spread_cut;    /* stop now: close every stream at once
                                   (a signal handler may set it) */
    int spread_done;            /* over (or cut): every stream closed and
                                   no stream of this child left open */
    apr_interval_time_t spread_window;  /* the spread under way, 0: none */
    apr_time_t spread_start, spread_end;
    apr_time_t spread_req_at;   /* when it was asked for (any thread) */
    int spread_cut_seen;        /* the cut was logged */
    unsigned spread_seed;       /* its random draws */
    sse_timer_t spread_tick;
    struct {
        apr_uint64_t published, delivered, bytes, dropped_slow, opened, closed;
        apr_uint64_t joined;    /* events that joined a fan-out under way */
        apr_uint64_t tls_direct;    /* TLS records written to adopted
                                   streams (sse_broker_adopt) */
        apr_uint64_t held;      /* open held streams */
        apr_uint64_t refused_limit; /* streams refused 503 at a limit
                                   (worker threads: atomics) */
    } st;                       /* counters for SSE_OP_STATS */
} sse_broker_t;

/* What sse_link_readable reads at most, and fan-outs on top of it. */
#define SSE_RELAY_READ 65536

/* --- sse_broker.c --------------------------------------------------------- */

/* Make b's state and loop (not yet running, not yet connecting to the
 * relay: arm b->retry with sse_link_connect for that); APR status. */
apr_status_t sse_broker_init(sse_broker_t *b, apr_pool_t *p, server_rec *s);
/* Its thread has stopped: end every stream (queued ones too), close the
 * link, free what b holds (not b itself). */
void sse_broker_fini(sse_broker_t *b);
/* The spread's slice: how often streams due are closed. */
#define SSE_SPREAD_SLICE apr_time_from_msec(100)
/* Broker thread: start the spread b->spread_req asks for, cut it short
 * when b->spread_cut is set (each once); the loop's before-wait hook calls
 * it, the unit tests too. */
void sse_broker_spread_poll(sse_broker_t *b);

/* --- sse_broker_sub.c ---------------------------------------------------- */

/* A message of len bytes (not filled in) / a copy of data, one reference;
 * NULL: no memory.  msg_unref() drops one and frees the last. */
sse_msg_t *sse_msg_new(size_t len);
sse_msg_t *sse_msg_make(const char *data, size_t len);
void sse_msg_unref(sse_msg_t *m);

/* Watch sub and put it on its channels (its census deltas noted); its
 * first bytes wait for sse_sub_start(), after the census is sent. */
void sse_sub_register(sse_broker_t *b, sse_sub_t *sub);
/* The stream's first bytes (": ok" among them), then its replay request. */
void sse_sub_start(sse_broker_t *b, sse_sub_t *sub);
/* Send msg (nevents events in it): written now if nothing waits, else a
 * reference queued; past its backlog limit the stream is ended. */
void sse_sub_send(sse_broker_t *b, sse_sub_t *sub, sse_msg_t *msg,
                  unsigned nevents);
/* Tell sub that its history is incomplete: the ": history lost" comment,
 * and with SSEHistoryLostEvent an "sse-history-lost" event whose data is
 * the Last-Event-ID it resumed from (empty: none). */
void sse_sub_send_lost(sse_broker_t *b, sse_sub_t *sub);
/* Send bytes only this subscriber gets (copied). */
void sse_sub_send_bytes(sse_broker_t *b, sse_sub_t *sub, const char *data,
                        size_t len);
/* The same for a history answer: bounded by SSEHistory already, it may
 * go past SSEMaxBacklog (as may the live events behind it) until the
 * stream's queue has emptied once; a reader too slow for the live events
 * after that is dropped as any other. */
void sse_sub_send_history(sse_broker_t *b, sse_sub_t *sub, const char *data,
                          size_t len);
/* End the stream: logged now, skipped by delivery, freed by
 * sse_subs_reap() after the current pass. */
void sse_sub_kill(sse_broker_t *b, sse_sub_t *sub, const char *why);
/* sse_broker_adopt's work for a live subscriber (sse_broker.h). */
void sse_sub_adopt(sse_broker_t *b, sse_sub_t *sub, int fd, void *tls,
                   int drain_fd);
void sse_subs_reap(sse_broker_t *b);

/* --- sse_broker_fanout.c ------------------------------------------------- */

/* Deliver a run of EVENTs to its channel's streams, and the EVENTs on the
 * same channel that follow it in relay.in from *pos (moved past them). */
void sse_fan_out(sse_broker_t *b, const sse_run_t *run, size_t *pos);

/* --- sse_broker_hub.c ---------------------------------------------------- */

/* A hub stream's compiled selectors (sse_sub_create, any thread): NULL
 * with *err, a one-line reason (a bad selector, out of memory). */
sse_hub_sub_t *sse_hub_sub_new(const char *const *topics, int ntopics,
                               const char *const *claims, int nclaims,
                               const char **err);
void sse_hub_sub_free(sse_hub_sub_t *h);
/* Put sub (a hub's stream, being registered) on its hub's index / take
 * it off (when it is reaped); join: 0, or -1 when out of memory. */
int sse_hub_join(sse_broker_t *b, sse_sub_t *sub);
void sse_hub_leave(sse_broker_t *b, sse_sub_t *sub);

/* Deliver a run of updates on a hub's channel to the streams whose
 * selectors (and, private, whose claims) match one of each update's
 * topics; answers the run's SYNC. */
void sse_hub_fan_out(sse_broker_t *b, const sse_run_t *run);
/* Send sub (a hub's stream) the updates of a history answer it may get. */
void sse_hub_replay(sse_broker_t *b, sse_sub_t *sub, const char *events,
                    size_t len);

/* --- sse_broker_link.c --------------------------------------------------- */

/* Note that name gained (+1) or lost (-1) a stream; sse_link_census_flush()
 * sends the deltas as one COUNT frame. */
void sse_link_census_note(sse_broker_t *b, const char *name, size_t len,
                     int delta);
void sse_link_census_flush(sse_broker_t *b);
/* Ask the relay for what sub missed (its last_id). */
void sse_replay_request(sse_broker_t *b, sse_sub_t *sub);
/* Queue a SYNCED answer; 0, or -1 when out of memory (link marked lost). */
int sse_synced_put(sse_broker_t *b, uint64_t mark);
/* Connect to the relay (the retry timer calls it, and arms itself again
 * while that fails) / drop the link (the timer is armed). */
void sse_link_connect(sse_loop_t *loop, sse_timer_t *t);
/* Take fd, a new connection to the relay: hello, the whole census, then
 * watched by the loop; 0, or -1 when it was dropped already. */
int sse_link_attach(sse_broker_t *b, int fd);
void sse_link_drop(sse_broker_t *b, const char *why);
/* Handle every whole frame in relay.in; the loop's callback reads first. */
void sse_link_frames(sse_broker_t *b);

#endif
