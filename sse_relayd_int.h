/*
 * sse_relayd_int.h: the relay daemon's insides, shared by its rooms (not
 * for the rest of the module; the outside sees sse_relayd.h).
 *
 *   sse_relayd.c          the process: main, the socket, the event loop,
 *                         each connection's reads and writes
 *   sse_relayd_ops.c      the handle, the connections' frames: the op table,
 *                         HELLO, REPLY, COUNT, the requests
 *   sse_relayd_gather.c   gathers: a request asked of every broker, their
 *                         replies, timeouts, the requester's answer
 *   sse_relayd_flow.c     the census (sync, sums), EVENT fan-out, flow
 *                         control (work, SYNC, SYNCED, held answers)
 *   sse_relayd_hist.c     ids and the history: local publish, REPLAY, CHECK
 *   sse_relayd_cluster.c  Redis (SSECluster) and the stats channel
 *
 * Every room but sse_relayd.c is free of httpd (APR only), so the logic is
 * tested without sockets (test/unit/test_sse_relayd.c).
 *
 * The loop and the logic meet at a few functions.  The logic asks the loop
 * for conn_queue_out(), conn_close() and conn_readable(); the loop gives
 * the logic sse_relayd_conn_new(), sse_relayd_frames(),
 * sse_relayd_conn_gone(), sse_relayd_ticks(), sse_relayd_after_batch(),
 * sse_relayd_cluster_readable() and sse_relayd_wait_ms().  The logic never
 * touches a descriptor or the event loop.
 */
#ifndef SSE_RELAYD_INT_H
#define SSE_RELAYD_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "apr_pools.h"
#include "apr_hash.h"
#include "apr_time.h"
#include "sse_proto.h"
#include "sse_event.h"
#include "sse_hist.h"
#include "sse_census.h"
#include "sse_loop.h"
#include "sse_peer.h"
#include "sse_wire.h"

/* The relay's insides keep short names: they are not exported from
 * mod_sse.so, so they cannot meet another module's symbols. */
#pragma GCC visibility push(hidden)

struct sse_cluster_t;

typedef struct sse_relayd_t sse_relayd_t;
typedef struct relay_conn_t relay_conn_t;

typedef struct relay_gather_t {
    sse_relayd_t *d;
    relay_conn_t *req;          /* NULL once the requester has gone */
    char *id;                   /* malloc'ed; "" unless a publish */
    int remaining;              /* replies still owed */
    uint32_t nreplies;
    sse_buf_t replies;          /* the replies, each a length-prefixed string */
    uint32_t seq;
    void (*done)(struct relay_gather_t *g); /* internal gathers: no req */
    uint64_t pub_seq;           /* cluster publish waiting for its echo */
    long pub_others;            /* with pub_seq: the other servers' streams
                                   on the channel, from the publish; else 0 */
    char *pub_chan;             /* malloc'ed, with pub_seq; or the channel
                                   of another server's question (op) */
    struct relay_gather_t *next_pending;
    apr_time_t deadline;        /* with a requester: answer it by then */
    struct relay_gather_t *wprev, *wnext;   /* d->waiting, while req */
    uint32_t op;                /* cluster: CONNS or CLOSE asked by another
                                   server (done answers it through Redis) */
    uint64_t ctl_req;           /* ... its number for the question */
    char *ctl_from;             /* ... malloc'ed: its server id */
} relay_gather_t;

/* Cluster: a CONNS or CLOSE asked of the other servers through Redis for
 * gather g, which waits for it (one of g->remaining) until every relay
 * that heard the question answered or RELAY_REMOTE_MS passed. */
typedef struct relay_remote_t {
    uint64_t req;               /* its number, in the question and answers */
    uint32_t op;
    relay_gather_t *g;
    apr_time_t deadline;
    long expected, got;         /* answers: relays that heard it, received */
    char *servers;              /* malloc'ed: the other live servers'
                                   "sid\tcount\n" lines when asked */
    sse_buf_t answers;          /* texts "sid\ncount\nbody", one each */
    struct relay_remote_t *next;
} relay_remote_t;

/* How long a server waits for the others' answers (less when its
 * requester's gather ends sooner), and how many connections of a channel
 * each server sends (a pub/sub message must stay well within Redis's
 * output buffer limits). */
#define RELAY_REMOTE_MS 1000
#define RELAY_REMOTE_CONNS 1000

typedef struct relay_owed_t {
    relay_gather_t *g;
    uint64_t target;            /* waiters: the mark that releases g */
    struct relay_owed_t *next;
} relay_owed_t;

/* Flow control.  A publish is answered from the census before any child
 * has written the event, so nothing would stop a publisher from queueing
 * events faster than the children can write them (latency and backlogs
 * without bound).  The relay counts the work it has sent each broker, asks
 * for a SYNC every SYNC_EVERY of it, and holds the answer of a publish
 * while a broker it went to is more than MAX_BEHIND behind: a fast
 * publisher is paced by the slowest child, as when every child answered,
 * but the children still work on several events at once.  An EVENT's work
 * is a write per stream the census counts, or FOLLOW_WORK when the EVENT
 * before it went to the same channel (a broker writes the events it has
 * for a stream at once, and takes more into a fan-out in progress, so a
 * burst on one channel costs each stream a write per lap: about
 * MAX_BEHIND / FOLLOW_WORK events may be on their way at once, which sets
 * how much one write carries against how long an event waits), plus one
 * per KiB (the bytes the relay may have to hold). */
#define RELAY_MAX_BEHIND 100
#define RELAY_SYNC_EVERY 25
#define RELAY_FOLLOW_WORK 4

/* A requester waits SSE_RELAY_TIMEOUT_S for its answer, then answers 503
 * ("nothing published").  So the relay must not act on a request it cannot
 * answer well before then: one that waited on the socket while the relay
 * was stopped, swapped out or busy.  Every request carries the time it was
 * sent (sse_relay_call); the relay refuses one older than TAKE_MS and
 * answers the others by ANSWER_MS after they were sent, with what it has
 * by then (a held or gathered answer included). */
#define RELAY_TAKE_MS 3000
#define RELAY_ANSWER_MS 4000
#define RELAY_GATHER_MS 2000    /* at most, for a child's reply */

/* When each event went out (the sse_clock_us clock), so that a stream that
 * began while its broker was off the relay can be given what went out
 * after it began (CATCHUP).  A sample (t, seq): every event up to seq had
 * gone out by t.  Each event updates the newest sample, or adds one when
 * the one before the newest is RELAY_CLOCK_STEP_US old or more: an answer
 * may hold the events of up to that long before the stream began, and the
 * ring reaches back RELAY_CLOCK_SAMPLES such steps at least (further when
 * events are rarer); a stream older than that is told history was lost. */
#define RELAY_CLOCK_SAMPLES 4096
#define RELAY_CLOCK_STEP_US 2000

typedef struct {
    uint64_t t;
    uint64_t seq;
} relay_clock_t;

struct relay_conn_t {
    sse_relayd_t *d;            /* the relay it belongs to */
    sse_peer_t peer;            /* its socket (io.fd -1 once closed, and in
                                   the unit tests) and both buffers */
    int broker;
    int pid;
    int busy;                   /* conn_readable() is working on it */
    int closed;                 /* freed after the current epoll batch */
    int dirty;                  /* on d->dirty_brokers or d->dirty_others */
    struct relay_conn_t *next_dirty;
    apr_pool_t *cpool;          /* broker: holds its census */
    sse_census_t *census;       /* broker: its streams per channel */
    relay_gather_t *waiting;    /* requester: its open request */
    relay_owed_t *owed, *owed_tail; /* broker: gathers it owes, in order */
    relay_owed_t *waiters, *waiters_tail; /* broker: answers held for it */
    uint64_t sent;              /* broker: work sent in EVENTs (flow control) */
    uint64_t synced;            /* broker: of it, known to be done */
    uint64_t sync_mark;         /* broker: the last SYNC asked for */
    size_t last_clen;           /* broker: its last EVENT's channel */
    char last_chan[SSE_KEY_MAX];
    relay_conn_t *prev, *next;
};

/* Log levels for sse_relayd_t.log: syslog's numbers, as httpd's APLOG_*. */
#define RELAYD_LOG_ERROR 3
#define RELAYD_LOG_WARNING 4
#define RELAYD_LOG_NOTICE 5
#define RELAYD_LOG_INFO 6
#define RELAYD_LOG_DEBUG 7

/* Writes one finished log line (the relay: ap_log_error; a test: its own). */
typedef void sse_relayd_log_fn(sse_relayd_t *d, int level, const char *msg);

/* The relay: one per process, made by sse_relayd_main (or a test) and
 * passed to every room; each connection and gather points back to it. */
struct sse_relayd_t {
    /* the loop's (sse_relayd.c) */
    void *s;                    /* server_rec, for the log */
    sse_loop_t *loop;
    sse_io_t listener;          /* the relay socket */
    sse_io_t cluster_io;        /* the Redis subscription, once connected */
    sse_timer_t tick;           /* sse_relayd_ticks, once a second */
    sse_timer_t wake;           /* at most sse_relayd_wait_ms between passes */
    relay_conn_t *closed;       /* closed during this batch, to free */
    relay_conn_t *dirty_brokers;    /* with output to write before the wait */
    relay_conn_t *dirty_others;
    pid_t parent;
    /* the logic's */
    sse_relayd_log_fn *log;
    int log_level;              /* lines above it are not even formatted */
    apr_pool_t *pool;
    relay_conn_t *conns;
    int census_synced;          /* every broker read since the last wait */
    struct {                    /* what was lost, for status and metrics */
        uint64_t history_lost;  /* resumes answered "history lost" */
        uint64_t refused_store; /* publishes refused (503): the store */
        uint64_t refused_late;  /* ... waited past their requester's time */
        uint64_t dropped_exit;  /* streams (one per channel) of children
                                   that went away: restarts, crashes */
    } losses;
    unsigned foreign_format;    /* the last other frame format refused
                                   (+1; 0: none yet): logged once each */
    int starts, upgrades;       /* relays started by httpd (this one too),
                                   replaced by a new build: the parent's */
    uint64_t next_id;           /* seq of the next event; also its id */
    sse_hist_t *hist;
    struct sse_store_t *store;  /* the history on disk (SSEHistoryPath), or
                                   NULL: in memory only */
    int store_sync;             /* its SSEHistorySync */
    relay_clock_t *clock;       /* malloc'ed: RELAY_CLOCK_SAMPLES, a ring */
    unsigned clock_head, clock_n;   /* its oldest sample, how many */
    struct sse_cluster_t *cluster;  /* SSECluster, or NULL: this server alone */
    int cluster_live;           /* connected, and its fd is watched */
    uint64_t fill_from;         /* last event seen before a reconnect */
    uint64_t last_seq;          /* cluster: the last event fanned out */
    relay_gather_t *pending;    /* cluster publishes awaiting their echo */
    relay_gather_t *waiting;    /* gathers whose requester waits */
    relay_remote_t *remotes;    /* cluster: questions to the other servers */
    uint64_t ctl_seq;           /* ... the last one's number */
    char **chans;               /* channels with streams here, last count */
    int nchans;
    apr_time_t next_tick;
    const char *stats_channel;  /* SSEStatsChannel, or NULL */
    char *stats_children;       /* malloc'ed: the last STATS replies */
    apr_time_t next_stats;
    uint32_t seq;
};

/* --- the loop's, for the logic (sse_relayd.c) --------------------------- */

/* c has output in c->out: written before the loop waits again, so
 * everything one batch of requests produced for a peer leaves in one
 * write. */
void conn_queue_out(relay_conn_t *c);

/* Drop c: its descriptor closed, then sse_relayd_conn_gone(c); c itself is
 * freed after the current batch, so it may still be looked at (c->closed). */
void conn_close(relay_conn_t *c);

/* Read and handle what c sent (sse_relayd_frames).  Returns 1 when bytes
 * were read (there may be more), 0 when there were none, -1 when c was
 * closed. */
int conn_readable(relay_conn_t *c);

/* --- the handle and the connections (sse_relayd_ops.c) ------------------ */

/* Set up d (zeroed by the caller) in a subpool of pool; ids start at
 * first_id.  0, or -1 out of memory. */
int sse_relayd_init(sse_relayd_t *d, apr_pool_t *pool, uint64_t first_id);

/* Free what d holds (its connections must be gone and freed already). */
void sse_relayd_destroy(sse_relayd_t *d);

/* Format a log line and hand it to d->log (dropped when there is none or
 * the level is above d->log_level). */
void relayd_log(sse_relayd_t *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new peer on descriptor fd (-1 in tests), on d->conns; NULL out of
 * memory.  Freed by the loop after conn_close. */
relay_conn_t *sse_relayd_conn_new(sse_relayd_t *d, int fd);

/* The logic's part of closing c (c->closed is set): off d->conns, its
 * census gone, the gathers it owed or waited for told, its buffers freed. */
void sse_relayd_conn_gone(relay_conn_t *c);

/* Handle every whole frame in c->in.  Returns 1, or -1 when c was closed
 * (a bad frame, logged, or a refused request). */
int sse_relayd_frames(relay_conn_t *c);

/* The loop's wait before its next look at the timers, in ms. */
int sse_relayd_wait_ms(sse_relayd_t *d);

/* Once a second (the loop's timer): the cluster's and the stats channel's
 * work, each when due; the census is to be read again.  Returns -1, or
 * Redis's subscription descriptor, just connected: the loop watches it from
 * now on and calls sse_relayd_cluster_readable when it is readable. */
int sse_relayd_ticks(sse_relayd_t *d);

/* After each batch of events (before the loop waits): a Redis gone,
 * gathers past their time. */
void sse_relayd_after_batch(sse_relayd_t *d);

/* --- gathers (sse_relayd_gather.c) --------------------------------------- */

/* A gather for requester req (NULL: the relay's own, with done) whose
 * request was sent at seq (its header's seq, in ms); id (malloc'ed, taken
 * over; NULL for "") is its RESULT's id.  NULL out of memory. */
relay_gather_t *gather_new(sse_relayd_t *d, relay_conn_t *req, uint32_t seq,
                           char *id);

/* g no longer has a requester to answer. */
void gather_detach(relay_gather_t *g);

/* Answer g's requester with the replies gathered so far (and detach it). */
void gather_answer(relay_gather_t *g);

/* Answer request h of requester c with REFUSED and why (one line, said
 * to the client with the 503; it says whether the event was written).
 * 0, or -2 (out of memory: the connection is dropped quietly, the
 * requester answers 503 too). */
int request_refuse(relay_conn_t *c, const sse_frame_hdr_t *h,
                   const char *why);

/* Run g's done, answer its requester, free g. */
void gather_finish(relay_gather_t *g);

/* One broker's part of g is done (reply is NULL when the broker is gone). */
void gather_reply(relay_gather_t *g, const char *reply, size_t len);

/* Append o, for g, to a broker's FIFO (owed replies or held answers);
 * g now waits for one more. */
void owed_push(relay_owed_t **head, relay_owed_t **tail, relay_owed_t *o,
               relay_gather_t *g);

/* Send request op (with chan, if given) to every broker; each owes g one
 * reply.  g is finished once all have answered. */
void gather_scatter(relay_gather_t *g, uint32_t op, const char *chan);

/* Answer the requesters whose gathers are past their deadline. */
void gather_timeouts(sse_relayd_t *d);

/* How long ago a request stamped sent (its header's seq) was sent, in ms. */
int32_t request_age(uint32_t sent);

/* --- census and flow control (sse_relayd_flow.c) ------------------------- */

/* Read whatever every broker has sent (once per batch). */
void census_sync(sse_relayd_t *d);

/* This server's streams per channel, every child's census summed:
 * name -> long *, in p. */
apr_hash_t *census_sum(sse_relayd_t *d, apr_pool_t *p);

/* The lines "name\tcount\n" of census_sum(), appended to out. */
void census_lines(sse_relayd_t *d, apr_pool_t *p, sse_buf_t *out);

/* How many brokers are connected. */
int relay_brokers(sse_relayd_t *d);

/* Fan an event's bytes out to the brokers that count chan; with g, answer
 * its requester with the count and finish g (or hold it: flow control). */
void event_out(sse_relayd_t *d, relay_gather_t *g, const char *chan,
               const char *bytes, size_t len, uint64_t seq);

/* The COUNT and SYNCED ops (relay_op_fn). */
int census_frame(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);
int synced_frame(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);

/* --- ids and history (sse_relayd_hist.c) --------------------------------- */

/* This server alone: give pub's event the next seq, keep it (its tail
 * after it) in the history (on disk first, with a store) and return those
 * bytes (in p), with *id (malloc'ed) and *seq; NULL when the store could
 * not keep it (full, or failing: logged), the seq given back, nothing
 * published. */
const char *publish_local(sse_relayd_t *d, apr_pool_t *p,
                          sse_wire_publish_t *pub, char **id, uint64_t *seq,
                          apr_size_t *len);

/* SSEHistoryPath: take the store st (opened), rebuild the history from
 * it and go on with the ids after the highest it ever held.  0, or -1
 * (logged: the store is dropped, the history starts empty). */
int relay_store_attach(sse_relayd_t *d, struct sse_store_t *st, int sync);

/* A new build replaces the relay (a graceful restart after an upgrade):
 * the history kept only in memory goes to the new relay through a
 * store in dir (a directory the parent made for it).  _out: the old
 * relay, as it exits, writes every held event there; _in: the new one
 * takes them as its history (ids go on after the highest), and removes
 * the files.  0, or -1 (logged, SSE00225: the history starts empty). */
int relay_handover_out(sse_relayd_t *d, const char *dir);
int relay_handover_in(sse_relayd_t *d, const char *dir);

/* An event (seq) went out to the brokers now: the clock's samples. */
void relay_clock_note(sse_relayd_t *d, uint64_t seq);

/* The REPLAY, CATCHUP and CHECK ops (relay_op_fn). */
int replay_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);
int catchup_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);
int after_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);
int check_answer(relay_conn_t *c, const sse_frame_hdr_t *h, sse_rd_t *rd);

/* --- Redis and the stats channel (sse_relayd_cluster.c) ------------------ */

/* Publish through Redis for requester c (relay_op_fn's return codes). */
int publish_cluster(relay_conn_t *c, const sse_frame_hdr_t *h, apr_pool_t *p,
                    sse_wire_publish_t *pub);

/* Add the other servers' streams on every channel to a LIST's answer
 * (cluster only): one more reply, count lines. */
void gather_add_remote(relay_gather_t *g);

/* Cluster only (else nothing): ask the other servers CONNS or CLOSE (op)
 * on chan for g, which then waits for their answers (at most
 * RELAY_REMOTE_MS); its RESULT id says who answered ("self SID", then
 * "srv SID COUNT STATE" lines, or "down": Redis unreachable). */
void remote_ask(relay_gather_t *g, uint32_t op, const char *chan);

/* Questions to the other servers past their time: answered with what
 * came. */
void remote_timeouts(sse_relayd_t *d);

/* "off", "up" or "down": the cluster link, for the counters. */
const char *cluster_state(sse_relayd_t *d);

/* The subscription's descriptor is readable: its events, fanned out. */
void sse_relayd_cluster_readable(sse_relayd_t *d);

/* Once a second (cluster only); returns what sse_relayd_ticks does. */
int cluster_tick(sse_relayd_t *d);

/* Redis went away: publishes waiting for their echo get the close. */
void cluster_check_down(sse_relayd_t *d);

/* Once a second (SSEStatsChannel): gather the children's counters, then
 * publish the stats event. */
void stats_tick(sse_relayd_t *d);

#pragma GCC visibility pop

#endif
