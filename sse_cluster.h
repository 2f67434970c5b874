/*
 * sse_cluster.h: several servers sharing channels through Redis
 * (SSECluster).  Only the relay talks to Redis, over two connections: one
 * for commands, one subscribed to the prefix's event channel.
 *
 * A publish runs one Lua script that takes the next number of a sequence
 * shared by every server, keeps the event in the channel's Redis stream
 * (trimmed to SSEHistory's count) and publishes it; every relay, the
 * publishing one included, receives it in that same order and fans it out
 * to its children.  Ids and history are therefore cluster-wide, and a
 * client may resume on any server.  Each relay also writes its per-channel
 * stream counts to a hash that expires when the server stops refreshing it,
 * so counts cover every live server.  GET and DELETE on a channel ask the
 * other relays through control messages (sse_cluster_ctl_send, answered
 * through the ctl callback of sse_cluster_readable).
 *
 * Used by the relay's single thread only.
 */
#ifndef SSE_CLUSTER_H
#define SSE_CLUSTER_H

#include <stdint.h>
#include "apr_pools.h"
#include "sse_proto.h"

/* httpd's, for the log; the header needs no more of httpd. */
struct server_rec;

typedef struct sse_cluster_t sse_cluster_t;

/* The format of what the relays keep and send in Redis (keys, history
 * entries, messages; sse_cluster.c lists them).  Raise it with any change
 * a relay of today could misread; a rolling upgrade then needs the new
 * build to write the old format until every server has it. */
#define SSE_CLUSTER_FORMAT 1

/* An event received from Redis. */
typedef void sse_cluster_event_fn(void *ctx, uint64_t seq, const char *id,
                                  const char *chan, const char *body,
                                  size_t len);

/* A control message received (P:ctl, or P:ctl:SID for this server, see
 * sse_cluster.c): op, the asker's request number, the sender's server id
 * and the body. */
typedef void sse_cluster_ctl_fn(void *ctx, const char *op, uint64_t req,
                                const char *from, const char *body,
                                size_t len);

/* Check "redis://HOST[:PORT][/DB]" or
 * "redis-sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTERNAME[/DB]";
 * NULL or an error message (in p). */
const char *sse_cluster_check_url(apr_pool_t *p, const char *url);

/* A cluster client, not yet connected (sse_cluster_tick connects).
 * password: Redis's (or NULL); sent_password: the sentinels' (or NULL). */
sse_cluster_t *sse_cluster_create(struct server_rec *s, const char *url,
                                  const char *prefix, const char *password,
                                  const char *sent_password);

/* SSEClusterWait: a publish is confirmed (sse_cluster_publish answers 0)
 * once n replicas have it (WAIT), within ms; n 0: not waited for. */
void sse_cluster_set_wait(sse_cluster_t *c, int n, int ms);

/* The subscribed connection's fd to watch for reading, or -1 (down). */
int sse_cluster_fd(const sse_cluster_t *c);

/* Call once a second or so: (re)connects with backoff (with Sentinel:
 * asks a sentinel where the master is, connects there when it moved,
 * connected or not); last_seq is the
 * last event this relay saw (a Redis that lost its data is raised to it).
 * Returns 1 when a connection was just made (the caller then fills the
 * gap), else 0. */
int sse_cluster_tick(sse_cluster_t *c, uint64_t last_seq);

/* 1 when both connections are up. */
int sse_cluster_up(const sse_cluster_t *c);

/* Publish: body is the serialized event without its id line; id "" asks
 * for the sequence number as id; the channel's history keeps at most keep
 * events no older than age seconds (0: any age).  Returns 0 with *seq set,
 * or -1 (Redis unreachable, or with SSEClusterWait not confirmed by the
 * replicas in time, or refused for a second after such a failure: the
 * caller answers 503; only a publish not confirmed was written).  *others
 * (unless NULL): the other live servers' streams on chan, from their last
 * counts in Redis. */
int sse_cluster_publish(sse_cluster_t *c, const char *chan, const char *id,
                        const char *body, size_t len, unsigned keep,
                        unsigned age, uint64_t *seq, long *others);

/* Why the last sse_cluster_publish answered -1: one line for the client's
 * 503 (a static string). */
const char *sse_cluster_why(const sse_cluster_t *c);

/* Read what the subscription connection has (do_read 0: only what
 * hiredis already buffered); calls fn for each event, ctl for each
 * control message of this format not sent by this server. */
void sse_cluster_readable(sse_cluster_t *c, sse_cluster_event_fn *fn,
                          sse_cluster_ctl_fn *ctl, void *ctx, int do_read);

/* This relay's server id (32 hex digits, new at each relay start). */
const char *sse_cluster_sid(const sse_cluster_t *c);

/* Send a control message: to every relay (to NULL: P:ctl) or to one
 * (P:ctl:TO).  0 with *heard (if not NULL) the number of connections
 * subscribed to it that got it (this relay's own included), or -1. */
int sse_cluster_ctl_send(sse_cluster_t *c, const char *to, const char *op,
                         uint64_t req, const char *body, size_t len,
                         long *heard);

/* The other live servers with their streams on chan, from their counts in
 * Redis: "sid\tcount\n" lines (0 when a server has none) appended to out;
 * 0 or -1. */
int sse_cluster_servers(sse_cluster_t *c, const char *chan, sse_buf_t *out);

/* The seq of a Last-Event-ID on a stream of the n channels (ids are per
 * channel): 1 and *seq, 0 unknown, -1 Redis down. */
int sse_cluster_lookup(sse_cluster_t *c, const char *id,
                       const char *const *chans, int n, uint64_t *seq);

/* Events of chans after seq `after`, in seq order, serialized with their
 * ids, appended to out; *lost when some were trimmed; *max the highest seq
 * appended (after when none).  0, or -1 when Redis is down. */
int sse_cluster_replay(sse_cluster_t *c, const char *const *chans, int n,
                       uint64_t after, sse_buf_t *out, int *lost,
                       uint64_t *max);

/* Deliver to fn every event of chans after `after`, in seq order (the gap
 * left by an outage).  0 or -1. */
int sse_cluster_fill(sse_cluster_t *c, const char *const *chans, int n,
                     uint64_t after, sse_cluster_event_fn *fn, void *ctx);

/* Store this server's counts ("chan\tcount\n" lines); 0 or -1. */
int sse_cluster_put_counts(sse_cluster_t *c, const char *lines, size_t len);

/* The other live servers' counts as "chan\tcount\n" lines (all
 * channels), appended to out; 0 or -1.  (A publish's count of them comes
 * back with the publish: sse_cluster_publish.) */
int sse_cluster_get_counts(sse_cluster_t *c, sse_buf_t *out);

#endif
